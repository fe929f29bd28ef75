//! IAM, proven rather than assumed: every function runs under credentials that carry exactly
//! its policy from template.yaml, on a moto that enforces IAM (`infra/local/moto_server.py`
//! with `STACKPRO_ENFORCE_IAM=1`, started by the test command), through a journey that makes
//! every AWS call the functions make. A call its policy does not allow is answered 403, as in
//! AWS, and the test names it. moto checks actions, not resources: the policies are loaded with
//! `Resource: "*"`, and a separate test checks that every `Resource` names this stack's own.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use messaging_aws::{
    BroadcastQueue, FileStorage, Gauges, Mailer, MessagingTable, RequestCounter, Sns, WorkQueue,
};
use messaging_core::token::Contacts;
use messaging_core::{Principal, Role, TenantId, UserId};
use messaging_devstack::event_source::SqsEventSource;
use messaging_devstack::{tokens, LocalResources, PolicyResource, Template};
use messaging_handlers::services::{Parts, Services};
use serde_json::{json, Value};
use test_support::{events, http, ConnectionsRecorder};

const ADMIN: &str = "stackpro-admin";

/// The IAM-enforcing moto, or a panic that says how to run the tests.
fn iam_endpoint() -> String {
    std::env::var("STACKPRO_IAM_ENDPOINT").unwrap_or_else(|_| {
        panic!("STACKPRO_IAM_ENDPOINT is not set: run the suite with ./infra/local/test.sh, which starts an IAM-enforcing moto")
    })
}

/// One IAM Query API call, as the stack's administrator (moto skips authorization for it).
async fn iam(params: &[(&str, &str)]) -> String {
    let body: String = params
        .iter()
        .chain(&[("Version", "2010-05-08")])
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let headers = [
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        (
            "Authorization".to_owned(),
            format!("AWS4-HMAC-SHA256 Credential={ADMIN}/20261201/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"),
        ),
    ];
    let (status, response) = http::request(
        "POST",
        &format!("{}/", iam_endpoint()),
        &headers,
        body.as_bytes(),
    )
    .await;
    let text = String::from_utf8_lossy(&response).to_string();
    assert_eq!(status, 200, "IAM {params:?}: {text}");
    text
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn xml_field<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml.find(&open).map(|i| i + open.len()).expect(name);
    let end = xml[start..].find("</").expect(name) + start;
    &xml[start..end]
}

/// The policy document moto evaluates for a function: its statements from template.yaml, with
/// `Resource: "*"` (moto authorizes against `*`) and no conditions (moto does not evaluate
/// them; `policy_resources_name_this_stacks_resources` checks scoping).
fn policy_document(template: &Template, binary: &str) -> String {
    let statements: Vec<Value> = template.function_policies().unwrap()[binary]
        .iter()
        .map(|s| json!({ "Effect": s.effect, "Action": s.actions, "Resource": "*" }))
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// An IAM user carrying exactly `binary`'s policy, and an SDK configuration signing as it.
async fn function_principal(template: &Template, binary: &str, suffix: &str) -> SdkConfig {
    let user = format!("fn-{binary}-{suffix}");
    iam(&[("Action", "CreateUser"), ("UserName", &user)]).await;
    iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", &user),
        ("PolicyName", "function"),
        ("PolicyDocument", &policy_document(template, binary)),
    ])
    .await;
    let key = iam(&[("Action", "CreateAccessKey"), ("UserName", &user)]).await;
    messaging_devstack::sdk_config_as(
        &iam_endpoint(),
        xml_field(&key, "AccessKeyId"),
        xml_field(&key, "SecretAccessKey"),
    )
}

/// Runs the lifecycle queue's steps through `lifecycle` until none is left (the event source
/// mapping is Lambda's: it receives as the stack); how many.
async fn run_lifecycle_steps(
    f: &Functions,
    lifecycle: &messaging_handlers::lifecycle::LifecycleService,
) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&f.admin);
    let url = f.resources.queue_url("LifecycleQueue").unwrap().to_owned();
    let arn = messaging_devstack::template::queue_arn(&sqs, &url)
        .await
        .unwrap();
    let steps = SqsEventSource::new(sqs, &url, arn, "us-east-1");
    let mut ran = 0;
    while let Some(event) = steps.receive(0).await.unwrap() {
        let response = messaging_handlers::lifecycle::handle(lifecycle, event.clone()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        steps.complete(&event, &response).await.unwrap();
        ran += 1;
    }
    ran
}

