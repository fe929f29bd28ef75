//! The audit log: administrative actions recorded by route, file-share and the server API on
//! moto, and read back by the tenant's OWNER (only) through the HTTP API of the local gateway,
//! newest first, page by page.

use messaging_core::Role;
use messaging_gateway::sigv4::ServiceCaller;
use serde_json::{json, Value};
use test_support::gateway::GatewayStack;
use test_support::service_api::{call, Auth};
use test_support::{chat, create, http};

fn token(tenant: &str, user: &str, role: Role) -> String {
    test_support::local_token(tenant, user, role)
}

async fn audit(gw: &GatewayStack, query: &str, bearer: &str) -> (u16, Value) {
    let url = format!("http://{}/audit{query}", gw.gateway.addr());
    let headers = [("Authorization".to_owned(), format!("Bearer {bearer}"))];
    let (status, body) = http::request("GET", &url, &headers, b"").await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `(action, actorId, userId)` of each entry.
fn summary(entries: &[Value]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or_default().to_owned();
            (text("action"), text("actorId"), text("userId"))
        })
        .collect()
}

fn ok(frame: &Value, what: &str) {
    assert_eq!(frame["type"], "ACK", "{what}: {frame}");
}

#[tokio::test]
async fn the_owner_reads_who_did_what_newest_first_and_nobody_else_reads_it() {
    let gw = GatewayStack::start().await;
    let stack = &gw.stack;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let admin = stack.connect_as("acme", "alice", Role::Admin).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;

    // Recorded: the conversation, carol added then removed by the admin, bob's message
    // deleted by the owner, a file shared with bob and revoked, the portal setting a role.
    ok(
        &stack
            .send(&owner, &create("deal", "project", &["bob", "alice"]))
            .await
            .1,
        "create",
    );
    let add = json!({ "type": "ADD_MEMBERS", "conversationId": "deal", "members": ["carol"] });
    ok(&stack.send(&admin, &add).await.1, "add");
    let remove = json!({ "type": "REMOVE_MEMBER", "conversationId": "deal", "userId": "carol" });
    ok(&stack.send(&admin, &remove).await.1, "remove");
    ok(
        &stack.send(&bob, &chat("deal", "my contract draft")).await.1,
        "chat",
    );
    ok(&stack.send(&bob, &chat("deal", "a typo")).await.1, "chat");
    let delete =
        |seq: u64| json!({ "type": "DELETE_MESSAGE", "conversationId": "deal", "seq": seq });
    ok(
        &stack.send(&owner, &delete(1)).await.1,
        "delete by the owner",
    );
    // Not recorded: bob deleting his own message is not an administrative action.
    ok(
        &stack.send(&bob, &delete(2)).await.1,
        "delete by its sender",
    );
    let register = json!({ "type": "REGISTER_FILE", "fileId": "terms", "name": "Terms.pdf", "size": 10, "mimeType": "application/pdf" });
    stack.send(&owner, &register).await;
    let share = json!({ "type": "SHARE_FILE", "fileId": "terms", "userId": "bob", "permissions": { "comment": true } });
    ok(&stack.send(&owner, &share).await.1, "share");
    let revoke = json!({ "type": "REVOKE_FILE_SHARE", "fileId": "terms", "userId": "bob" });
    ok(&stack.send(&owner, &revoke).await.1, "revoke");
    let portal = ServiceCaller::local_portal_backend();
    let base = format!("http://{}", gw.gateway.addr());
    let put = call(
        &base,
        Auth::Signed(&portal),
        "PUT",
        "/service/tenants/acme/users/bob",
        None,
        r#"{"role":"ADMIN"}"#,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    // Refused actions are not recorded: bob (a USER) may not remove the owner.
    let refused = json!({ "type": "REMOVE_MEMBER", "conversationId": "deal", "userId": "owner" });
    assert_eq!(stack.send(&bob, &refused).await.1["code"], "FORBIDDEN");

    // The owner reads it all, newest first, two at a time through the signed cursor.
    let owners = token("acme", "owner", Role::Owner);
    let (mut entries, mut query) = (Vec::new(), "?limit=2".to_owned());
    loop {
        let (status, page) = audit(&gw, &query, &owners).await;
        assert_eq!(status, 200, "{page}");
        let got = page["entries"].as_array().unwrap();
        assert!(got.len() <= 2);
        entries.extend(got.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(entries.len() < 50, "the cursor never ends");
    }
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        summary(&entries),
        [
            s("USER_UPDATED", "stackpro.system", "bob"),
            s("FILE_SHARE_REVOKED", "owner", "bob"),
            s("FILE_SHARED", "owner", "bob"),
            s("MESSAGE_DELETED", "owner", "bob"),
            s("MEMBER_REMOVED", "alice", "carol"),
            s("MEMBER_ADDED", "alice", "carol"),
            s("CONVERSATION_CREATED", "owner", ""),
        ]
    );
    let shared = &entries[2];
    assert_eq!(
        (
            &shared["fileId"],
            &shared["detail"],
            &shared["via"],
            &shared["actorRole"]
        ),
        (
            &json!("terms"),
            &json!("read,comment"),
            &json!("socket"),
            &json!("OWNER")
        )
    );
    assert_eq!(entries[3]["seq"], 1);
    assert_eq!(entries[3]["conversationId"], "deal");
    let updated = &entries[0];
    assert_eq!(updated["via"], "server_api");
    assert_eq!(updated["caller"], portal.arn.as_str());
    assert_eq!(updated["detail"], "role ADMIN");
    // Ids only: no message text, no file name.
    let all = Value::Array(entries.clone()).to_string();
    assert!(
        !all.contains("contract draft") && !all.contains("Terms.pdf"),
        "{all}"
    );

    // An ADMIN and a USER are refused; another tenant's OWNER sees only their own (empty) log
    // and cannot use acme's cursor.
    for (user, role) in [("alice", Role::Admin), ("bob", Role::User)] {
        let (status, body) = audit(&gw, "", &token("acme", user, role)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("FORBIDDEN")),
            "{body}"
        );
    }
    let globex = token("globex", "owner", Role::Owner);
    let (status, page) = audit(&gw, "", &globex).await;
    assert_eq!(
        (status, page["entries"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{page}"
    );
    let (_, first) = audit(&gw, "?limit=1", &owners).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let (status, body) = audit(&gw, &format!("?cursor={cursor}"), &globex).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_CURSOR")),
        "{body}"
    );
    let (status, body) = audit(&gw, "?limit=500", &owners).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
}

/// A request to the HTTP API with a bearer token and a JSON body.
async fn owner_call(
    gw: &GatewayStack,
    method: &str,
    path: &str,
    bearer: &str,
    body: &str,
) -> (u16, Value) {
    let url = format!("http://{}{path}", gw.gateway.addr());
    let headers = [
        ("Authorization".to_owned(), format!("Bearer {bearer}")),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let (status, body) = http::request(method, &url, &headers, body.as_bytes()).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Polls `GET /jobs/{id}` until the job is no longer running (the gateway runs its steps).
async fn finished(gw: &GatewayStack, id: &str, bearer: &str) -> Value {
    for _ in 0..100 {
        let (status, job) = owner_call(gw, "GET", &format!("/jobs/{id}"), bearer, "").await;
        assert_eq!(status, 200, "{job}");
        if job["job"]["state"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} never finished");
}

#[tokio::test]
async fn the_owner_runs_the_data_lifecycle_over_http_and_nobody_else_can() {
    let gw = GatewayStack::start().await;
    let stack = &gw.stack;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    ok(
        &stack
            .send(&owner, &create("deal", "project", &["carol"]))
            .await
            .1,
        "create",
    );
    ok(
        &stack
            .send(&owner, &chat("deal", "the owner's own words"))
            .await
            .1,
        "chat",
    );
    let carols = stack.connect_as("acme", "carol", Role::User).await;
    ok(
        &stack.send(&carols, &chat("deal", "carol's words")).await.1,
        "chat",
    );
    let owners = token("acme", "owner", Role::Owner);

    // An ADMIN or a USER may do none of it; nothing starts.
    for (user, role) in [("alice", Role::Admin), ("bob", Role::User)] {
        let theirs = token("acme", user, role);
        for (method, path, body) in [
            ("PUT", "/retention", r#"{"days":7}"#),
            ("POST", "/exports", "{}"),
            ("POST", "/erasures", r#"{"userId":"carol"}"#),
            ("POST", "/offboarding", r#"{"confirm":"acme"}"#),
        ] {
            let (status, body) = owner_call(&gw, method, path, &theirs, body).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("FORBIDDEN")),
                "{user} {path}: {body}"
            );
        }
    }
    assert_eq!(stack.queued(stack.parts.lifecycle_queue.url()).await, 0);

    let (status, set) = owner_call(&gw, "PUT", "/retention", &owners, r#"{"days":90}"#).await;
    assert_eq!((status, &set["retentionDays"]), (200, &json!(90)), "{set}");
    let (status, started) = owner_call(&gw, "POST", "/exports", &owners, "{}").await;
    assert_eq!(status, 202, "{started}");
    let export_id = started["job"]["jobId"].as_str().unwrap().to_owned();
    assert_eq!(started["job"]["requestedBy"], "owner");
    let export = finished(&gw, &export_id, &owners).await;
    assert_eq!(export["job"]["state"], "completed", "{export}");
    let (status, bytes) =
        http::request("GET", export["download"]["url"].as_str().unwrap(), &[], b"").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(bytes).unwrap().contains("carol's words"));

    let (status, started) =
        owner_call(&gw, "POST", "/erasures", &owners, r#"{"userId":"carol"}"#).await;
    assert_eq!(status, 202, "{started}");
    let erased = finished(&gw, started["job"]["jobId"].as_str().unwrap(), &owners).await;
    assert_eq!(erased["job"]["progress"]["messagesErased"], 1, "{erased}");

    // Another tenant's OWNER finds no such job; a confirmation naming another tenant starts
    // nothing; a body's tenant field is refused.
    let globex = token("globex", "owner", Role::Owner);
    let (status, _) = owner_call(&gw, "GET", &format!("/jobs/{export_id}"), &globex, "").await;
    assert_eq!(status, 404);
    let (status, body) = owner_call(
        &gw,
        "POST",
        "/offboarding",
        &owners,
        r#"{"confirm":"globex"}"#,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
    let (status, body) =
        owner_call(&gw, "POST", "/exports", &owners, r#"{"clientId":"globex"}"#).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );

    // Each step is in the audit log as the OWNER's, through the HTTP API.
    let (_, page) = audit(&gw, "", &owners).await;
    let http: Vec<(String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "http")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actorId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let o = |a: &str| (a.to_owned(), "owner".to_owned());
    assert_eq!(
        http,
        [
            o("ERASURE_REQUESTED"),
            o("EXPORT_REQUESTED"),
            o("RETENTION_CHANGED")
        ]
    );
    gw.stop().await;
}

/// The OWNER's door, every route × every caller: refused cells leave acme's items unchanged;
/// another tenant's OWNER acts on their own tenant only. Printed as Markdown
/// (docs/matrix/lifecycle-matrix.md).
#[tokio::test]
async fn every_lifecycle_route_by_every_caller_is_allowed_or_refused_with_nothing_written() {
    let gw = GatewayStack::start().await;
    let stack = &gw.stack;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    ok(
        &stack
            .send(&owner, &create("deal", "project", &["bob"]))
            .await
            .1,
        "create",
    );
    ok(&stack.send(&owner, &chat("deal", "hello")).await.1, "chat");
    let owners = token("acme", "owner", Role::Owner);
    let (_, started) = owner_call(&gw, "POST", "/exports", &owners, "{}").await;
    let job = started["job"]["jobId"].as_str().unwrap().to_owned();
    finished(&gw, &job, &owners).await;
    let callers: [(&str, Option<String>); 5] = [
        ("no token", None),
        ("USER", Some(token("acme", "bob", Role::User))),
        ("ADMIN", Some(token("acme", "alice", Role::Admin))),
        (
            "other tenant's OWNER",
            Some(token("globex", "owner", Role::Owner)),
        ),
        ("OWNER", Some(owners.clone())),
    ];
    let jobs = format!("/jobs/{job}");
    let routes: [(&str, &str, &str, &str); 6] = [
        ("GET /audit", "GET", "/audit", ""),
        ("PUT /retention", "PUT", "/retention", r#"{"days":60}"#),
        ("POST /exports", "POST", "/exports", r#"{"userId":"bob"}"#),
        (
            "POST /erasures",
            "POST",
            "/erasures",
            r#"{"userId":"carol"}"#,
        ),
        ("GET /jobs/{acme's job}", "GET", &jobs, ""),
        // Last: the OWNER offboards acme.
        (
            "POST /offboarding",
            "POST",
            "/offboarding",
            r#"{"confirm":"acme"}"#,
        ),
    ];
    let acme = |items: std::collections::BTreeMap<String, _>| -> Vec<String> {
        items
            .into_keys()
            .filter(|k| k.starts_with("CLIENT#acme|") || k.starts_with("CLIENT#acme#"))
            .collect()
    };
    let mut table = format!(
        "| route | {} |\n|---|---|---|---|---|---|\n",
        callers
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for (name, method, path, body) in routes {
        let mut row = format!("| {name} |");
        for (caller, bearer) in &callers {
            let before = acme(stack.snapshot().await);
            let (status, answer) = match bearer {
                Some(t) => owner_call(&gw, method, path, t, body).await,
                None => {
                    let url = format!("http://{}{path}", gw.gateway.addr());
                    let (s, b) = http::request(method, &url, &[], body.as_bytes()).await;
                    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
                }
            };
            let code = answer["code"].as_str().unwrap_or_default();
            if let Some(id) = answer["job"]["jobId"].as_str() {
                finished(&gw, id, bearer.as_deref().unwrap()).await;
            }
            match *caller {
                "OWNER" => {
                    assert!(status < 300, "{name} by the OWNER: {status} {answer}");
                    row.push_str(&format!(" ✓ {status} |"));
                }
                "other tenant's OWNER" => {
                    // Their own tenant's request (the token's), or nothing of acme's: acme's
                    // job is not found, and a confirmation naming acme does not match theirs.
                    assert!(
                        status < 300 || code == "NOT_FOUND" || code == "INVALID_FIELD",
                        "{name}: {status} {answer}"
                    );
                    assert_eq!(
                        acme(stack.snapshot().await),
                        before,
                        "{name} by {caller} touched acme"
                    );
                    let cell = if status < 300 {
                        format!(" ✓ {status} (own tenant) |")
                    } else {
                        format!(" ✗ {status} {code} |")
                    };
                    row.push_str(&cell);
                }
                _ => {
                    let expected = if bearer.is_none() {
                        (401, "UNAUTHORIZED")
                    } else {
                        (403, "FORBIDDEN")
                    };
                    assert_eq!((status, code), expected, "{name} by {caller}: {answer}");
                    assert_eq!(
                        acme(stack.snapshot().await),
                        before,
                        "{name} by {caller} was refused but wrote"
                    );
                    row.push_str(&format!(" ✗ {status} {code} |"));
                }
            }
        }
        table.push_str(&row);
        table.push('\n');
    }
    println!("{table}");
    let out = format!("{}/target/test-output", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(format!("{out}/lifecycle-matrix.md"), &table).unwrap();
    gw.stop().await;
}
