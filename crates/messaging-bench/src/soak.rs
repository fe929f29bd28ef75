//! The soak: many clients sending for minutes through the local gateway, every delivery
//! accounted for by the clients, and the resident memory of the bench process (the gateway,
//! the functions and the clients' sockets) and of moto sampled every 10 s. Written to
//! `soak.json`, `soak.md` and `soak-rss.csv` (which `infra/local/plot_soak.py` draws as
//! `soak-rss.png`). A bench mode (`--soak`), not part of the test command.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stack::Stack;
use crate::steady::{self, SteadyResult};

/// How often memory is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RssSample {
    /// Seconds since the soak started (before the clients connected).
    pub seconds: f64,
    pub bench_mb: f64,
    /// `None` when moto's pid was not given or could not be read.
    pub moto_mb: Option<f64>,
    /// Messages sent by then (moto keeps every one, as DynamoDB does: its data grows).
    pub messages_sent: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakResult {
    pub run: SteadyResult,
    pub samples: Vec<RssSample>,
}

/// Resident set size of a process, in MB (`/proc/{pid}/status`, VmRSS).
pub fn rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub async fn run(
    stack: &Stack,
    clients: usize,
    rate: f64,
    seconds: f64,
    moto_pid: Option<String>,
) -> anyhow::Result<SoakResult> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            loop {
                ticker.tick().await;
                let at = started.elapsed().as_secs_f64();
                let sample = RssSample {
                    seconds: at,
                    bench_mb: rss_mb("self").unwrap_or(f64::NAN),
                    moto_mb: moto_pid.as_deref().and_then(rss_mb),
                    // Sent so far, from the schedule (after the ~10 s of connecting).
                    messages_sent: ((at - 10.0).max(0.0) * rate).min(rate * seconds) as usize,
                };
                samples.lock().unwrap().push(sample);
            }
        })
    };
    let run = steady::run(stack, clients, rate, seconds, 0, false).await;
    // One more sample after the run settled.
    tokio::time::sleep(SAMPLE_EVERY).await;
    sampler.abort();
    let samples = samples.lock().unwrap().clone();
    Ok(SoakResult { run: run?, samples })
}

pub fn write(out: &Path, soak: &SoakResult) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("soak.json"), serde_json::to_string_pretty(soak)?)?;
    let mut csv = String::from("seconds,bench_mb,moto_mb\n");
    for s in &soak.samples {
        csv.push_str(&format!(
            "{:.1},{:.1},{}\n",
            s.seconds,
            s.bench_mb,
            s.moto_mb.map(|m| format!("{m:.1}")).unwrap_or_default()
        ));
    }
    std::fs::write(out.join("soak-rss.csv"), csv)?;
    let r = &soak.run;
    let mut md = format!(
        "# Soak\n\n{} clients in conversations of 10 (one portal each), {} messages/s for {} s through the local gateway: {} messages, {} deliveries expected, {} received, **{} lost, {} duplicates**. Send → deliver p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n\nResident memory every {} s (`soak-rss.png`): the bench process (the gateway, the functions and the clients' sockets) and moto.\n\n| s | bench process MB | moto MB |\n|---|---|---|\n",
        r.clients, r.messages_per_second, r.seconds, r.messages_sent, r.deliveries_expected,
        r.deliveries_received, r.lost, r.duplicates, r.latency_ms_p50, r.latency_ms_p95,
        r.latency_ms_p99, r.latency_ms_max, SAMPLE_EVERY.as_secs()
    );
    for s in &soak.samples {
        md.push_str(&format!(
            "| {:.0} | {:.1} | {} |\n",
            s.seconds,
            s.bench_mb,
            s.moto_mb.map(|m| format!("{m:.1}")).unwrap_or("—".into())
        ));
    }
    std::fs::write(out.join("soak.md"), md)?;
    Ok(())
}
