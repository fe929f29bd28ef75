//! Cold start: for each function binary, the time from spawning the process to its first
//! request to the Lambda Runtime API (served here by a stub that only notes that request),
//! and the binary's size on disk.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdStart {
    pub function: String,
    pub binary_bytes: u64,
    pub runs: usize,
    pub ms_min: f64,
    pub ms_median: f64,
    pub ms_p95: f64,
    pub ms_max: f64,
}

/// One spawn: milliseconds until `GET /2018-06-01/runtime/invocation/next` arrives.
async fn once(binary: &Path, env: &[(String, String)]) -> anyhow::Result<f64> {
    let stub = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = stub.local_addr()?.to_string();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        let (mut socket, _) = stub.accept().await?;
        let mut buffer = vec![0u8; 4096];
        let mut seen = Vec::new();
        loop {
            let read = socket.read(&mut buffer).await?;
            anyhow::ensure!(
                read > 0,
                "the function closed the connection before asking for work"
            );
            seen.extend_from_slice(&buffer[..read]);
            if String::from_utf8_lossy(&seen).contains("/runtime/invocation/next") {
                return anyhow::Ok(started.elapsed());
            }
        }
    })
    .await;
    let _ = child.kill().await;
    let elapsed = waited
        .map_err(|_| anyhow::anyhow!("{} never called the Runtime API", binary.display()))??;
    Ok(elapsed.as_secs_f64() * 1000.0)
}

pub async fn measure(
    bin_dir: &Path,
    functions: &[&str],
    runs: usize,
    env: &[(String, String)],
) -> anyhow::Result<Vec<ColdStart>> {
    let mut results = Vec::new();
    for function in functions {
        let binary = bin_dir.join(function);
        let bytes = std::fs::metadata(&binary)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}; build it with cargo build --release",
                    binary.display()
                )
            })?
            .len();
        once(&binary, env).await?; // warm the page cache: a Lambda sandbox reads a fresh copy too, but from fast local storage
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            samples.push(once(&binary, env).await?);
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |p: f64| samples[((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize];
        results.push(ColdStart {
            function: (*function).to_owned(),
            binary_bytes: bytes,
            runs,
            ms_min: samples[0],
            ms_median: at(50.0),
            ms_p95: at(95.0),
            ms_max: samples[samples.len() - 1],
        });
    }
    Ok(results)
}