/// One function's services, every client signing as that function and counting its requests
/// (and the 403s).
fn parts_as(
    sdk: &SdkConfig,
    resources: &LocalResources,
    connections: &str,
    requests: &RequestCounter,
) -> Parts {
    macro_rules! counted {
        ($sdk_crate:ident) => {
            $sdk_crate::Client::from_conf(
                $sdk_crate::config::Builder::from(sdk)
                    .interceptor(requests.clone())
                    .build(),
            )
        };
    }
    let sqs = counted!(aws_sdk_sqs);
    let local = resources.parts(sdk, connections).unwrap();
    Parts {
        table: MessagingTable::new(counted!(aws_sdk_dynamodb), &resources.table_name),
        queue: BroadcastQueue::new(sqs.clone(), resources.queue_url("BroadcastQueue").unwrap()),
        dead_letters: BroadcastQueue::new(
            sqs.clone(),
            resources.queue_url("BroadcastDeadLetterQueue").unwrap(),
        ),
        notify_queue: WorkQueue::new(sqs.clone(), resources.queue_url("NotifyQueue").unwrap()),
        lifecycle_queue: WorkQueue::new(sqs, resources.queue_url("LifecycleQueue").unwrap()),
        storage: FileStorage::new(sdk, &resources.bucket),
        objects: messaging_aws::Objects::new(sdk, &resources.bucket),
        mailer: Mailer::new(counted!(aws_sdk_sesv2), &resources.sender),
        sns: Sns::new(counted!(aws_sdk_sns)),
        gauges: Gauges::new(
            counted!(aws_sdk_cloudwatch),
            messaging_handlers::metrics::NAMESPACE,
        ),
        ..local
    }
}

/// Every function's service, each signing as its own IAM user.
struct Functions {
    admin: SdkConfig,
    /// Each function's credentials.
    sdks: BTreeMap<&'static str, SdkConfig>,
    resources: LocalResources,
    services: BTreeMap<&'static str, Services>,
    requests: BTreeMap<&'static str, RequestCounter>,
    events: SqsEventSource,
    gateway: ConnectionsRecorder,
}

const FUNCTIONS: [&str; 11] = [
    "connect",
    "disconnect",
    "route",
    "file-share",
    "http-api",
    "service-api",
    "image-preview",
    "lifecycle",
    "broadcast",
    "notify-batch",
    "search-indexer",
];

impl Functions {
    async fn start() -> Self {
        let template = Template::workspace().unwrap();
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let admin = messaging_devstack::sdk_config_as(&iam_endpoint(), ADMIN, "admin");
        let prefix = format!("iam-{suffix}");
        let resources = LocalResources::create(
            &admin,
            &template,
            &prefix,
            &format!("notify-{suffix}@stackpro.test"),
        )
        .await
        .expect("the stack's resources, as the administrator");
        let gateway = ConnectionsRecorder::start().await;
        let mut services = BTreeMap::new();
        let mut requests = BTreeMap::new();
        let mut sdks = BTreeMap::new();
        for binary in FUNCTIONS {
            let sdk = function_principal(&template, binary, &suffix).await;
            let counter = RequestCounter::new();
            let parts = parts_as(&sdk, &resources, gateway.endpoint(), &counter);
            services.insert(binary, Services::new(&parts));
            requests.insert(binary, counter);
            sdks.insert(binary, sdk);
        }
        // The event source mapping is Lambda's, not the function's: it polls as the stack.
        let events = SqsEventSource::new(
            aws_sdk_sqs::Client::new(&admin.clone()),
            resources.queue_url("BroadcastQueue").unwrap(),
            format!("arn:aws:sqs:us-east-1:123456789012:{prefix}-BroadcastQueue.fifo"),
            "us-east-1",
        );
        Self {
            admin,
            sdks,
            resources,
            services,
            requests,
            events,
            gateway,
        }
    }

    fn of(&self, binary: &str) -> &Services {
        &self.services[binary]
    }

    async fn connect(&self, tenant: &str, user: &str, role: Role) -> String {
        self.connect_with(tenant, user, role, &Contacts::default())
            .await
    }

    async fn connect_with(
        &self,
        tenant: &str,
        user: &str,
        role: Role,
        contacts: &Contacts,
    ) -> String {
        let principal = Principal {
            tenant: TenantId::parse(tenant).unwrap(),
            user: UserId::parse(user).unwrap(),
            role,
            name: None,
        };
        let token = tokens::mint_local_with(&principal, contacts, 3600).unwrap();
        let connection = events::new_connection_id();
        // Opened ten minutes ago: a 410 for it is a gone connection (pruned, which this file
        // runs under IAM), not one still connecting.
        let response = messaging_handlers::connect::handle(
            &self.of("connect").connect,
            &events::connect_at(
                &connection,
                Some(&token),
                messaging_core::time::now_millis() - 10 * 60 * 1000,
            ),
        )
        .await;
        assert_eq!(response.status_code, 200, "{:?}", response.body);
        connection
    }

    /// A device's SNS platform endpoint registered (by the portal's backend, as the stack
    /// administrator here) for `owner`.
    async fn push_endpoint(&self, owner: &str) -> String {
        let sns = aws_sdk_sns::Client::new(&self.admin);
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
            .unwrap()
            .platform_application_arn
            .unwrap();
        sns.create_platform_endpoint()
            .platform_application_arn(app)
            .token(uuid::Uuid::new_v4().to_string())
            .custom_user_data(owner)
            .send()
            .await
            .unwrap()
            .endpoint_arn
            .unwrap()
    }

