//! `stackpro-gateway`: the local API Gateway WebSocket API, configured like the functions
//! (TABLE_NAME, BROADCAST_QUEUE_URL, BROADCAST_DLQ_URL, JWT_*, AWS_ENDPOINT_URL…).

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use messaging_devstack::Template;
use messaging_gateway::{management_endpoint, Functions, GatewayConfig};
use messaging_handlers::services::{Parts, Services};
use messaging_handlers::{config, telemetry};

const USAGE: &str =
    "usage: stackpro-gateway [--listen 127.0.0.1:3001] [--stage local] [--template template.yaml]
    [--idle-timeout SECONDS] [--max-connection SECONDS] [--schedule-every SECONDS]
    [--stream-every SECONDS] [--failed-visibility SECONDS] [--queue LogicalId=URL]... [--demo-dir DIR | --no-demo]
    [--service-callers FILE]   (JSON: [{accessKeyId, secretAccessKey, arn, allow: [ARN pattern]}];
                                default: the local portal backend, docs/server-api.md)
Functions are configured from the environment, as in Lambda; BROADCAST_QUEUE_URL also names
the template's BroadcastQueue for its SQS event source mapping.";

fn seconds(flags: &HashMap<String, String>, name: &str) -> anyhow::Result<Option<Duration>> {
    flags
        .get(name)
        .map(|v| {
            v.parse::<u64>()
                .map(Duration::from_secs)
                .with_context(|| format!("--{name} takes whole seconds"))
        })
        .transpose()
}

async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut flags = HashMap::new();
    let mut queues = BTreeMap::new();
    let mut demo = true;
    let mut iter = args.into_iter();
    while let Some(flag) = iter.next() {
        match flag.as_str() {
            "--no-demo" => demo = false,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--queue" => {
                let value = iter.next().context("--queue needs LogicalId=URL")?;
                let (id, url) = value
                    .split_once('=')
                    .context("--queue needs LogicalId=URL")?;
                queues.insert(id.to_owned(), url.to_owned());
            }
            other => {
                let name = other
                    .strip_prefix("--")
                    .with_context(|| format!("unexpected argument {other:?}\n{USAGE}"))?;
                let value = iter
                    .next()
                    .with_context(|| format!("--{name} needs a value"))?;
                flags.insert(name.to_owned(), value);
            }
        }
    }
    let template = Template::load(
        flags
            .get("template")
            .map(String::as_str)
            .unwrap_or("template.yaml"),
    )?;
    let listen = flags
        .get("listen")
        .map(String::as_str)
        .unwrap_or("127.0.0.1:3001");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut gateway = GatewayConfig::new(template);
    if let Some(stage) = flags.get("stage") {
        gateway.stage = stage.clone();
    }
    if let Some(idle) = seconds(&flags, "idle-timeout")? {
        gateway.limits.idle_timeout = idle;
    }
    if let Some(max) = seconds(&flags, "max-connection")? {
        gateway.limits.max_duration = max;
    }
    gateway.schedule_every = seconds(&flags, "schedule-every")?;
    // Instead of the stream mappings' batching windows (the search index's is 30 s).
    gateway.stream_every = seconds(&flags, "stream-every")?;
    gateway.failed_visibility_seconds =
        seconds(&flags, "failed-visibility")?.map(|d| d.as_secs() as i32);
    // Who may sign server API calls (the AWS_IAM routes).
    if let Some(file) = flags.get("service-callers") {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        gateway.service_callers = serde_json::from_str(&text).with_context(|| {
            format!("{file}: expected [{{accessKeyId, secretAccessKey, arn, allow}}]")
        })?;
    }
    // The demo's build (clients/demo/dist of this checkout unless told).
    gateway.demo = demo.then(|| {
        flags
            .get("demo-dir")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(messaging_gateway::default_demo_dir)
    });

    let sdk = config::aws().await;
    let endpoint = management_endpoint(listener.local_addr()?, &gateway.stage);
    let mut parts = Parts::from_env(&sdk, &endpoint).await?;
    // A shortened schedule shortens the notification batching window with it.
    if let Some(every) = gateway.schedule_every {
        parts.window_millis = every.as_millis() as i64;
    }
    queues
        .entry("BroadcastQueue".to_owned())
        .or_insert_with(|| parts.queue.url().to_owned());
    queues
        .entry("NotifyQueue".to_owned())
        .or_insert_with(|| parts.notify_queue.url().to_owned());
    // The files bucket's notifications (image-preview), when the stack has the queue.
    if let Ok(url) = std::env::var("UPLOADS_QUEUE_URL") {
        queues.entry("UploadsQueue".to_owned()).or_insert(url);
    }
    queues
        .entry("LifecycleQueue".to_owned())
        .or_insert_with(|| parts.lifecycle_queue.url().to_owned());
    gateway.sqs = Some((aws_sdk_sqs::Client::new(&sdk), queues));
    // The search indexer's stream, read from the emulator as Lambda's mapping would.
    if let (Ok(endpoint), Ok(table)) = (
        std::env::var("AWS_ENDPOINT_URL"),
        std::env::var("TABLE_NAME"),
    ) {
        if let Some(arn) = messaging_devstack::resources::table_stream_arn(&sdk, &table).await? {
            gateway.streams = Some((endpoint, arn));
        }
    }
    let gateway_demo = gateway.demo.clone();
    let functions = Functions::stackpro(Services::new(&parts));
    let running = messaging_gateway::start(listener, gateway, functions).await?;
    println!(
        "WebSocket API:       {}?token=<JWT>",
        running.websocket_url()
    );
    println!(
        "@connections API:    {}/@connections/{{connectionId}}",
        running.management_endpoint()
    );
    println!("Demo web client:     {}", running.page_url());
    if let Some(dir) = &gateway_demo {
        if !dir.join("index.html").exists() {
            eprintln!(
                "the demo web client is not built in {}: cd clients && npm ci && npm run build",
                dir.display()
            );
        }
    }
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping: closing every connection");
    running.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_tracing();
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stackpro-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
