//! A local API Gateway WebSocket API for StackPro Messaging.
//!
//! AWS's own tools cannot run a WebSocket API locally; this does, against the real function
//! code: it accepts WebSocket clients, invokes the functions with the events API Gateway
//! sends (routes, selection expression and two-way responses read from `template.yaml`),
//! serves the `@connections` management API the AWS SDKs call, enforces API Gateway's frame,
//! message, idle and duration limits, runs the template's SQS event source mappings and
//! EventBridge schedules, and serves the demo web client.

pub mod connections;
mod demo;
pub use demo::default_demo_dir;
pub mod events;
pub mod functions;
mod http_api;
mod management;
pub mod routes;
mod schedule;
pub mod sigv4;
mod sqs;
mod streams;
mod websocket;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use messaging_devstack::event_source::SqsEventSource;
use messaging_devstack::stream_source::StreamEventSource;
use messaging_devstack::Template;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

pub use connections::Connections;
pub use functions::Functions;

use events::ApiIdentity;
use routes::RouteTable;

/// API Gateway's WebSocket limits (the defaults are AWS's).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame a client may send (32 KB); larger closes the connection with 1009.
    pub max_frame_bytes: usize,
    /// Largest message, in one or more frames (128 KB); also the `@connections` POST limit.
    pub max_message_bytes: usize,
    /// A connection with no client frame for this long is closed (10 minutes).
    pub idle_timeout: Duration,
    /// No connection lives longer (2 hours).
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_duration: Duration::from_secs(2 * 60 * 60),
        }
    }
}

/// What the gateway serves, and how.
pub struct GatewayConfig {
    pub stage: String,
    pub api_id: String,
    pub region: String,
    pub limits: Limits,
    pub template: Template,
    /// The SQS client and queue URLs by the template's logical ids, for the event source
    /// mappings. `None`: no event source mappings.
    pub sqs: Option<(aws_sdk_sqs::Client, BTreeMap<String, String>)>,
    /// Long-poll wait of the event source mappings.
    pub sqs_wait_seconds: i32,
    /// Make failed records visible again after this long (default: the queue's timeout).
    pub failed_visibility_seconds: Option<i32>,
    /// Run every schedule at this period instead of its `rate(…)`.
    pub schedule_every: Option<Duration>,
    /// The emulator endpoint (`http://…`) and the table's stream ARN, for the DynamoDB stream
    /// event source mappings. `None`: no stream mappings.
    pub streams: Option<(String, String)>,
    /// Read the stream at this period instead of each mapping's batching window.
    pub stream_every: Option<Duration>,
    /// Serve the demo web client built in this directory (see [`default_demo_dir`]) and
    /// `/dev/token`. `None`: neither.
    pub demo: Option<std::path::PathBuf>,
    /// Append every text frame sent to a client, one per line, to a file in this directory
    /// (the test command validates them against docs/asyncapi.yaml).
    pub frame_log: Option<std::path::PathBuf>,
    /// Who may call the HTTP API's `AWS_IAM` routes (the server API), with their keys and
    /// policies. Default: [`sigv4::ServiceCaller::local_portal_backend`].
    pub service_callers: Vec<sigv4::ServiceCaller>,
}

impl GatewayConfig {
    /// AWS's defaults, for `template`.
    pub fn new(template: Template) -> Self {
        Self {
            stage: "local".into(),
            api_id: "local".into(),
            region: "us-east-1".into(),
            limits: Limits::default(),
            template,
            sqs: None,
            sqs_wait_seconds: 1,
            failed_visibility_seconds: None,
            schedule_every: None,
            streams: None,
            stream_every: None,
            demo: None,
            frame_log: None,
            service_callers: vec![sigv4::ServiceCaller::local_portal_backend()],
        }
    }
}

/// Every text frame a gateway sends to its clients, a line each, in a file of its own.
pub(crate) struct FrameLog {
    file: std::sync::Mutex<std::io::LineWriter<std::fs::File>>,
}

impl FrameLog {
    fn create(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let name = format!(
            "frames-{}-{}.jsonl",
            std::process::id(),
            events::new_request_id()
        )
        .replace(['/', '+', '='], "_");
        let file = std::fs::File::create(dir.join(name))?;
        Ok(Self {
            file: std::sync::Mutex::new(std::io::LineWriter::new(file)),
        })
    }

    pub(crate) fn record(&self, frame: &str) {
        use std::io::Write;
        if let Ok(mut file) = self.file.lock() {
            // Server frames are serialised JSON: no raw newline inside one.
            let _ = writeln!(file, "{frame}");
        }
    }
}

pub(crate) struct Shared {
    pub api: ApiIdentity,
    pub limits: Limits,
    pub routes: RouteTable,
    pub functions: Functions,
    pub connections: Connections,
    pub shutdown: watch::Receiver<bool>,
    pub region: String,
    pub sqs_wait_seconds: i32,
    pub failed_visibility_seconds: Option<i32>,
    pub frame_log: Option<FrameLog>,
    pub service_callers: Vec<sigv4::ServiceCaller>,
}

