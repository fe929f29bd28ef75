//! The client SDK end to end: Node clients (clients/messaging-client/e2e, built by
//! ./infra/local/test.sh) on the real gateway and functions against moto. This side plays the
//! operator the script asks for, one JSON line at a time on its stdout:
//! `{"op":"cut","tenant":…,"user":…}` closes every connection of that user through
//! `@connections` DELETE (as API Gateway's management API would), `{"op":"restart"}` stops the
//! gateway (every socket closed) and starts it again on the same port. Each is answered with a
//! line on the script's stdin.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use messaging_core::{TenantId, UserId};
use messaging_gateway::Limits;
use serde_json::{json, Value};
use test_support::gateway::{management_client, GatewayStack};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CONTROL: &str = "@@control ";

async fn run_scenario(scenario: &str, limits: Limits) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let package = format!("{root}/clients/messaging-client");
    let script = format!("{package}/build/e2e/exchange.test.js");
    assert!(
        Path::new(&script).exists(),
        "{script} is not built: run ./infra/local/test.sh (it builds the client SDK)"
    );
    let mut gw = GatewayStack::start_with(limits).await;
    let mut node = tokio::process::Command::new("node")
        .args([
            // Run in this process, not under `--test` (which runs the file in a child whose
            // stdin is not ours): the operator answers on stdin.
            "--experimental-websocket",
            "--no-warnings",
            "--test-reporter=spec",
            &script,
        ])
        .current_dir(&package)
        .env("STACKPRO_GATEWAY_URL", gw.gateway.page_url())
        .env("STACKPRO_WEBSOCKET_URL", gw.gateway.websocket_url())
        .env("STACKPRO_SCENARIO", scenario)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut stderr = node.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let mut management = management_client(&gw.gateway);
    let mut output = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the {scenario} scenario ran past 5 minutes:\n{output}"))
            .expect("node's stdout");
        let Some(line) = line else { break };
        let Some(request) = line.strip_prefix(CONTROL) else {
            output.push_str(&line);
            output.push('\n');
            continue;
        };
        let request: Value = serde_json::from_str(request).expect("a control line is JSON");
        let answer = match request["op"].as_str() {
            Some("cut") => {
                let tenant = TenantId::parse(request["tenant"].as_str().unwrap()).unwrap();
                let user = UserId::parse(request["user"].as_str().unwrap()).unwrap();
                let connections = gw
                    .stack
                    .route
                    .table
                    .user_connections(&tenant, &user)
                    .await
                    .unwrap();
                let mut cut = 0;
                let mut refused = Vec::new();
                for connection in &connections {
                    match management
                        .delete_connection()
                        .connection_id(connection.as_str())
                        .send()
                        .await
                    {
                        Ok(_) => cut += 1,
                        Err(e) => refused.push(format!("{connection}: {e:?}")),
                    }
                }
                json!({ "ok": true, "found": connections.len(), "cut": cut, "refused": refused })
            }
            Some("restart") => {
                gw = gw.restarted().await;
                management = management_client(&gw.gateway);
                json!({ "ok": true })
            }
            other => panic!("unknown control request {other:?}"),
        };
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .expect("node's stdin");
    }
    let status = tokio::time::timeout_at(deadline, node.wait())
        .await
        .expect("node exits")
        .expect("node's status");
    let errors = stderr.await.unwrap_or_default();
    gw.stop().await;
    assert!(
        status.success(),
        "the {scenario} scenario failed:\n{output}\n{errors}"
    );
    output
}

#[tokio::test]
async fn two_sdk_clients_exchange_500_messages_through_20_cuts_and_a_gateway_restart() {
    let output = run_scenario("cuts", Limits::default()).await;
    println!("{output}");
}

#[tokio::test]
async fn two_sdk_clients_exchange_500_messages_handing_off_before_a_short_connection_limit() {
    let limits = Limits {
        max_duration: Duration::from_secs(6),
        ..Limits::default()
    };
    let output = run_scenario("handoff", limits).await;
    println!("{output}");
}