    /// A frame through `route` or `file-share`, as the WebSocket API routes it; the answer.
    async fn send(&self, connection: &str, frame: Value) -> Value {
        let kind = frame["type"].as_str().unwrap().to_owned();
        let event = events::message(connection, &frame.to_string());
        // Boxed: a handler's future is large, and this test awaits many (a debug build would
        // overflow the test thread's stack).
        let response = if messaging_core::protocol::FILE_TYPES.contains(&kind.as_str()) {
            Box::pin(messaging_handlers::file_share::handle(
                &self.of("file-share").file_share,
                &event,
            ))
            .await
        } else {
            Box::pin(messaging_handlers::route::handle(
                &self.of("route").route,
                &event,
            ))
            .await
        };
        match response.body {
            Some(aws_lambda_events::encodings::Body::Text(text)) => {
                serde_json::from_str(&text).unwrap()
            }
            _ => Value::Null,
        }
    }

    /// Runs the queue through `broadcast` until it is empty.
    async fn pump(&self) {
        while let Some(event) = self.events.receive(0).await.unwrap() {
            let response = messaging_handlers::broadcast::handle(
                &self.of("broadcast").broadcast,
                event.clone(),
            )
            .await;
            self.events.complete(&event, &response).await.unwrap();
        }
    }
}

fn ok(answer: &Value, what: &str) {
    assert_ne!(answer["type"], "ERROR", "{what}: {answer}");
}

