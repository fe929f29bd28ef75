//! Test support for the integration tests: a private copy of the stack on moto per test (own
//! table and queues, created from template.yaml), the real handlers wired to real SDK clients,
//! a recording `@connections` server, and builders for the events API Gateway sends.
//!
//! The moto endpoint comes from `STACKPRO_TEST_ENDPOINT`, which `infra/local/test.sh` sets
//! after starting moto.

pub mod connections_recorder;
pub mod events;
pub mod fault_proxy;
pub mod frame_log;
pub mod gateway;
pub mod http;
pub mod service_api;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use messaging_aws::table::{self, Key, TenantKeys};
use messaging_aws::{MessagingTable, RequestCounter};
use messaging_core::protocol::FILE_TYPES;
use messaging_core::token::Contacts;
use messaging_core::{ConnectionId, ConversationId, Principal, Role, TenantId, UserId};
use messaging_devstack::event_source::SqsEventSource;
use messaging_devstack::stream_source::StreamEventSource;
use messaging_devstack::{tokens, LocalResources, Template};
use messaging_handlers::broadcast::BroadcastService;
use messaging_handlers::connect::ConnectService;
use messaging_handlers::disconnect::DisconnectService;
use messaging_handlers::file_share::FileShareService;
use messaging_handlers::http_api::HttpApiService;
use messaging_handlers::notify_batch::NotifyBatchService;
use messaging_handlers::route::RouteService;
use messaging_handlers::search_indexer::{self, IndexReport, SearchIndexerService};
use messaging_handlers::services::{Parts, Services};

pub use connections_recorder::ConnectionsRecorder;
pub use fault_proxy::{Fault, FaultProxy};

/// The moto endpoint, or a panic that says how to run the tests.
pub fn endpoint() -> String {
    std::env::var("STACKPRO_TEST_ENDPOINT").unwrap_or_else(|_| {
        panic!("STACKPRO_TEST_ENDPOINT is not set: run the suite with ./infra/local/test.sh, which starts moto")
    })
}

/// A private stack for one test.
pub struct TestStack {
    pub table_name: String,
    /// Uncounted client for assertions.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Counts the DynamoDB requests the handlers make.
    pub dynamo_requests: RequestCounter,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dlq_url: String,
    /// The files bucket's object-created notifications (image-preview's queue).
    pub uploads_url: String,
    pub uploads: SqsEventSource,
    pub events: SqsEventSource,
    pub gateway: ConnectionsRecorder,
    pub connect: ConnectService,
    pub disconnect: DisconnectService,
    pub route: RouteService,
    pub files: FileShareService,
    pub http: HttpApiService,
    /// The server API (called directly: no gateway, so no IAM check in front of it).
    pub service: messaging_handlers::service_api::ServiceApiService,
    /// The image-preview function (fed by [`Self::pump_uploads`]).
    pub previews: messaging_handlers::image_preview::ImagePreviewService,
    /// The lifecycle function (exports, erasures; fed by [`Self::pump_jobs`]) and its queue.
    pub lifecycle: messaging_handlers::lifecycle::LifecycleService,
    pub jobs: SqsEventSource,
    pub broadcast: BroadcastService,
    /// The notification batch, sending through moto's SES from this stack's own sender.
    pub notify: NotifyBatchService,
    /// The search indexer, and the table's stream as its event source mapping reads it.
    pub indexer: SearchIndexerService,
    pub stream: StreamEventSource,
    /// The table's stream.
    pub stream_arn: String,
    /// The files bucket of this stack.
    pub bucket: String,
    /// What the services are made of (`@connections` posts go to `gateway`).
    pub parts: Parts,
    /// The SDK configuration for moto, for setting things up beside the stack.
    pub sdk: aws_config::SdkConfig,
}

/// A connected test client.
#[derive(Debug, Clone)]
pub struct Client {
    pub connection: ConnectionId,
    pub principal: Principal,
}

/// Default rate limits of test stacks: high enough that no test burst meets them.
pub const UNTHROTTLED: messaging_core::limits::RateLimits = messaging_core::limits::RateLimits {
    frames_per_second: 100_000,
    frame_burst: 100_000,
    user_sends_per_minute: 1_000_000,
    tenant_sends_per_minute: 1_000_000,
};

impl TestStack {
    pub async fn new() -> Self {
        Self::build(None).await
    }

