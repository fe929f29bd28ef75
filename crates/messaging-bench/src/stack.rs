//! The benchmarked system: the template's table and queues on moto, the real `route` and
//! `broadcast` functions (timed, with their AWS requests counted) behind the local gateway, and
//! many WebSocket clients. `$connect`/`$disconnect` are stand-ins that only say yes: thousands of
//! connections are seeded straight into the table, because moto (not the system under test)
//! cannot register them through TransactWriteItems at that scale.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use messaging_aws::items::{ConnectionItem, MemberItem, SubscriptionItem};
use messaging_aws::table::{self, CONNECTION_TTL_SECONDS};
use messaging_aws::{BroadcastQueue, ConnectionsApi, MessagingTable, RequestCounter};
use messaging_core::{ConnectionId, ConversationId, Role, TenantId, UserId};
use messaging_devstack::stream_source::StreamEventSource;
use messaging_devstack::{LocalResources, Template};
use messaging_gateway::{management_endpoint, Functions, GatewayConfig, RunningGateway};
use messaging_handlers::services::{Parts, Services};
use messaging_handlers::{broadcast, route, search_indexer};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Handler durations, per function.
#[derive(Debug, Default)]
pub struct Timings {
    pub route: Vec<Duration>,
    pub broadcast: Vec<Duration>,
}

/// What the search indexer did, as its event source mapping ran it during the bench.
#[derive(Debug, Default, Clone)]
pub struct Indexing {
    /// Invocations (stream batches with at least one record passing the filter).
    pub batches: usize,
    pub lines: usize,
    pub blocks: usize,
    pub write_units: usize,
    /// Each invocation's duration.
    pub ms: Vec<f64>,
}

/// A frame a client received: (client index, text, when).
pub type Arrival = (usize, String, Instant);

pub struct Stack {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table_name: String,
    pub table: MessagingTable,
    pub route_dynamodb: RequestCounter,
    pub broadcast_dynamodb: RequestCounter,
    pub sqs_requests: RequestCounter,
    pub timings: Arc<Mutex<Timings>>,
    pub gateway: RunningGateway,
    pub api: ConnectionsApi,
    pub concurrency: usize,
    /// The route function's rate limiter (its counts: admitted, refused, counter writes).
    pub limiter: messaging_handlers::throttle::Limiter,
    /// The search indexer's work so far.
    pub indexing: Arc<Mutex<Indexing>>,
    index_source: Arc<StreamEventSource>,
    index_task: tokio::task::JoinHandle<()>,
    /// The search indexer's batching window (the template's `SearchIndexWindow`).
    pub index_window: Duration,
    indexer: Arc<messaging_handlers::search_indexer::SearchIndexerService>,
    connected: Arc<Mutex<HashMap<String, String>>>,
}

/// An open client: its index, its connection id, and its socket's sender half.
pub struct Client {
    pub index: usize,
    pub connection: ConnectionId,
    pub outgoing: mpsc::UnboundedSender<String>,
}