#[tokio::test]
async fn every_function_works_under_exactly_its_own_template_policy() {
    let mut f = Functions::start().await;
    // erin's identity provider verified her email and phone; her device has a push endpoint.
    // She turns SMS and push on, then leaves: she hears about the deal on every channel.
    let endpoint = f.push_endpoint("stackpro:acme:erin").await;
    let erin = f
        .connect_with(
            "acme",
            "erin",
            Role::User,
            &Contacts {
                email: Some("erin@example.com".into()),
                phone: Some("+14155550100".into()),
            },
        )
        .await;
    ok(&f.send(&erin, json!({ "type": "SET_PREFERENCES", "preferences": { "sms": true, "push": true, "pushEndpoint": endpoint } })).await, "preferences");
    let response = messaging_handlers::disconnect::handle(
        &f.of("disconnect").disconnect,
        &events::disconnect(&erin),
    )
    .await
    .unwrap();
    assert_eq!(response.status_code, 200);
    let owner = f.connect("acme", "owner", Role::Owner).await;
    let bob = f.connect("acme", "bob", Role::User).await;
    let carol = f.connect("acme", "carol", Role::User).await;

    // route: conversations, members, messages, changes, reads, status, notifications.
    ok(&f.send(&owner, json!({ "type": "CREATE_CONVERSATION", "conversationId": "deal", "kind": "project", "members": ["bob"] })).await, "create");
    ok(&f.send(&owner, json!({ "type": "ADD_MEMBERS", "conversationId": "deal", "members": ["carol", "dave", "erin"] })).await, "add members");
    ok(
        &f.send(
            &carol,
            json!({ "type": "JOIN_CONVERSATION", "conversationId": "deal" }),
        )
        .await,
        "join",
    );
    let sent = f.send(&bob, json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "clientMessageId": "m1", "content": { "text": "contract ready @dave" } })).await;
    ok(&sent, "chat");
    ok(&f.send(&bob, json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "clientMessageId": "m1", "content": { "text": "contract ready @dave" } })).await, "resend");
    ok(&f.send(&owner, json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "parentSeq": 1, "content": { "text": "thanks" } })).await, "reply");
    ok(&f.send(&bob, json!({ "type": "EDIT_MESSAGE", "conversationId": "deal", "seq": 1, "content": { "text": "contract signed" } })).await, "edit");
    ok(
        &f.send(
            &carol,
            json!({ "type": "ADD_REACTION", "conversationId": "deal", "seq": 1, "emoji": "+1" }),
        )
        .await,
        "react",
    );
    ok(
        &f.send(
            &carol,
            json!({ "type": "REMOVE_REACTION", "conversationId": "deal", "seq": 1, "emoji": "+1" }),
        )
        .await,
        "unreact",
    );
    f.send(
        &carol,
        json!({ "type": "TYPING_START", "conversationId": "deal" }),
    )
    .await;
    ok(
        &f.send(
            &carol,
            json!({ "type": "MARK_READ", "conversationId": "deal", "seq": 1 }),
        )
        .await,
        "mark read",
    );
    ok(
        &f.send(&carol, json!({ "type": "SET_PRESENCE", "status": "away" }))
            .await,
        "presence",
    );
    // search-indexer: the stream's message changes into search blocks (the stream is read
    // by Lambda's event source mapping, as the stack here).
    let stream = messaging_devstack::stream_source::StreamEventSource::new(
        &iam_endpoint(),
        f.resources.stream_arn(&f.admin).await.unwrap().unwrap(),
        Template::workspace()
            .unwrap()
            .stream_event_sources()
            .unwrap()[0]
            .clone(),
    )
    .unwrap()
    .with_credentials(ADMIN, "admin");
    let mut indexed = 0;
    while let Some(event) = stream.next_batch().await.unwrap() {
        let records = serde_json::from_value(event.clone()).unwrap();
        let (response, report) = messaging_handlers::search_indexer::index(
            &f.of("search-indexer").search_indexer,
            &records,
        )
        .await;
        assert_eq!(report.failed_tenants, 0, "{report:?}");
        indexed += report.lines;
        stream
            .complete(&event, Ok(&serde_json::to_value(&response).unwrap()))
            .await;
    }
    assert!(indexed >= 3, "the messages and the edit: {indexed}");
    for read in [
        json!({ "type": "LIST_CONVERSATIONS" }),
        json!({ "type": "GET_HISTORY", "conversationId": "deal" }),
        json!({ "type": "GET_HISTORY", "conversationId": "deal", "sinceSeq": 0 }),
        json!({ "type": "GET_THREAD", "conversationId": "deal", "seq": 1 }),
        json!({ "type": "SEARCH", "query": "contract" }),
        json!({ "type": "GET_PRESENCE", "conversationId": "deal" }),
        json!({ "type": "LIST_NOTIFICATIONS" }),
        json!({ "type": "MARK_NOTIFICATIONS_READ", "all": true }),
        json!({ "type": "GET_PREFERENCES" }),
    ] {
        ok(&f.send(&carol, read.clone()).await, &read.to_string());
    }
    ok(
        &f.send(
            &owner,
            json!({ "type": "DELETE_MESSAGE", "conversationId": "deal", "seq": 2 }),
        )
        .await,
        "delete",
    );
    ok(
        &f.send(
            &owner,
            json!({ "type": "REMOVE_MEMBER", "conversationId": "deal", "userId": "dave" }),
        )
        .await,
        "remove member",
    );

    // file-share: register, share (offline user: a notification), comments, URLs, revoke.
    let file = f.send(&bob, json!({ "type": "REGISTER_FILE", "fileId": "f1", "name": "a.pdf", "size": 10, "mimeType": "application/pdf" })).await;
    ok(&file, "register");
    ok(&f.send(&bob, json!({ "type": "SHARE_FILE", "fileId": "f1", "userId": "owner", "permissions": { "read": true, "comment": true, "download": true } })).await, "share (online)");
    ok(&f.send(&bob, json!({ "type": "SHARE_FILE", "fileId": "f1", "userId": "erin", "permissions": { "read": true } })).await, "share (offline)");
    ok(&f.send(&owner, json!({ "type": "FILE_COMMENT", "fileId": "f1", "content": "page 2?", "position": { "page": 2, "x": 0.5, "y": 0.5 } })).await, "comment");
    for read in [
        json!({ "type": "LIST_FILES" }),
        json!({ "type": "GET_FILE", "fileId": "f1" }),
        json!({ "type": "LIST_FILE_COMMENTS", "fileId": "f1" }),
        json!({ "type": "GET_DOWNLOAD_URL", "fileId": "f1" }),
        json!({ "type": "GET_UPLOAD_URL", "fileId": "f1", "size": 20 }),
    ] {
        ok(&f.send(&owner, read.clone()).await, &read.to_string());
    }
    ok(
        &f.send(
            &bob,
            json!({ "type": "REVOKE_FILE_SHARE", "fileId": "f1", "userId": "erin" }),
        )
        .await,
        "revoke",
    );

    // A small conversation's message: route posts it, writes the notifications for the
    // offline and mentioned, and prunes a 410.
    f.gateway.mark_gone(&carol);
    f.send(
        &owner,
        json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "content": { "text": "later" } }),
    )
    .await;
    // broadcast: the same for a queued message (a stack with DirectFanout = 0).
    let bobs_second = f.connect("acme", "bob", Role::User).await;
    f.gateway.mark_gone(&bobs_second);
    f.services.get_mut("route").unwrap().route.direct_fanout = 0;
    f.send(
        &owner,
        json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "content": { "text": "queued" } }),
    )
    .await;
    f.pump().await;

    // http-api: the reads and the unsubscribe link.
    let http = &f.of("http-api").http_api;
    let token_of = |user: &str, role| {
        tokens::mint_local(
            &Principal {
                tenant: TenantId::parse("acme").unwrap(),
                user: UserId::parse(user).unwrap(),
                role,
                name: None,
            },
            600,
        )
        .unwrap()
    };
    let (token, owners) = (token_of("bob", Role::User), token_of("owner", Role::Owner));
    for (path, query, token) in [
        ("/conversations", None, &token),
        ("/conversations/deal/messages", None, &token),
        ("/conversations/deal/messages/1/thread", None, &token),
        ("/search", Some(("q", "contract")), &token),
        // The audit log: written by route above (the conversation, its members).
        ("/audit", None, &owners),
    ] {
        use lambda_http::RequestExt;
        let request = lambda_http::http::Request::builder()
            .uri(format!("https://api.test{path}"))
            .header("authorization", format!("Bearer {token}"))
            .body(lambda_http::Body::Empty)
            .unwrap()
            .with_query_string_parameters(
                query
                    .map(|(k, v)| std::collections::HashMap::from([(k.to_owned(), v.to_owned())]))
                    .unwrap_or_default(),
            );
        let response = messaging_handlers::http_api::handle(http, request).await;
        assert_eq!(response.status(), 200, "{path}: {:?}", response.body());
    }

    // service-api: the portal's backend on every route, one idempotent repeat, a user's role
    // set while they are connected (bob is).
    let service = &f.of("service-api").service_api;
    for (method, path, key, body, status) in [
        (
            "PUT",
            "/service/tenants/acme/users/bob",
            None,
            r#"{"name":"Bob","role":"USER"}"#,
            200,
        ),
        (
            "POST",
            "/service/tenants/acme/conversations",
            Some("c1"),
            r#"{"conversationId":"portal-1","kind":"project","members":["bob"]}"#,
            201,
        ),
        (
            "POST",
            "/service/tenants/acme/conversations",
            Some("c1"),
            r#"{"conversationId":"portal-1","kind":"project","members":["bob"]}"#,
            201,
        ),
        (
            "POST",
            "/service/tenants/acme/conversations/portal-1/members",
            Some("m1"),
            r#"{"members":["carol"]}"#,
            200,
        ),
        (
            "POST",
            "/service/tenants/acme/conversations/portal-1/messages",
            Some("s1"),
            r#"{"text":"Invoice #42 was paid"}"#,
            201,
        ),
        (
            "DELETE",
            "/service/tenants/acme/conversations/portal-1/members/carol",
            None,
            "",
            200,
        ),
    ] {
        let request = test_support::service_api::iam_request(method, path, key, body);
        let response = messaging_handlers::service_api::handle(service, request).await;
        assert_eq!(
            response.status(),
            status,
            "{method} {path}: {:?}",
            response.body()
        );
    }

    // image-preview: an image bob uploads through file-share's presigned PUT; S3 notifies the
    // uploads queue, Lambda's mapping (the stack's) hands the record over, and the preview is
    // read, made and stored under the function's own policy.
    let png = {
        let image: image::RgbImage =
            image::ImageBuffer::from_fn(64, 48, |x, _| image::Rgb([x as u8, 0, 0]));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let registered = f.send(&bob, json!({ "type": "REGISTER_FILE", "fileId": "pic", "name": "p.png", "size": png.len(), "mimeType": "image/png" })).await;
    ok(&registered, "register an image");
    // The upload itself is the client's, through file-share's presigned PUT (the IAM
    // emulator does not check presigned requests; tests/integration/previews.rs makes real
    // ones): here the administrator writes the object, as S3 would take it.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&f.admin)
            .force_path_style(true)
            .build(),
    );
    s3.put_object()
        .bucket(&f.resources.bucket)
        .key("tenants/acme/files/pic")
        .content_type("image/png")
        .body(png.into())
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&f.admin);
    let uploads_url = f.resources.queue_url("UploadsQueue").unwrap().to_owned();
    let uploads_arn = messaging_devstack::template::queue_arn(&sqs, &uploads_url)
        .await
        .unwrap();
    let uploads = SqsEventSource::new(sqs, &uploads_url, uploads_arn, "us-east-1");
    let mut handled = 0;
    while let Some(event) = uploads.receive(1).await.unwrap() {
        let response = messaging_handlers::image_preview::handle(
            &f.of("image-preview").image_preview,
            event.clone(),
        )
        .await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        uploads.complete(&event, &response).await.unwrap();
        handled += 1;
    }
    assert!(handled > 0, "the upload was notified");
    let file = f
        .send(&bob, json!({ "type": "GET_FILE", "fileId": "pic" }))
        .await;
    assert_eq!(file["file"]["image"]["preview"], "ready", "{file}");

    // lifecycle: an export and an erasure started by the portal (service-api queues them and
    // signs the export's link), every step run by the function under its own policy; the
    // event source mapping is the stack's. Small pages: many steps, a carry between them.
    // And a tenant offboarded: initech, with a connection, a conversation and a file.
    let ivan = f.connect("initech", "ivan", Role::Owner).await;
    let create = json!({ "type": "CREATE_CONVERSATION", "conversationId": "i", "kind": "project" });
    ok(&f.send(&ivan, create).await, "initech's conversation");
    s3.put_object()
        .bucket(&f.resources.bucket)
        .key("tenants/initech/files/doc")
        .body(b"doc".to_vec().into())
        .send()
        .await
        .unwrap();
    let service = &f.of("service-api").service_api;
    let mut jobs = Vec::new();
    for (path, key, body) in [
        ("/service/tenants/acme/exports", "x1", r#"{"userId":"bob"}"#),
        ("/service/tenants/acme/exports", "x2", "{}"),
        (
            "/service/tenants/acme/erasures",
            "e1",
            r#"{"userId":"bob"}"#,
        ),
        (
            "/service/tenants/initech/offboarding",
            "o1",
            r#"{"confirm":"initech"}"#,
        ),
    ] {
        let request = test_support::service_api::iam_request("POST", path, Some(key), body);
        let response = messaging_handlers::service_api::handle(service, request).await;
        assert_eq!(response.status(), 202, "{path}: {:?}", response.body());
        let lambda_http::Body::Text(text) = response.body() else {
            panic!("a JSON body")
        };
        let job: Value = serde_json::from_str(text).unwrap();
        jobs.push((
            job["job"]["clientId"].as_str().unwrap().to_owned(),
            job["job"]["jobId"].as_str().unwrap().to_owned(),
        ));
        // One job at a time: the erasure runs after the exports read bob's data.
        let mut lifecycle = f.of("lifecycle").lifecycle.clone();
        lifecycle.page_limit = Some(5);
        run_lifecycle_steps(&f, &lifecycle).await;
    }
    for (tenant, job) in &jobs {
        let path = format!("/service/tenants/{tenant}/jobs/{job}");
        let request = test_support::service_api::iam_request("GET", &path, None, "");
        let response = messaging_handlers::service_api::handle(service, request).await;
        let lambda_http::Body::Text(text) = response.body() else {
            panic!("a JSON body")
        };
        let job: Value = serde_json::from_str(text).unwrap();
        assert_eq!(job["job"]["state"], "completed", "{job}");
        if job["job"]["kind"] == "export" {
            assert!(
                job["job"]["progress"]["steps"].as_u64().unwrap() > 1,
                "{job}"
            );
            // The link is signed by service-api (its policy: s3:GetObject on exports/*); the
            // IAM emulator does not check presigned requests, so it is not fetched here
            // (tests/integration/lifecycle.rs downloads exports through it).
            assert_eq!(job["download"]["method"], "GET", "{job}");
        } else if job["job"]["kind"] == "offboard" {
            assert!(job["job"]["verifiedEmptyAt"].is_string(), "{job}");
            assert!(
                job["job"]["progress"]["objectsDeleted"].as_u64().unwrap() > 0,
                "{job}"
            );
        } else {
            assert!(
                job["job"]["progress"]["messagesErased"].as_u64().unwrap() > 0,
                "{job}"
            );
        }
    }

    // notify-batch: digests by email and SMS, one failed send released, the gauge.
    let notify = &f.of("notify-batch").notify_batch;
    let later = messaging_core::time::now_millis() + notify.window_millis;
    // The gauge counts the users active on the run's UTC day; a run past midnight (the suite
    // ran at 23:5x) would find nobody yet, as it would on AWS. Count bob for that day too,
    // as his connecting after midnight would.
    let run_day = &messaging_core::time::rfc3339_millis(later)[..10];
    f.of("connect")
        .connect
        .table
        .record_active(
            &TenantId::parse("acme").unwrap(),
            &UserId::parse("bob").unwrap(),
            run_day,
        )
        .await
        .unwrap();
    let mut broken = notify.clone();
    broken.mailer = broken.mailer.with_sender("nobody@unverified.test");
    let failed = messaging_handlers::notify_batch::run(&broken, later)
        .await
        .unwrap();
    assert!(failed.failed > 0, "{failed:?}");
    // As deployed: the coordinator queues the tenants, a worker settles each one (the event
    // source mapping is Lambda's: it receives as the stack).
    let queued = messaging_handlers::notify_batch::coordinate(notify, later)
        .await
        .unwrap();
    assert!(queued.queued > 0, "{queued:?}");
    let work_source = SqsEventSource::new(
        aws_sdk_sqs::Client::new(&f.admin),
        f.resources.queue_url("NotifyQueue").unwrap(),
        "arn:aws:sqs:us-east-1:123456789012:NotifyQueue",
        "us-east-1",
    );
    let worker = messaging_handlers::notify_batch::NotifyBatchService {
        window_millis: 0,
        ..notify.clone()
    };
    let mut sent = 0;
    while let Some(event) = work_source.receive(0).await.unwrap() {
        let response =
            messaging_handlers::notify_batch::handle_work(&worker, event.clone(), None).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        work_source.complete(&event, &response).await.unwrap();
        sent += 1;
    }
    assert!(sent > 0);

    // Retention: set by the portal (service-api), swept by the lifecycle function's daily
    // run (the GSI1 list of tenants, then a sweep job) a month and a day later.
    let service = &f.of("service-api").service_api;
    let request = test_support::service_api::iam_request(
        "PUT",
        "/service/tenants/acme/retention",
        None,
        r#"{"days":30}"#,
    );
    let response = messaging_handlers::service_api::handle(service, request).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let lifecycle = &f.of("lifecycle").lifecycle;
    let later = messaging_core::time::now_millis() + 31 * 24 * 60 * 60 * 1000;
    let sweeps = messaging_handlers::lifecycle::start_retention_sweeps(lifecycle, later)
        .await
        .unwrap();
    assert_eq!(sweeps, 1);
    assert!(
        run_lifecycle_steps(&f, lifecycle).await > 0,
        "the sweep ran"
    );

    // disconnect.
    for connection in [&owner, &bob] {
        let response = messaging_handlers::disconnect::handle(
            &f.of("disconnect").disconnect,
            &events::disconnect(connection),
        )
        .await
        .unwrap();
        assert_eq!(response.status_code, 200);
    }

    // Nothing was refused, and each function made the calls that prove its policy.
    let mut refused = Vec::new();
    for (binary, requests) in &f.requests {
        for operation in requests.denied() {
            refused.push(format!("{binary}: {operation}"));
        }
    }
    assert!(
        refused.is_empty(),
        "calls the template's policies do not allow (moto answered 403):\n  {}",
        refused.join("\n  ")
    );
    // `@connections` is API Gateway's, not moto's: the recorder saw who signed each post, and
    // every function that posted must hold execute-api:ManageConnections (route posts a new
    // message's first recipients itself; broadcast the rest).
    let template = Template::workspace().unwrap();
    let policies = template.function_policies().unwrap();
    let signers = f.gateway.signers();
    let mut posted = Vec::new();
    for binary in FUNCTIONS {
        let key = f.sdks[binary]
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap()
            .access_key_id()
            .to_owned();
        if !signers.contains(&key) {
            continue;
        }
        posted.push(binary);
        assert!(
            policies[binary].iter().any(|s| s.effect == "Allow"
                && s.actions
                    .iter()
                    .any(|a| a == "execute-api:ManageConnections")),
            "{binary} posted to @connections without execute-api:ManageConnections"
        );
    }
    assert_eq!(posted, ["route", "broadcast"], "who posted to @connections");
    let made = |binary: &str| f.requests[binary].snapshot();
    for (binary, operation) in [
        ("connect", "TransactWriteItems"),
        ("route", "TransactWriteItems"),
        // Notifications for users who are away: conditional puts since they are redelivery-safe.
        ("file-share", "PutItem"),
        ("file-share", "UpdateItem"),
        ("broadcast", "BatchWriteItem"),
        ("notify-batch", "SendEmail"),
        ("notify-batch", "SendMessageBatch"),
        ("broadcast", "UpdateItem"),
        ("notify-batch", "Publish"),
        ("notify-batch", "PutMetricData"),
        ("route", "GetEndpointAttributes"),
        ("disconnect", "DeleteItem"),
        ("http-api", "BatchGetItem"),
        ("service-api", "TransactWriteItems"),
        ("service-api", "SendMessage"),
        // (image-preview's S3 client is not counted: its GetObject and PutObject under its
        // policy are shown by the preview it made above.)
        ("image-preview", "UpdateItem"),
        ("lifecycle", "Query"),
        ("lifecycle", "BatchWriteItem"),
        ("lifecycle", "BatchGetItem"),
        ("lifecycle", "PutItem"),
        ("lifecycle", "SendMessage"),
        ("search-indexer", "BatchWriteItem"),
    ] {
        assert!(
            made(binary).contains_key(operation),
            "{binary} never called {operation}: {:?}",
            made(binary)
        );
    }
}