    /// A stack whose functions reach moto through a [`FaultProxy`] (with the production SDK
    /// timeouts, `messaging_aws::timeouts`); the test's own clients (`dynamodb`, `sqs`,
    /// `events`) reach moto directly, so they see what was really stored and queued.
    pub async fn with_fault_proxy() -> (Self, FaultProxy) {
        let proxy = FaultProxy::start(&endpoint()).await;
        let functions = messaging_devstack::sdk_config(proxy.endpoint())
            .to_builder()
            .timeout_config(messaging_aws::timeouts())
            .build();
        (Self::build(Some(functions)).await, proxy)
    }

    async fn build(functions_sdk: Option<aws_config::SdkConfig>) -> Self {
        let sdk = messaging_devstack::sdk_config(&endpoint());
        let functions_sdk = functions_sdk.unwrap_or_else(|| sdk.clone());
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let template = Template::workspace().expect("template.yaml");
        let prefix = format!("test-{suffix}");
        let resources = LocalResources::create(
            &sdk,
            &template,
            &prefix,
            &format!("notify-{suffix}@stackpro.test"),
        )
        .await
        .expect("create the stack's resources on moto");
        let queue_url = resources.queue_url("BroadcastQueue").unwrap().to_owned();
        let dlq_url = resources
            .queue_url("BroadcastDeadLetterQueue")
            .unwrap()
            .to_owned();
        let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{prefix}-BroadcastQueue.fifo");
        let uploads_url = resources.queue_url("UploadsQueue").unwrap().to_owned();
        let uploads_arn = format!("arn:aws:sqs:us-east-1:123456789012:{prefix}-UploadsQueue");
        let jobs_url = resources.queue_url("LifecycleQueue").unwrap().to_owned();
        let jobs_arn = format!("arn:aws:sqs:us-east-1:123456789012:{prefix}-LifecycleQueue");

        let dynamo_requests = RequestCounter::new();
        let counted = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&functions_sdk)
                .interceptor(dynamo_requests.clone())
                .build(),
        );
        let gateway = ConnectionsRecorder::start().await;
        let parts = Parts {
            table: MessagingTable::new(counted, &resources.table_name),
            // Tests send in bursts no person does; the rate-limit tests give their tenants
            // limits of their own (`MessagingTable::set_rate_limits`), as an operator would.
            rate_limits: UNTHROTTLED,
            ..resources
                .parts(&functions_sdk, gateway.endpoint())
                .expect("the stack's parts")
        };
        let Services {
            connect,
            disconnect,
            route,
            file_share,
            http_api,
            service_api,
            image_preview,
            lifecycle,
            broadcast,
            notify_batch,
            search_indexer,
        } = Services::new(&parts);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let stream_arn = resources
            .stream_arn(&sdk)
            .await
            .expect("describe the table")
            .expect("the template gives the table a stream");
        let [indexer_source] = template
            .stream_event_sources()
            .expect("stream event sources")
            .try_into()
            .expect("one stream event source: the search indexer");
        let stream = StreamEventSource::new(&endpoint(), stream_arn.clone(), indexer_source)
            .expect("stream event source");
        Self {
            table_name: resources.table_name,
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            dynamo_requests,
            sqs: sqs.clone(),
            events: SqsEventSource::new(sqs.clone(), &queue_url, queue_arn, "us-east-1"),
            uploads: SqsEventSource::new(sqs.clone(), &uploads_url, uploads_arn, "us-east-1"),
            jobs: SqsEventSource::new(sqs, &jobs_url, jobs_arn, "us-east-1"),
            lifecycle,
            queue_url,
            dlq_url,
            uploads_url,
            gateway,
            connect,
            disconnect,
            route,
            files: file_share,
            http: http_api,
            service: service_api,
            previews: image_preview,
            broadcast,
            notify: notify_batch,
            indexer: search_indexer,
            stream,
            stream_arn,
            bucket: resources.bucket,
            parts,
            sdk,
        }
    }

    /// This stack with `DirectFanout = 0`: the route function queues every message for the
    /// broadcast function (the tests of the broadcast queue's own guarantees).
    pub fn queueing_messages(mut self) -> Self {
        self.route.direct_fanout = 0;
        self
    }

    /// Runs the search indexer over everything the table's stream holds that it has not seen
    /// (as its event source mapping would, batch by batch); returns the batches' reports.
    pub async fn index_search(&self) -> Vec<IndexReport> {
        let mut reports = Vec::new();
        while let Some(event) = self.stream.next_batch().await.expect("read the stream") {
            let records: aws_lambda_events::dynamodb::Event =
                serde_json::from_value(event.clone()).expect("a DynamoDB event");
            let (response, report) = search_indexer::index(&self.indexer, &records).await;
            let response = serde_json::to_value(&response).unwrap();
            self.stream.complete(&event, Ok(&response)).await;
            reports.push(report);
        }
        reports
    }

    /// A device's SNS platform endpoint, registered (as the portal's backend would) with this
    /// `CustomUserData`.
    pub async fn push_endpoint(&self, custom_user_data: &str) -> String {
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let app = sns
            .create_platform_application()
            .name(format!(
                "portal-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ))
            .platform("GCM")
            .attributes("PlatformCredential", "key")
            .send()
            .await
            .expect("platform application")
            .platform_application_arn
            .unwrap();
        sns.create_platform_endpoint()
            .platform_application_arn(app)
            .token(uuid::Uuid::new_v4().to_string())
            .custom_user_data(custom_user_data)
            .send()
            .await
            .expect("platform endpoint")
            .endpoint_arn
            .unwrap()
    }

    /// Connects `user` of `tenant` with a freshly minted token; panics unless accepted.
    pub async fn connect_as(&self, tenant: &str, user: &str, role: Role) -> Client {
        self.connect_with(tenant, user, role, &Contacts::default())
            .await
    }

    /// [`Self::connect_as`], the connection opened ten minutes ago: old enough that a 410 for
    /// it is a gone connection, not one still connecting (broadcast's `CONNECTING_GRACE_MILLIS`).
    pub async fn connect_long_ago(&self, tenant: &str, user: &str, role: Role) -> Client {
        self.connect_inner(
            tenant,
            user,
            role,
            &Contacts::default(),
            Some(messaging_core::time::now_millis() - 10 * 60 * 1000),
        )
        .await
    }

    /// [`Self::connect_as`] with a token carrying these verified contact points.
    pub async fn connect_with(
        &self,
        tenant: &str,
        user: &str,
        role: Role,
        contacts: &Contacts,
    ) -> Client {
        self.connect_inner(tenant, user, role, contacts, None).await
    }

    async fn connect_inner(
        &self,
        tenant: &str,
        user: &str,
        role: Role,
        contacts: &Contacts,
        connected_at: Option<i64>,
    ) -> Client {
        let principal = Principal {
            tenant: TenantId::parse(tenant).unwrap(),
            user: UserId::parse(user).unwrap(),
            role,
            name: Some(format!("{user} of {tenant}")),
        };
        let token = tokens::mint_local_with(&principal, contacts, 3600).unwrap();
        let connection = events::new_connection_id();
        let event = match connected_at {
            Some(at) => events::connect_at(&connection, Some(&token), at),
            None => events::connect(&connection, Some(&token)),
        };
        let response = messaging_handlers::connect::handle(&self.connect, &event).await;
        assert_eq!(
            response.status_code, 200,
            "connect of {user}@{tenant} refused: {:?}",
            response.body
        );
        Client {
            connection: ConnectionId::parse(connection).unwrap(),
            principal,
        }
    }

    /// Sends a frame from `client` through the route handler: (status, answered frame or Null).
    pub async fn send(&self, client: &Client, frame: &Value) -> (i64, Value) {
        self.send_raw(client, &frame.to_string()).await
    }

    /// Sends a raw frame, routed as the WebSocket API routes it: file frames to `file-share`,
    /// everything else to `route`.
    pub async fn send_raw(&self, client: &Client, body: &str) -> (i64, Value) {
        let event = events::message(client.connection.as_str(), body);
        let kind = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned));
        let response = if kind.is_some_and(|k| FILE_TYPES.contains(&k.as_str())) {
            messaging_handlers::file_share::handle(&self.files, &event).await
        } else {
            messaging_handlers::route::handle(&self.route, &event).await
        };
        let frame = match response.body {
            Some(aws_lambda_events::encodings::Body::Text(text)) => {
                frame_log::record(&text);
                serde_json::from_str(&text).unwrap()
            }
            None => Value::Null,
            Some(other) => panic!("unexpected body {other:?}"),
        };
        (response.status_code, frame)
    }

    pub async fn disconnect(&self, client: &Client) {
        let response = messaging_handlers::disconnect::handle(
            &self.disconnect,
            &events::disconnect(client.connection.as_str()),
        )
        .await
        .expect("disconnect");
        assert_eq!(response.status_code, 200);
    }

    /// Runs the uploads queue's event source mapping until it is empty: every batch of the
    /// files bucket's notifications through image-preview. Returns the batch responses.
    pub async fn pump_uploads(&self) -> Vec<aws_lambda_events::sqs::SqsBatchResponse> {
        let mut responses = Vec::new();
        while let Some(event) = self.uploads.receive(0).await.expect("receive") {
            let response =
                messaging_handlers::image_preview::handle(&self.previews, event.clone()).await;
            self.uploads
                .complete(&event, &response)
                .await
                .expect("delete");
            responses.push(response);
        }
        responses
    }

    /// Runs the lifecycle queue's event source mapping until it is empty: every step of every
    /// export and erasure queued, and the steps they queue. Returns the batch responses.
    pub async fn pump_jobs(&self) -> Vec<aws_lambda_events::sqs::SqsBatchResponse> {
        let mut responses = Vec::new();
        while let Some(event) = self.jobs.receive(0).await.expect("receive") {
            let response =
                messaging_handlers::lifecycle::handle(&self.lifecycle, event.clone()).await;
            self.jobs.complete(&event, &response).await.expect("delete");
            responses.push(response);
            assert!(responses.len() < 10_000, "the jobs never end");
        }
        responses
    }

    /// Runs the SQS event source mapping until the queue is empty: every batch goes through
    /// the broadcast handler; succeeded records are deleted. Returns the batch responses.
    pub async fn pump(&self) -> Vec<aws_lambda_events::sqs::SqsBatchResponse> {
        let mut responses = Vec::new();
        while let Some(event) = self.events.receive(0).await.expect("receive") {
            let response =
                messaging_handlers::broadcast::handle(&self.broadcast, event.clone()).await;
            self.events
                .complete(&event, &response)
                .await
                .expect("delete");
            responses.push(response);
        }
        responses
    }

    /// Every item in the table, keyed "PK|SK" (test-only Scan, for "nothing was written").
    pub async fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, AttributeValue>> {
        let mut items = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.table_name)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in page.items.unwrap_or_default() {
                let key = format!(
                    "{}|{}",
                    item[table::PK].as_s().unwrap(),
                    item[table::SK].as_s().unwrap()
                );
                items.insert(key, item.into_iter().collect());
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return items,
            }
        }
    }

    /// Number of messages waiting in the broadcast queue (visible + delayed + in flight).
    pub async fn queued(&self, url: &str) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        attributes
            .values()
            .map(|v| v.parse::<usize>().unwrap_or(0))
            .sum()
    }
}

