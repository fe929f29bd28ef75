//! `stackpro-bench`: fan-out against the raw gateway rate, steady-load latency, cold start
//! and cost per million messages, on the local stack. Results go to `bench/results/` as
//! `latest.json` and `latest.md`. Run it with `./infra/local/bench.sh`.

mod burst;
mod coldstart;
mod cost;
mod fanout;
mod report;
mod soak;
mod stack;
mod steady;
mod throttle;

use std::path::PathBuf;

use anyhow::Context;

struct Options {
    endpoint: String,
    /// The steady phase's moto (bench.sh starts a fresh one); `endpoint` when not given.
    steady_endpoint: String,
    out: PathBuf,
    bin_dir: PathBuf,
    sizes: Vec<usize>,
    concurrency: usize,
    steady_clients: usize,
    steady_rate: f64,
    steady_seconds: f64,
    cold_runs: usize,
    cold_only: bool,
    /// Only the rate-limit scenario, written to throttle.json / throttle.md.
    throttle_only: bool,
    burst_only: bool,
    steady_only: bool,
    throttle_seconds: f64,
    /// The soak alone (`soak.rs`), with moto's pid to sample its memory.
    soak: bool,
    soak_clients: usize,
    soak_rate: f64,
    soak_seconds: f64,
    moto_pid: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: &str| -> anyhow::Result<f64> {
        flag(name)
            .unwrap_or_else(|| default.into())
            .parse()
            .with_context(|| format!("{name} takes a number"))
    };
    let endpoint = flag("--endpoint")
        .context("--endpoint (the moto URL) is required; ./infra/local/bench.sh sets it")?;
    Ok(Options {
        steady_endpoint: flag("--steady-endpoint").unwrap_or_else(|| endpoint.clone()),
        endpoint,
        out: flag("--out")
            .unwrap_or_else(|| "bench/results".into())
            .into(),
        bin_dir: flag("--bin-dir")
            .unwrap_or_else(|| "target/release".into())
            .into(),
        sizes: flag("--sizes")
            .unwrap_or_else(|| "2,10,100,1000,5000".into())
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .context("--sizes takes numbers like 10,100")
            })
            .collect::<anyhow::Result<_>>()?,
        concurrency: number("--concurrency", "64")? as usize,
        steady_clients: number("--steady-clients", "1000")? as usize,
        steady_rate: number("--steady-rate", "10")?,
        steady_seconds: number("--steady-seconds", "60")?,
        cold_runs: number("--cold-runs", "20")? as usize,
        cold_only: args.iter().any(|a| a == "--cold-only"),
        throttle_only: args.iter().any(|a| a == "--throttle-only"),
        burst_only: args.iter().any(|a| a == "--burst-only"),
        steady_only: args.iter().any(|a| a == "--steady-only"),
        throttle_seconds: number("--throttle-seconds", "10")?,
        soak: args.iter().any(|a| a == "--soak"),
        soak_clients: number("--soak-clients", "1000")? as usize,
        soak_rate: number("--soak-rate", "50")?,
        soak_seconds: number("--soak-seconds", "300")?,
        moto_pid: flag("--moto-pid"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The functions' own log lines (JSON, as deployed), at RUST_LOG's level: bench.sh sets
    // `error` unless told otherwise, so a run that goes wrong says why.
    messaging_handlers::telemetry::init_tracing();
    let o = options()?;
    let started = std::time::Instant::now();

    if o.soak {
        let stack = stack::Stack::start(&o.endpoint, o.concurrency).await?;
        eprintln!(
            "soak: {} clients, {} msg/s for {} s",
            o.soak_clients, o.soak_rate, o.soak_seconds
        );
        let soak = soak::run(
            &stack,
            o.soak_clients,
            o.soak_rate,
            o.soak_seconds,
            o.moto_pid.clone(),
        )
        .await?;
        stack.stop_indexer();
        stack.gateway.shutdown().await;
        soak::write(&o.out, &soak)?;
        eprintln!(
            "soak: {} lost, {} duplicates, p99 {:.1} ms; written to {}",
            soak.run.lost,
            soak.run.duplicates,
            soak.run.latency_ms_p99,
            o.out.display()
        );
        return Ok(());
    }

    if o.steady_only {
        // The steady load alone (while working on the local stack's speed): the result as
        // JSON on stdout; the full run writes it into latest.*.
        let stack = stack::Stack::start(&o.steady_endpoint, o.concurrency).await?;
        eprintln!(
            "steady load: {} clients, {} msg/s for {} s",
            o.steady_clients, o.steady_rate, o.steady_seconds
        );
        let steady = steady::run(
            &stack,
            o.steady_clients,
            o.steady_rate,
            o.steady_seconds,
            0,
            true,
        )
        .await?;
        stack.gateway.shutdown().await;
        {
            let t = stack.timings.lock().unwrap();
            for (name, times) in [("route", &t.route), ("broadcast", &t.broadcast)] {
                let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
                ms.sort_by(f64::total_cmp);
                eprintln!(
                    "{name}: {} invocations, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    ms.len(),
                    steady::percentile(&ms, 50.0),
                    steady::percentile(&ms, 99.0),
                    ms.last().copied().unwrap_or_default()
                );
            }
            eprintln!("route DynamoDB: {:?}", stack.route_dynamodb.snapshot());
            eprintln!(
                "broadcast DynamoDB: {:?}",
                stack.broadcast_dynamodb.snapshot()
            );
        }
        println!("{}", serde_json::to_string_pretty(&steady)?);
        return Ok(());
    }

    if o.burst_only {
        // A burst of conversation events: what coalesced delivery posts (docs/scale.md).
        let stack = stack::Stack::start(&o.endpoint, o.concurrency).await?;
        let result = burst::run(&stack, 50, 10, 0).await?;
        stack.gateway.shutdown().await;
        std::fs::create_dir_all(&o.out)?;
        std::fs::write(
            o.out.join("burst.json"),
            serde_json::to_string_pretty(&result)?,
        )?;
        let machine = report::Machine::describe();
        let md = format!(
            "# StackPro Messaging — a burst of conversation events (bench)\n\nMeasured {} on {} ({} cores), {}. {}\n\n\
             {} connections in one conversation; {} of them each add a reaction to the same message, mark it read, start and stop typing, at once: {} events accepted ({} reactions or read marks refused retryably: they conflicted). \
             Before coalescing each event went to each of the other {} connections in a frame of its own: {} API Gateway messages (1.0 per event per recipient).\n\n\
             | events | deliveries owed (frames before) | events received | frames posted | of them BATCH | messages per event per recipient |\n\
             |---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | **{:.3}** (before: 1.000) |\n",
            machine.date, machine.cpu, machine.cores, machine.rustc, machine.emulator,
            result.clients, result.senders, result.events, result.refused, result.clients - 1, result.deliveries_owed,
            result.events, result.deliveries_owed, result.events_received, result.frames_posted,
            result.batch_frames, result.messages_per_event_per_recipient,
        );
        std::fs::write(o.out.join("burst.md"), md)?;
        eprintln!(
            "burst: {} events, {} frames for {} deliveries owed ({:.3} per event per recipient); wrote {}/burst.json and burst.md",
            result.events,
            result.frames_posted,
            result.deliveries_owed,
            result.messages_per_event_per_recipient,
            o.out.display()
        );
        return Ok(());
    }

    if o.throttle_only {
        let stack = stack::Stack::start(&o.endpoint, o.concurrency).await?;
        eprintln!(
            "rate limits under a flood, {} s a phase",
            o.throttle_seconds
        );
        let result = throttle::run(&stack, o.throttle_seconds, 2.0, 100.0, 0).await?;
        stack.gateway.shutdown().await;
        std::fs::create_dir_all(&o.out)?;
        std::fs::write(
            o.out.join("throttle.json"),
            serde_json::to_string_pretty(&result)?,
        )?;
        let machine = report::Machine::describe();
        let header = format!(
            "# StackPro Messaging — rate limits (bench)\n\nMeasured {} on {} ({} cores), {}. {}\n",
            machine.date, machine.cpu, machine.cores, machine.rustc, machine.emulator
        );
        std::fs::write(
            o.out.join("throttle.md"),
            header + &report::throttle_markdown(&result),
        )?;
        eprintln!("wrote {}/throttle.json and throttle.md", o.out.display());
        return Ok(());
    }

    // Cold start first, on an idle machine. The functions read their secrets from Secrets
    // Manager at start, as deployed: that call is part of what is measured.
    let sdk = messaging_devstack::sdk_config(&o.endpoint);
    let secrets = messaging_aws::Secrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let run = uuid::Uuid::new_v4().simple().to_string();
    let cursor_secret = secrets
        .create(
            &format!("bench-{run}-SigningSecret"),
            messaging_devstack::tokens::LOCAL_CURSOR_SECRET,
        )
        .await?;
    let jwt_key = secrets
        .create(
            &format!("bench-{run}-JwtKeySecret"),
            messaging_devstack::tokens::LOCAL_SECRET,
        )
        .await?;
    let function_env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_ENDPOINT_URL", o.endpoint.as_str()),
        ("TABLE_NAME", "bench"),
        (
            "BROADCAST_QUEUE_URL",
            "http://127.0.0.1:1/123456789012/bench.fifo",
        ),
        (
            "BROADCAST_DLQ_URL",
            "http://127.0.0.1:1/123456789012/bench-dlq.fifo",
        ),
        ("WEBSOCKET_MANAGEMENT_ENDPOINT", "http://127.0.0.1:1/local"),
        ("JWT_ISSUER", messaging_devstack::tokens::LOCAL_ISSUER),
        ("JWT_AUDIENCE", messaging_devstack::tokens::LOCAL_AUDIENCE),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_VERIFICATION_KEY_ID", jwt_key.as_str()),
        ("CURSOR_SECRET_ID", cursor_secret.as_str()),
        ("FILES_BUCKET", "bench-files"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    eprintln!("cold start: {} runs per function", o.cold_runs);
    let cold_start = coldstart::measure(
        &o.bin_dir,
        &[
            "connect",
            "disconnect",
            "route",
            "file-share",
            "http-api",
            "broadcast",
            "search-indexer",
        ],
        o.cold_runs,
        &function_env,
    )
    .await?;

    if o.cold_only {
        println!("{}", serde_json::to_string_pretty(&cold_start)?);
        return Ok(());
    }
    let stack = stack::Stack::start(&o.endpoint, o.concurrency).await?;
    let mut fanout = Vec::new();
    let mut next_index = 0;
    for &n in &o.sizes {
        eprintln!("fan-out to {n}");
        let result = fanout::run(&stack, n, next_index).await?;
        eprintln!(
            "  last delivery after {:.3} s, {:.0}/s ({:.0} % of raw)",
            result.seconds_to_last, result.deliveries_per_second, result.percent_of_raw
        );
        next_index += n + 1;
        fanout.push(result);
    }
    eprintln!(
        "steady load: {} clients, {} msg/s for {} s",
        o.steady_clients, o.steady_rate, o.steady_seconds
    );
    // A fresh table, queues and gateway, on a moto of its own when bench.sh gives one
    // (--steady-endpoint): moto's per-request time grows with what the fan-out runs left in its
    // heap (~3 items per client), which would measure moto, not the design.
    stack.stop_indexer();
    stack.gateway.shutdown().await;
    let steady_stack = stack::Stack::start(&o.steady_endpoint, o.concurrency).await?;
    let steady = steady::run(
        &steady_stack,
        o.steady_clients,
        o.steady_rate,
        o.steady_seconds,
        0,
        true,
    )
    .await?;
    steady_stack.stop_indexer();
    steady_stack.gateway.shutdown().await;

    eprintln!(
        "rate limits under a flood, {} s a phase",
        o.throttle_seconds
    );
    let throttle_stack = stack::Stack::start(&o.endpoint, o.concurrency).await?;
    let throttle = throttle::run(&throttle_stack, o.throttle_seconds, 2.0, 100.0, 0).await?;
    throttle_stack.gateway.shutdown().await;

    let mut costs = Vec::new();
    let index = cost::IndexCost::from_steady(&steady);
    for n in [2, 10, 100] {
        if let Some(run) = fanout.iter().find(|f| f.recipients == n) {
            costs.extend([cost::ours(run, index), cost::seed(run), cost::scan(run)]);
        }
    }
    let report = report::Report {
        machine: report::Machine::describe(),
        fanout_concurrency: o.concurrency,
        fanout,
        steady: Some(steady),
        throttle: Some(throttle),
        cold_start,
        cost_per_million_messages: costs,
    };
    std::fs::create_dir_all(&o.out)?;
    std::fs::write(
        o.out.join("latest.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(o.out.join("latest.md"), report.markdown())?;
    eprintln!(
        "wrote {}/latest.json and latest.md in {:.0} s",
        o.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