#[tokio::test]
async fn each_function_reads_the_secrets_its_environment_names_and_no_other_function_can() {
    // What a function does at start: read each secret its environment names by id, under its
    // own policy. A function whose policy has no secretsmanager:GetSecretValue is refused.
    let template = Template::workspace().unwrap();
    let functions = Functions::start().await;
    let environments = template.function_environment().unwrap();
    let mut read = Vec::new();
    for binary in FUNCTIONS {
        let named: Vec<(String, String)> = environments[binary]
            .iter()
            .filter_map(|(name, value)| {
                let id = messaging_devstack::template::reference(Some(value))?;
                let arn = functions.resources.secrets.get(&id)?;
                Some((name.clone(), arn.clone()))
            })
            .collect();
        for (name, arn) in &named {
            let setting = name.trim_end_matches("_ID");
            let value =
                messaging_handlers::config::secret_from(&functions.sdks[binary], setting, arn)
                    .await
                    .unwrap_or_else(|e| panic!("{binary} cannot read {name}: {e}"));
            assert!(value.len() >= 32, "{binary}: {name}");
            read.push(format!("{binary}:{name}"));
        }
        if named.is_empty() {
            let any = functions.resources.secret_arn("SigningSecret").unwrap();
            let refused = messaging_handlers::config::secret_from(
                &functions.sdks[binary],
                "CURSOR_SECRET",
                any,
            )
            .await
            .expect_err("a function without secrets read one");
            assert!(
                refused.to_string().contains("AccessDenied"),
                "{binary}: {refused}"
            );
        }
    }
    assert_eq!(
        read,
        [
            "connect:JWT_VERIFICATION_KEY_ID",
            "route:CURSOR_SECRET_ID",
            "file-share:CURSOR_SECRET_ID",
            "http-api:CURSOR_SECRET_ID",
            "http-api:JWT_VERIFICATION_KEY_ID",
            "notify-batch:CURSOR_SECRET_ID",
        ]
    );
}