/// The `@connections` endpoint of a gateway listening on `addr` (what the broadcast function
/// is configured with).
pub fn management_endpoint(addr: SocketAddr, stage: &str) -> String {
    format!("http://{addr}/{stage}")
}

/// What API Gateway answers a request no route matches (path or method): 404 with its JSON.
pub(crate) async fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"message":"Not Found"}"#,
    )
        .into_response()
}

/// A started gateway.
pub struct RunningGateway {
    addr: SocketAddr,
    stage: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
}

impl RunningGateway {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", self.addr, self.stage)
    }

    pub fn management_endpoint(&self) -> String {
        management_endpoint(self.addr, &self.stage)
    }

    pub fn page_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn connections(&self) -> &Connections {
        &self.shared.connections
    }

    /// Closes every connection (1001, running `$disconnect` for each), stops the event
    /// source mappings and schedules, and stops serving.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.shared.connections.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        self.server.abort();
        let _ = self.server.await;
    }
}

/// Starts serving on `listener` (bind it first: the functions need the management endpoint).
pub async fn start(
    listener: TcpListener,
    config: GatewayConfig,
    functions: Functions,
) -> anyhow::Result<RunningGateway> {
    let addr = listener.local_addr()?;
    let routes = RouteTable::new(&config.template.websocket_api()?)?;
    for key in [routes::CONNECT, routes::DISCONNECT, routes::DEFAULT] {
        if let Some(route) = routes.get(key) {
            anyhow::ensure!(
                functions.contains(&route.function),
                "route {key} needs function {:?}",
                route.function
            );
        }
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        api: ApiIdentity {
            api_id: config.api_id.clone(),
            stage: config.stage.clone(),
            domain_name: addr.to_string(),
        },
        limits: config.limits.clone(),
        routes,
        functions,
        connections: Connections::default(),
        shutdown: shutdown_rx.clone(),
        region: config.region.clone(),
        sqs_wait_seconds: config.sqs_wait_seconds,
        failed_visibility_seconds: config.failed_visibility_seconds,
        service_callers: config.service_callers.clone(),
        frame_log: config
            .frame_log
            .as_deref()
            .map(FrameLog::create)
            .transpose()?,
    });

    let mut tasks = Vec::new();
    if let Some((client, urls)) = &config.sqs {
        for definition in config.template.sqs_event_sources()? {
            let Some(url) = urls.get(&definition.queue_logical_id) else {
                warn!(queue = %definition.queue_logical_id, "no URL for this queue: its event source mapping does not run");
                continue;
            };
            let arn = format!(
                "arn:aws:sqs:{}:123456789012:{}",
                config.region,
                url.rsplit('/').next().unwrap_or_default()
            );
            let source = SqsEventSource::new(client.clone(), url, arn, &config.region)
                .with_batch_size(definition.batch_size);
            tasks.push(tokio::spawn(sqs::run(
                shared.clone(),
                sqs::Mapping { definition, source },
            )));
        }
    }
    if let Some((endpoint, stream_arn)) = &config.streams {
        for definition in config.template.stream_event_sources()? {
            // Lambda polls a shard about four times a second, then waits for the batching
            // window to fill.
            let every = config.stream_every.unwrap_or(Duration::from_millis(
                (definition.batching_window_seconds.max(0) as u64 * 1000).max(250),
            ));
            let source = StreamEventSource::new(endpoint, stream_arn.clone(), definition)?;
            tasks.push(tokio::spawn(streams::run(shared.clone(), source, every)));
        }
    }
    for schedule in config.template.schedules()? {
        if !shared.functions.contains(&schedule.function) {
            warn!(function = %schedule.function, "scheduled function has no local implementation");
            continue;
        }
        let every = config.schedule_every.unwrap_or(schedule.every);
        tasks.push(tokio::spawn(schedule::run(shared.clone(), schedule, every)));
    }

    let mut app = Router::new()
        .route("/{stage}", get(websocket::upgrade))
        .route(
            "/{stage}/@connections/{id}",
            get(management::get)
                .post(management::post)
                .delete(management::delete),
        );
    for (path, route) in http_api::routes(&config.template.http_routes()?) {
        // A method the path has no route for: API Gateway's 404, not axum's empty 405.
        app = app.route(&path, route.fallback(not_found));
    }
    // A path nothing is routed to.
    app = app.fallback(not_found);
    if let Some(dir) = &config.demo {
        app = app.merge(demo::router(dir.clone()));
    }
    let app = app.with_state(shared.clone());
    let mut stop = shutdown_rx;
    let server = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let graceful = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, service)
            .with_graceful_shutdown(graceful)
            .await
        {
            warn!(error = %e, "gateway server stopped");
        }
    });
    Ok(RunningGateway {
        addr,
        stage: config.stage,
        shared,
        shutdown,
        tasks,
        server,
    })
}
