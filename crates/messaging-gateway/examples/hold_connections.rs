//! Load script for the local gateway's connection capacity. Not a test: it measures, and
//! prints JSON.
//!
//! ```text
//! # the gateway alone (template routes, no-op functions), in its own process:
//! hold_connections serve --listen 127.0.0.1:3101 &
//! # N clients, each with its own development token, held open, pinged, then closed:
//! hold_connections load --url ws://127.0.0.1:3101/local --count 10000 --gateway-pid <pid>
//! ```
//! `load` also works against `./infra/local/run.sh` (the real functions on moto), where moto,
//! not the gateway, sets the pace.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use messaging_core::{Principal, Role, TenantId, UserId};
use messaging_devstack::tokens;

fn memory_kib(pid: &str) -> HashMap<String, u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            let kib = value.trim().strip_suffix(" kB")?.parse().ok()?;
            matches!(key, "VmRSS" | "VmHWM").then(|| (key.to_owned(), kib))
        })
        .collect()
}

/// The gateway with the workspace template's routes and functions that only say yes.
async fn serve(listen: &str) -> anyhow::Result<()> {
    use messaging_gateway::{Functions, GatewayConfig};
    let mut functions = Functions::default();
    for name in ["connect", "disconnect", "route"] {
        functions.register(name, |_: serde_json::Value| async {
            Ok::<_, String>(serde_json::json!({ "statusCode": 200 }))
        });
    }
    let template = messaging_devstack::Template::workspace()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let gateway =
        messaging_gateway::start(listener, GatewayConfig::new(template), functions).await?;
    println!("{} pid {}", gateway.websocket_url(), std::process::id());
    tokio::signal::ctrl_c().await?;
    gateway.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let (role, args) = all
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("usage: hold_connections serve|load …"))?;
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if role == "serve" {
        return serve(&flag("--listen").unwrap_or_else(|| "127.0.0.1:3101".into())).await;
    }
    anyhow::ensure!(role == "load", "usage: hold_connections serve|load …");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let url = flag("--url").unwrap_or_else(|| "ws://127.0.0.1:3001/local".into());
    let count: usize = flag("--count").unwrap_or_else(|| "1000".into()).parse()?;
    let parallel: usize = flag("--parallel").unwrap_or_else(|| "64".into()).parse()?;
    let pid = flag("--gateway-pid").unwrap_or_default();
    let before = memory_kib(&pid);

    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..count)
        .map(|i| {
            let url = url.clone();
            async move {
                let principal = Principal {
                    tenant: TenantId::parse(format!("load{}", i % 10))?,
                    user: UserId::parse(format!("user{i}"))?,
                    role: Role::User,
                    name: None,
                };
                let token = tokens::mint_local(&principal, 3600)?;
                let (socket, _) =
                    tokio_tungstenite::connect_async(format!("{url}?token={token}")).await?;
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let opened = started.elapsed();
    let failures = results.iter().filter(|r| r.is_err()).count();
    let first_error = results
        .iter()
        .find_map(|r| r.as_ref().err().map(|e| e.to_string()));
    let sockets: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holding = memory_kib(&pid);

    // Every held socket is still live: one Ping each, and each still open.
    let mut alive = 0;
    for mut socket in sockets {
        use futures_util::SinkExt;
        if socket
            .send(tokio_tungstenite::tungstenite::Message::Ping(
                vec![1].into(),
            ))
            .await
            .is_ok()
        {
            alive += 1;
        }
        let _ = socket.close(None).await;
    }
    let report = serde_json::json!({
        "requested": count,
        "opened": count - failures,
        "failed": failures,
        "firstError": first_error,
        "aliveAfterHolding": alive,
        "secondsToOpenAll": opened.as_secs_f64(),
        "handshakesPerSecond": (count - failures) as f64 / opened.as_secs_f64(),
        "gatewayKiBBefore": before,
        "gatewayKiBHolding": holding,
        "gatewayKiBPerConnection": holding.get("VmRSS").zip(before.get("VmRSS"))
            .map(|(h, b)| (*h as f64 - *b as f64) / (count - failures).max(1) as f64),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