#[tokio::test]
async fn the_iam_moto_refuses_a_transaction_action_the_policy_lacks() {
    // The launcher authorizes a transaction action by action, as AWS does: a policy with
    // PutItem but not UpdateItem may not run a transaction that updates.
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let admin = messaging_devstack::sdk_config_as(&iam_endpoint(), ADMIN, "admin");
    let template = Template::workspace().unwrap();
    let table = format!("iam-tx-{suffix}");
    messaging_devstack::template::create_table(
        &aws_sdk_dynamodb::Client::new(&admin),
        &template.table().unwrap(),
        &table,
    )
    .await
    .unwrap();
    let user = format!("tx-{suffix}");
    iam(&[("Action", "CreateUser"), ("UserName", &user)]).await;
    let policy = json!({ "Version": "2012-10-17", "Statement": [
        { "Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": "*" } ] });
    iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", &user),
        ("PolicyName", "p"),
        ("PolicyDocument", &policy.to_string()),
    ])
    .await;
    let key = iam(&[("Action", "CreateAccessKey"), ("UserName", &user)]).await;
    let sdk = messaging_devstack::sdk_config_as(
        &iam_endpoint(),
        xml_field(&key, "AccessKeyId"),
        xml_field(&key, "SecretAccessKey"),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    use aws_sdk_dynamodb::types::{AttributeValue as A, Put, TransactWriteItem, Update};
    let put = |sk: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .item("PK", A::S("p".into()))
                    .item("SK", A::S(sk.into()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    dynamodb
        .transact_write_items()
        .transact_items(put("a"))
        .transact_items(put("b"))
        .send()
        .await
        .expect("puts alone are allowed");
    let update = TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(&table)
                .key("PK", A::S("p".into()))
                .key("SK", A::S("a".into()))
                .update_expression("SET x = :x")
                .expression_attribute_values(":x", A::N("1".into()))
                .build()
                .unwrap(),
        )
        .build();
    let refused = dynamodb
        .transact_write_items()
        .transact_items(put("c"))
        .transact_items(update)
        .send()
        .await
        .expect_err("UpdateItem is not allowed");
    let text = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&refused));
    assert!(text.contains("dynamodb:UpdateItem"), "{text}");
}

