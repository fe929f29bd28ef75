//! The portal HTTP API through the local gateway: template routes, payload-2.0 events through
//! lambda_http's adapter, the same token check and the same answers as the WebSocket reads.

use messaging_core::Role;
use serde_json::{json, Value};
use test_support::gateway::GatewayStack;
use test_support::{chat, create, http, TestStack};

fn token(tenant: &str, user: &str, role: Role) -> String {
    test_support::local_token(tenant, user, role)
}

async fn get(stack: &GatewayStack, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let url = format!("http://{}{path}", stack.gateway.addr());
    let headers: Vec<(String, String)> = bearer
        .map(|t| vec![("Authorization".to_owned(), format!("Bearer {t}"))])
        .unwrap_or_default();
    let (status, body) = http::request("GET", &url, &headers, b"").await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn seqs(frame: &Value) -> Vec<u64> {
    frame["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// acme's "team" (owner and bob): three messages and a reply to the first, by the owner.
/// Returns a token for bob.
async fn team_with_bob(stack: &TestStack) -> String {
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("team", "project", &["bob"]))
        .await;
    for text in ["contract one", "contract two", "three"] {
        stack.send(&owner, &chat("team", text)).await;
    }
    let reply = json!({ "type": "CHAT_MESSAGE", "conversationId": "team", "parentSeq": 1, "content": { "text": "a reply" } });
    stack.send(&owner, &reply).await;
    token("acme", "bob", Role::User)
}

#[tokio::test]
async fn a_portal_page_reads_history_threads_and_search_over_http() {
    let gateway = GatewayStack::start().await;
    let stack = &gateway.stack;
    let bob = team_with_bob(stack).await;

    let (status, list) = get(&gateway, "/conversations", Some(&bob)).await;
    assert_eq!(
        (status, list["type"].as_str()),
        (200, Some("CONVERSATIONS")),
        "{list}"
    );
    assert_eq!(list["conversations"][0]["unreadCount"], 4);

    let (status, page) = get(&gateway, "/conversations/team/messages?limit=2", Some(&bob)).await;
    assert_eq!(
        (status, page["type"].as_str()),
        (200, Some("HISTORY")),
        "{page}"
    );
    assert_eq!(seqs(&page), [4, 3]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, older) = get(
        &gateway,
        &format!("/conversations/team/messages?limit=2&cursor={cursor}"),
        Some(&bob),
    )
    .await;
    assert_eq!(seqs(&older), [2, 1]);
    let (_, caught_up) = get(
        &gateway,
        "/conversations/team/messages?sinceSeq=2",
        Some(&bob),
    )
    .await;
    assert_eq!(seqs(&caught_up), [3, 4]);
    let (_, thread) = get(
        &gateway,
        "/conversations/team/messages/1/thread",
        Some(&bob),
    )
    .await;
    assert_eq!(
        thread["replies"][0]["content"]["text"], "a reply",
        "{thread}"
    );
    // Searchable once the gateway's stream mapping has run the indexer (every 250 ms here).
    let mut found = Value::Null;
    for _ in 0..100 {
        found = get(&gateway, "/search?q=contract+two", Some(&bob)).await.1;
        if found["results"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let texts: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["contract two"]);

    // The same refusals as over the socket, with their HTTP statuses.
    let refusals = [
        ("/conversations", None, 401, "UNAUTHORIZED"),
        (
            "/conversations",
            Some("not-a-jwt".to_owned()),
            401,
            "UNAUTHORIZED",
        ),
        (
            "/conversations/team/messages",
            Some(token("acme", "eve", Role::User)),
            403,
            "NOT_A_MEMBER",
        ),
        (
            "/conversations/team/messages",
            Some(token("globex", "bob", Role::Owner)),
            404,
            "CONVERSATION_NOT_FOUND",
        ),
        (
            "/conversations/team/messages?cursor=AAAA.BBBB",
            Some(bob.clone()),
            400,
            "INVALID_CURSOR",
        ),
        (
            "/conversations/team/messages?limit=lots",
            Some(bob.clone()),
            400,
            "INVALID_FIELD",
        ),
        (
            "/conversations/team/messages?limit=1000",
            Some(bob.clone()),
            400,
            "INVALID_FIELD",
        ),
        ("/search?q=the", Some(bob.clone()), 400, "INVALID_FIELD"),
    ];
    for (path, bearer, status, code) in refusals {
        let (got, body) = get(&gateway, path, bearer.as_deref()).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    // A path the template does not route: API Gateway's 404, no function involved.
    let (status, _) = get(&gateway, "/admin/export", Some(&bob)).await;
    assert_eq!(status, 404);
    gateway.stop().await;
}

/// docs/openapi.yaml is what the HTTP API serves: schemathesis generates requests from it
/// (valid ones, and invalid ones that must be refused) against the local gateway with a real
/// token and real data, and checks every answer: never a 5xx, a status the document lists,
/// JSON, the documented shape, and invalid input refused.
#[tokio::test]
async fn the_http_api_keeps_its_openapi_document_under_schemathesis() {
    let gateway = GatewayStack::start().await;
    let stack = &gateway.stack;
    let bob = team_with_bob(stack).await;

    let venv = std::env::var("STACKPRO_VENV")
        .map(|v| format!("{v}-schemathesis"))
        .unwrap_or_else(|_| format!("{}/.venv-schemathesis", env!("CARGO_MANIFEST_DIR")));
    let program = format!("{venv}/bin/schemathesis");
    let reports = format!(
        "{}/target/test-output/schemathesis",
        env!("CARGO_MANIFEST_DIR")
    );
    let args = vec![
        "run".to_owned(),
        "docs/openapi.yaml".to_owned(),
        "--url".to_owned(),
        format!("http://{}", gateway.gateway.addr()),
        "--header".to_owned(),
        format!("Authorization: Bearer {bob}"),
        "--checks".to_owned(),
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection".to_owned(),
        "--max-examples".to_owned(),
        "60".to_owned(),
        "--seed".to_owned(),
        "20261201".to_owned(),
        "--workers".to_owned(),
        "1".to_owned(),
        "--report".to_owned(),
        "junit".to_owned(),
        "--report-dir".to_owned(),
        reports,
    ];
    // Off the runtime: the gateway answering schemathesis runs on this one.
    let command = program.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&command)
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .env("NO_COLOR", "1")
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}); run ./infra/local/test.sh, which installs it")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("generated"))
        .collect();
    println!("schemathesis: {}", summary.join(" | "));
    assert!(
        output.status.success(),
        "schemathesis found answers the document does not allow:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    gateway.gateway.shutdown().await;
}