/// The "PK|SK" name [`TestStack::snapshot`] gives an item with this key.
pub fn item_name(key: &Key) -> String {
    format!("{}|{}", key.pk, key.sk)
}

/// The keys of one tenant's items, built by `messaging_aws::table` (tests spell no key).
pub struct Keys {
    tenant: TenantId,
}

/// The keys of `tenant`.
pub fn keys(tenant: &str) -> Keys {
    Keys {
        tenant: TenantId::parse(tenant).unwrap(),
    }
}

impl Keys {
    /// The key `build` makes from this tenant's key builders.
    pub fn key(&self, build: impl FnOnce(TenantKeys<'_>) -> Key) -> Key {
        build(table::tenant(&self.tenant))
    }

    /// Its [`item_name`].
    pub fn name(&self, build: impl FnOnce(TenantKeys<'_>) -> Key) -> String {
        item_name(&self.key(build))
    }

    /// The [`item_name`] prefix of this tenant's items whose sort key starts with the prefix
    /// `build` makes.
    pub fn prefix(&self, build: impl FnOnce(TenantKeys<'_>) -> String) -> String {
        let keys = table::tenant(&self.tenant);
        format!("{}|{}", keys.pk(), build(keys))
    }

    /// Any other value `build` makes from this tenant's key builders (index keys).
    pub fn value(&self, build: impl FnOnce(TenantKeys<'_>) -> String) -> String {
        build(table::tenant(&self.tenant))
    }
}

/// The key of a connection's registry item.
pub fn connection_key(connection: &str) -> Key {
    table::connection(&ConnectionId::parse(connection).unwrap())
}

/// `key` as the `PK`/`SK` map of a raw SDK call.
pub fn key_map(key: &Key) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        (table::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (table::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A verified email contact (what an identity provider's `email` claim carries).
pub fn email(address: &str) -> Contacts {
    Contacts {
        email: Some(address.to_owned()),
        phone: None,
    }
}

/// Id shorthands for key builders.
pub fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

pub fn conversation(id: &str) -> ConversationId {
    ConversationId::parse(id).unwrap()
}

pub fn connection(id: &str) -> ConnectionId {
    ConnectionId::parse(id).unwrap()
}

/// Frames delivered to `client`, parsed.
pub fn frames_for(deliveries: &[(String, String)], client: &Client) -> Vec<Value> {
    deliveries
        .iter()
        .filter(|(connection, _)| connection == client.connection.as_str())
        .flat_map(|(_, body)| unbatched(serde_json::from_str(body).unwrap()))
        .collect()
}

/// A bearer token of the local stack's issuer for `user` of `tenant` with `role`, valid ten
/// minutes (the HTTP API's and the gateway's callers).
pub fn local_token(tenant: &str, user: &str, role: Role) -> String {
    let principal = Principal {
        tenant: TenantId::parse(tenant).unwrap(),
        user: UserId::parse(user).unwrap(),
        role,
        name: None,
    };
    tokens::mint_local(&principal, 600).unwrap()
}

/// A frame as the events it carries: a BATCH frame's events in their order (docs/protocol.md),
/// any other frame alone.
pub fn unbatched(frame: Value) -> Vec<Value> {
    if frame["type"] == "BATCH" {
        let events = frame["events"].as_array().cloned().unwrap_or_default();
        assert!(
            events.len() >= 2,
            "a BATCH holds two events or more: {frame}"
        );
        assert!(
            events
                .iter()
                .all(|e| e["type"].is_string() && e["type"] != "BATCH"),
            "a BATCH holds events, not batches: {frame}"
        );
        events
    } else {
        vec![frame]
    }
}

/// A CHAT_MESSAGE frame.
pub fn chat(conversation: &str, text: &str) -> Value {
    serde_json::json!({ "type": "CHAT_MESSAGE", "conversationId": conversation, "content": { "text": text } })
}

/// A CREATE_CONVERSATION frame.
pub fn create(conversation: &str, kind: &str, members: &[&str]) -> Value {
    serde_json::json!({ "type": "CREATE_CONVERSATION", "conversationId": conversation, "kind": kind, "members": members })
}

/// The texts of the NEW_MESSAGE frames among `frames`, sorted.
pub fn texts(frames: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = frames
        .iter()
        .filter(|f| f["type"] == "NEW_MESSAGE")
        .filter_map(|f| f["data"]["content"]["text"].as_str().map(str::to_owned))
        .collect();
    texts.sort();
    texts
}

/// The emails moto's SES accepted, by recipient, for these addresses: (subject, body). moto
/// keeps one body per message: the HTML part when there is one. Read from the project's moto
/// launcher (`infra/local/moto_server.py`), which lists just those.
pub async fn sent_emails_to(addresses: &[&str]) -> BTreeMap<String, Vec<(String, String)>> {
    let (status, body) = http::request(
        "GET",
        &format!("{}/stackpro/ses/messages", endpoint()),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    let data: Value = serde_json::from_slice(&body).unwrap();
    let mut found: BTreeMap<String, Vec<(String, String)>> = addresses
        .iter()
        .map(|a| ((*a).to_owned(), Vec::new()))
        .collect();
    for m in data["messages"].as_array().cloned().unwrap_or_default() {
        let field = |name: &str| m[name].as_str().unwrap_or_default().to_owned();
        for to in m["destinations"]["ToAddresses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(list) = to.as_str().and_then(|to| found.get_mut(to)) {
                list.push((field("subject"), field("body")));
            }
        }
    }
    found
}

/// The emails moto's SES accepted for `to`.
pub async fn sent_emails(to: &str) -> Vec<(String, String)> {
    sent_emails_to(&[to]).await.remove(to).unwrap_or_default()
}