#[test]
fn policy_resources_name_this_stacks_resources() {
    // A `Resource` is one of this template's resources, an ARN built from its settings (the
    // sender's SES identity), or `*` only for the two actions AWS cannot scope to a resource
    // here: PutMetricData (scoped by a namespace condition) and Publish to a phone number (SMS
    // has no ARN).
    let template = Template::workspace().unwrap();
    let mut wrong = Vec::new();
    for (binary, statements) in template.function_policies().unwrap() {
        for statement in statements {
            for resource in &statement.resources {
                let fine = match resource {
                    PolicyResource::Ref(id) => template.has_resource(id),
                    PolicyResource::Any => statement.actions.iter().all(|a| {
                        (a == "cloudwatch:PutMetricData" && statement.has_condition)
                            || a == "sns:Publish"
                    }),
                    // A resource of the stack (`${Table.Arn}/index/GSI1`), an ARN built from
                    // its settings (the configured sender's SES identity), or this account's
                    // SNS platform endpoints (push; each is checked to be its user's).
                    PolicyResource::Sub(names) => {
                        let settings_only = names.iter().all(|n| {
                            n.starts_with("AWS::")
                                || n.starts_with("var:")
                                || template.has_parameter(n)
                        });
                        names.iter().any(|n| template.has_resource(n))
                            || (settings_only && names.iter().any(|n| !n.starts_with("AWS::")))
                            || (settings_only
                                && statement.actions.iter().all(|a| {
                                    a == "sns:Publish" || a == "sns:GetEndpointAttributes"
                                }))
                    }
                    PolicyResource::Literal(_) => false,
                };
                if !fine {
                    wrong.push(format!("{binary}: {:?} on {resource:?}", statement.actions));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