impl Stack {
    pub async fn start(endpoint: &str, concurrency: usize) -> anyhow::Result<Self> {
        let sdk = messaging_devstack::sdk_config(endpoint);
        let template = Template::workspace()?;
        let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let resources = LocalResources::create(
            &sdk,
            &template,
            &prefix,
            &format!("{prefix}@stackpro.bench"),
        )
        .await?;
        let table_name = resources.table_name.clone();
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs_requests = RequestCounter::new();
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .interceptor(sqs_requests.clone())
                .build(),
        );
        let counted_table = |counter: &RequestCounter| {
            let client = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .interceptor(counter.clone())
                    .build(),
            );
            MessagingTable::new(client, &table_name)
        };
        let (route_dynamodb, broadcast_dynamodb) = (RequestCounter::new(), RequestCounter::new());
        let queue_url = resources.queue_url("BroadcastQueue")?.to_owned();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut config = GatewayConfig::new(template);
        let endpoint_url = management_endpoint(listener.local_addr()?, &config.stage);
        // The functions under test, each with its own request counter.
        let parts = Parts {
            queue: BroadcastQueue::new(sqs.clone(), &queue_url),
            fanout_concurrency: concurrency,
            ..resources.parts(&sdk, &endpoint_url)?
        };
        let api = parts.connections.clone();
        let with_table = |table| {
            Services::new(&Parts {
                table,
                ..parts.clone()
            })
        };
        let route_service = Arc::new(with_table(counted_table(&route_dynamodb)).route);
        let limiter = route_service.limiter.clone();
        let broadcast_service = Arc::new(with_table(counted_table(&broadcast_dynamodb)).broadcast);
        let timings = Arc::new(Mutex::new(Timings::default()));
        let connected = Arc::new(Mutex::new(HashMap::new()));

        let mut functions = Functions::default();
        let seen = connected.clone();
        functions.register("connect", move |event: Value| {
            let index = event["queryStringParameters"]["client"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let id = event["requestContext"]["connectionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().insert(index, id);
            async { Ok::<_, String>(json!({ "statusCode": 200 })) }
        });
        functions.register("disconnect", |_: Value| async {
            Ok::<_, String>(json!({ "statusCode": 200 }))
        });
        let t = timings.clone();
        functions.register("route", move |event: ApiGatewayWebsocketProxyRequest| {
            let (service, t) = (route_service.clone(), t.clone());
            async move {
                let started = Instant::now();
                let response = route::handle(&service, &event).await;
                t.lock().unwrap().route.push(started.elapsed());
                Ok(response)
            }
        });
        let t = timings.clone();
        functions.register("broadcast", move |event: SqsEvent| {
            let (service, t) = (broadcast_service.clone(), t.clone());
            async move {
                let started = Instant::now();
                let response = broadcast::handle(&service, event).await;
                t.lock().unwrap().broadcast.push(started.elapsed());
                Ok(response)
            }
        });
        config.sqs = Some((
            sqs,
            BTreeMap::from([("BroadcastQueue".to_owned(), queue_url)]),
        ));
        config.sqs_wait_seconds = 1;
        let gateway = messaging_gateway::start(listener, config, functions).await?;
        // The search indexer on the table's stream, every batching window, as Lambda runs it
        // (driven here rather than by the gateway, to time it and add up its reports).
        let indexing = Arc::new(Mutex::new(Indexing::default()));
        let stream_arn = resources
            .stream_arn(&sdk)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the template gives the table no stream"))?;
        let definition = template_for_stream()?;
        let index_window = Duration::from_secs(definition.batching_window_seconds.max(1) as u64);
        let index_source = Arc::new(StreamEventSource::new(endpoint, stream_arn, definition)?);
        let indexer =
            Arc::new(with_table(MessagingTable::new(dynamodb.clone(), &table_name)).search_indexer);
        let (source, service, totals) = (index_source.clone(), indexer.clone(), indexing.clone());
        let index_task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(index_window).await;
                drain_index(&source, &service, Some(&totals), true).await;
            }
        });
        Ok(Self {
            table: MessagingTable::new(dynamodb.clone(), &table_name),
            dynamodb,
            table_name,
            route_dynamodb,
            broadcast_dynamodb,
            sqs_requests,
            timings,
            gateway,
            api,
            concurrency,
            limiter,
            indexing,
            index_source,
            index_task,
            index_window,
            indexer,
            connected,
        })
    }

    /// Opens `count` WebSocket clients (indices `first..first+count`); every text frame they
    /// receive goes to `arrivals`.
    pub async fn open(
        &self,
        first: usize,
        count: usize,
        arrivals: mpsc::UnboundedSender<Arrival>,
    ) -> anyhow::Result<Vec<Client>> {
        let url = self.gateway.websocket_url();
        let clients: Vec<anyhow::Result<Client>> = stream::iter(first..first + count)
            .map(|index| {
                let (url, arrivals) = (url.clone(), arrivals.clone());
                async move {
                    let (socket, _) =
                        tokio_tungstenite::connect_async(format!("{url}?client={index}")).await?;
                    let connection = self
                        .connected
                        .lock()
                        .unwrap()
                        .remove(&index.to_string())
                        .ok_or_else(|| anyhow::anyhow!("no $connect seen for client {index}"))?;
                    let (mut sink, mut source) = socket.split();
                    let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
                    tokio::spawn(async move {
                        while let Some(text) = to_send.recv().await {
                            if sink.send(Message::Text(text.into())).await.is_err() {
                                break;
                            }
                        }
                    });
                    tokio::spawn(async move {
                        while let Some(Ok(message)) = source.next().await {
                            if let Message::Text(text) = message {
                                let _ = arrivals.send((index, text.to_string(), Instant::now()));
                            }
                        }
                    });
                    Ok(Client {
                        index,
                        connection: ConnectionId::parse(connection)?,
                        outgoing,
                    })
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        clients.into_iter().collect()
    }

    /// Makes each client a member of `conversation` of `tenant`, subscribed: the items
    /// `$connect` and `JOIN_CONVERSATION` write, written in bulk. Each scenario uses its own
    /// tenant, as separate portals would: moto filters a whole partition on every Query, so one
    /// shared partition would measure moto, not the design.
    pub async fn seed(
        &self,
        tenant: &str,
        conversation: &str,
        clients: &[&Client],
    ) -> anyhow::Result<()> {
        let tenant = TenantId::parse(tenant)?;
        let conversation = ConversationId::parse(conversation)?;
        let keys = table::tenant(&tenant);
        let now = messaging_core::time::now_millis();
        let ttl = now / 1000 + CONNECTION_TTL_SECONDS;
        let mut items: Vec<
            std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
        > = Vec::new();
        for client in clients {
            let user = UserId::parse(format!("user{}", client.index))?;
            let registry = table::connection(&client.connection);
            items.push(serde_dynamo::to_item(ConnectionItem {
                pk: registry.pk,
                sk: registry.sk,
                connection_id: client.connection.clone(),
                client_id: tenant.clone(),
                user: user.clone(),
                role: Role::User,
                name: None,
                connected_at: now,
                ttl,
                subscriptions: vec![messaging_core::shards::Subscribed {
                    conversation: conversation.clone(),
                    shard: 0,
                }],
                quiet: Vec::new(),
            })?);
            let member = keys.member(&conversation, &user);
            items.push(serde_dynamo::to_item(MemberItem {
                pk: member.pk,
                sk: member.sk,
                gsi1pk: keys.user_conversations_gsi1pk(&user),
                gsi1sk: keys.conversation_gsi1sk(&conversation),
                conversation_id: conversation.clone(),
                user: user.clone(),
                added_by: user.clone(),
                joined_at: messaging_core::time::rfc3339_millis(now),
                last_read_seq: 0,
            })?);
            let subscription = keys.subscription(&conversation, 0, &client.connection);
            items.push(serde_dynamo::to_item(SubscriptionItem {
                pk: subscription.pk,
                sk: subscription.sk,
                connection_id: client.connection.clone(),
                user,
                ttl,
            })?);
        }
        let conversation_key = keys.conversation(&conversation);
        items.push(serde_dynamo::to_item(json!({
            "PK": conversation_key.pk, "SK": conversation_key.sk, "conversationId": conversation.as_str(),
            "kind": "project", "channel": tenant.channel(messaging_core::ChannelKind::Project, &conversation).to_string(),
            "createdBy": "bench", "createdAt": messaging_core::time::rfc3339_millis(now),
            "lastActivity": messaging_core::time::rfc3339_millis(now), "lastSeq": 0,
        }))?);
        for chunk in items.chunks(25) {
            let requests = chunk
                .iter()
                .map(|item| {
                    Ok(WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                        .build())
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut pending = Some(requests);
            while let Some(requests) = pending.take() {
                let output = self
                    .dynamodb
                    .batch_write_item()
                    .request_items(&self.table_name, requests)
                    .send()
                    .await?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table_name))
                    .filter(|r| !r.is_empty());
            }
        }
        self.catch_up_index().await;
        Ok(())
    }

    /// Runs the indexer over what the stream holds now, without counting it: after seeding,
    /// so that reading the seeded items' records (filtered out by the event source mapping,
    /// server-side and away from the table on AWS, but through moto's one lock here) does
    /// not stall the measured traffic.
    pub async fn catch_up_index(&self) {
        drain_index(&self.index_source, &self.indexer, None, false).await;
    }

    /// Stops the indexer's polling (a stack whose measuring is over must not load moto while
    /// the next one measures).
    pub fn stop_indexer(&self) {
        self.index_task.abort();
    }

    pub fn reset_counters(&self) {
        self.route_dynamodb.reset();
        self.broadcast_dynamodb.reset();
        self.sqs_requests.reset();
        *self.timings.lock().unwrap() = Timings::default();
    }
}

/// The search indexer's stream event source, as the template defines it.
fn template_for_stream() -> anyhow::Result<messaging_devstack::StreamEventSourceDefinition> {
    Template::workspace()?
        .stream_event_sources()?
        .into_iter()
        .find(|d| d.function == "search-indexer")
        .ok_or_else(|| anyhow::anyhow!("template.yaml has no search-indexer stream mapping"))
}

/// Hands the indexer what the stream has now: as Lambda does in one batching window (a batch,
/// and another at once only while they come full) or, `per_window: false`, all of it;
/// adds its reports to `totals`.
async fn drain_index(
    source: &StreamEventSource,
    indexer: &messaging_handlers::search_indexer::SearchIndexerService,
    totals: Option<&Mutex<Indexing>>,
    per_window: bool,
) {
    while let Ok(Some(event)) = source.next_batch().await {
        let full = source.is_full(&event);
        let Ok(records) = serde_json::from_value(event.clone()) else {
            break;
        };
        let started = Instant::now();
        let (response, report) = search_indexer::index(indexer, &records).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let response = serde_json::to_value(&response).unwrap_or_default();
        source.complete(&event, Ok(&response)).await;
        if let Some(totals) = totals {
            let mut t = totals.lock().unwrap();
            t.batches += 1;
            t.lines += report.lines;
            t.blocks += report.blocks;
            t.write_units += report.write_units;
            t.ms.push(ms);
        }
        if per_window && !full {
            break;
        }
    }
}
