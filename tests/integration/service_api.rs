//! The server API end to end: signed (SigV4) calls through the local gateway, which checks the
//! signature and the caller's policy as API Gateway's `AWS_IAM` routes do, to the real function
//! on moto; members' real WebSocket clients see the results live.

use std::time::Duration;

use messaging_core::{Principal, Role, TenantId, UserId};
use messaging_devstack::tokens;
use messaging_gateway::sigv4::ServiceCaller;
use serde_json::{json, Value};
use test_support::gateway::GatewayStack;
use test_support::service_api::{acme_backend, call, Answer, Auth};

const QUIET: Duration = Duration::from_millis(1200);

fn base(gw: &GatewayStack) -> String {
    format!("http://{}", gw.gateway.addr())
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

#[tokio::test]
async fn the_portal_backend_runs_a_tenant_through_signed_calls_and_members_see_it_live() {
    let gw = GatewayStack::start().await;
    let portal = ServiceCaller::local_portal_backend();
    let base = base(&gw);
    let mut alice = gw.connect("acme", "alice", Role::User).await;
    let mut bob = gw.connect("acme", "bob", Role::User).await;
    let signed = || Auth::Signed(&portal);

    // The portal names alice and makes her an ADMIN: her live connection acts as one at once.
    let put = call(
        &base,
        signed(),
        "PUT",
        "/service/tenants/acme/users/alice",
        None,
        r#"{"name":"Alice Archer","role":"ADMIN"}"#,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["connectionsUpdated"], 1);
    assert_eq!(put.body["role"], "ADMIN");

    // A project conversation for a new client, opened by the portal (which is no member).
    let create_body = r#"{"conversationId":"project-7","kind":"project","title":"Project 7","members":["alice","bob"]}"#;
    let created = call(
        &base,
        signed(),
        "POST",
        "/service/tenants/acme/conversations",
        Some("create-project-7"),
        create_body,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["conversation"]["createdBy"], "stackpro.system");
    assert!(!created.replayed());
    let frames = alice.drain(QUIET).await;
    assert_eq!(
        of_type(&frames, "CONVERSATION_CREATED").len(),
        1,
        "{frames:?}"
    );
    bob.drain(Duration::from_millis(300)).await;

    // The same request again (a retry after a lost answer): the first answer, nothing redone.
    let again = call(
        &base,
        signed(),
        "POST",
        "/service/tenants/acme/conversations",
        Some("create-project-7"),
        create_body,
    )
    .await;
    assert_eq!((again.status, &again.body), (201, &created.body));
    assert!(again.replayed());
    // The key with another body is another request.
    let reused = call(
        &base,
        signed(),
        "POST",
        "/service/tenants/acme/conversations",
        Some("create-project-7"),
        r#"{"conversationId":"project-8","kind":"project"}"#,
    )
    .await;
    assert_eq!(
        (reused.status, reused.body["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );
    // A new key for the same conversation: it exists.
    let exists = call(
        &base,
        signed(),
        "POST",
        "/service/tenants/acme/conversations",
        Some("create-project-7-b"),
        create_body,
    )
    .await;
    assert_eq!(
        (exists.status, exists.body["code"].as_str()),
        (409, Some("CONVERSATION_EXISTS"))
    );
    let missing_key = call(
        &base,
        signed(),
        "POST",
        "/service/tenants/acme/conversations",
        None,
        create_body,
    )
    .await;
    assert_eq!(
        (missing_key.status, missing_key.body["code"].as_str()),
        (400, Some("INVALID_FIELD"))
    );

    // "Invoice #42 was paid": a system message, received live by both members.
    let post = |key: &'static str, text: &'static str| {
        let base = base.clone();
        let portal = portal.clone();
        async move {
            call(
                &base,
                Auth::Signed(&portal),
                "POST",
                "/service/tenants/acme/conversations/project-7/messages",
                Some(key),
                &json!({ "text": text }).to_string(),
            )
            .await
        }
    };
    let posted = post("invoice-42-paid", "Invoice #42 was paid").await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let message = &posted.body["message"];
    assert_eq!(message["senderId"], "stackpro.system");
    assert_eq!(message["content"]["type"], "system");
    for client in [&mut alice, &mut bob] {
        let live = client.expect("NEW_MESSAGE").await;
        assert_eq!(live["data"]["seq"], message["seq"]);
        assert_eq!(live["data"]["content"]["type"], "system");
        assert_eq!(live["data"]["content"]["text"], "Invoice #42 was paid");
    }
    // Retried: the same message, not stored or delivered twice.
    let retried = post("invoice-42-paid", "Invoice #42 was paid").await;
    assert!(retried.replayed());
    assert_eq!(retried.body["message"]["seq"], message["seq"]);
    assert!(of_type(&bob.drain(QUIET).await, "NEW_MESSAGE").is_empty());
    let history = alice_history(&mut alice).await;
    assert_eq!(
        history
            .iter()
            .filter(|m| m["content"]["type"] == "system")
            .count(),
        1
    );

    // Members kept in step: carol added, bob removed (told on his own socket), removing again
    // changes nothing.
    let mut carol = gw.connect("acme", "carol", Role::User).await;
    let added = call(
        &base,
        signed(),
        "POST",
        "/service/tenants/acme/conversations/project-7/members",
        Some("add-carol"),
        r#"{"members":["carol","alice"]}"#,
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["added"], json!(["carol"]));
    assert_eq!(added.body["alreadyMembers"], json!(["alice"]));
    assert_eq!(alice.expect("MEMBER_JOINED").await["userId"], "carol");
    let removed = call(
        &base,
        signed(),
        "DELETE",
        "/service/tenants/acme/conversations/project-7/members/bob",
        None,
        "",
    )
    .await;
    assert_eq!(
        (removed.status, &removed.body["removed"]),
        (200, &json!(true))
    );
    let told = bob.expect("MEMBER_REMOVED").await;
    assert_eq!(told["removedBy"], "stackpro.system");
    let again = call(
        &base,
        signed(),
        "DELETE",
        "/service/tenants/acme/conversations/project-7/members/bob",
        None,
        "",
    )
    .await;
    assert_eq!((again.status, &again.body["removed"]), (200, &json!(false)));
    let second = post("invoice-43-paid", "Invoice #43 was paid").await;
    assert_eq!(second.status, 201);
    assert_eq!(
        carol.expect("NEW_MESSAGE").await["data"]["content"]["text"],
        "Invoice #43 was paid"
    );
    assert!(
        of_type(&bob.drain(QUIET).await, "NEW_MESSAGE").is_empty(),
        "bob was removed"
    );

    // alice, an ADMIN by the portal's word, adds members over her socket; after reconnecting
    // with a USER token she still is one.
    alice.drain(Duration::from_millis(300)).await;
    alice
        .send(&json!({ "type": "ADD_MEMBERS", "conversationId": "project-7", "members": ["dan"] }))
        .await;
    assert_eq!(alice.expect_answer().await["type"], "ACK");
    alice.close().await;
    let mut alice = gw.connect("acme", "alice", Role::User).await;
    alice
        .send(&json!({ "type": "ADD_MEMBERS", "conversationId": "project-7", "members": ["erin"] }))
        .await;
    assert_eq!(alice.expect_answer().await["type"], "ACK");
    // Made a USER again by the portal: refused from the next frame on a fresh connection.
    let demoted = call(
        &base,
        signed(),
        "PUT",
        "/service/tenants/acme/users/alice",
        None,
        r#"{"role":"USER"}"#,
    )
    .await;
    assert_eq!(demoted.status, 200);
    alice.close().await;
    let mut alice = gw.connect("acme", "alice", Role::Owner).await;
    alice
        .send(&json!({ "type": "ADD_MEMBERS", "conversationId": "project-7", "members": ["fay"] }))
        .await;
    assert_eq!(
        alice.expect_answer().await["code"],
        "FORBIDDEN",
        "the portal's USER holds over the token's OWNER"
    );
    gw.stop().await;
}

async fn alice_history(alice: &mut test_support::gateway::WsClient) -> Vec<Value> {
    alice.drain(Duration::from_millis(300)).await;
    alice
        .send(&json!({ "type": "GET_HISTORY", "conversationId": "project-7" }))
        .await;
    let page = alice.expect("HISTORY").await;
    page["messages"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn unsigned_user_token_forged_and_out_of_policy_calls_are_refused_before_the_function() {
    let gw = GatewayStack::start().await;
    let base = base(&gw);
    let portal = ServiceCaller::local_portal_backend();
    let acme = acme_backend();
    let mut owner = gw.connect("acme", "owner", Role::Owner).await;
    owner
        .send(&test_support::create("general", "project", &[]))
        .await;
    owner.expect_answer().await;
    let path = "/service/tenants/acme/conversations/general/messages";
    let body = r#"{"text":"Maintenance tonight"}"#;
    let token = tokens::mint_local(
        &Principal {
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse("owner").unwrap(),
            role: Role::Owner,
            name: None,
        },
        600,
    )
    .unwrap();
    let refusals: Vec<(&str, Answer)> = vec![
        (
            "unsigned",
            call(&base, Auth::None, "POST", path, Some("k1"), body).await,
        ),
        (
            "an OWNER's token",
            call(&base, Auth::Bearer(&token), "POST", path, Some("k2"), body).await,
        ),
        (
            "a wrong secret",
            call(
                &base,
                Auth::WrongSecret(&portal),
                "POST",
                path,
                Some("k3"),
                body,
            )
            .await,
        ),
        (
            "a body changed after signing",
            call(
                &base,
                Auth::SignedFor(&portal, r#"{"text":"hello"}"#),
                "POST",
                path,
                Some("k8"),
                body,
            )
            .await,
        ),
        (
            "acme's backend on globex",
            call(
                &base,
                Auth::Signed(&acme),
                "POST",
                "/service/tenants/globex/conversations/general/messages",
                Some("k4"),
                body,
            )
            .await,
        ),
    ];
    for (who, answer) in &refusals {
        assert_eq!(answer.status, 403, "{who}: {}", answer.body);
        assert!(
            answer.body["message"].is_string(),
            "{who}: API Gateway's message"
        );
    }
    assert_eq!(refusals[0].1.body["message"], "Forbidden");
    assert!(refusals[2].1.body["message"]
        .as_str()
        .unwrap()
        .contains("signature we calculated does not match"));
    assert!(refusals[3].1.body["message"]
        .as_str()
        .unwrap()
        .contains("signature we calculated does not match"));
    assert!(refusals[4].1.body["message"]
        .as_str()
        .unwrap()
        .contains("is not authorized to perform: execute-api:Invoke"));
    assert!(
        owner
            .drain(QUIET)
            .await
            .iter()
            .all(|f| f["type"] != "NEW_MESSAGE"),
        "nothing was posted"
    );

    // acme's backend on acme's paths is allowed; the full backend reaching globex's
    // "general" finds nothing there (the path's tenant is the only tenant).
    let ok = call(&base, Auth::Signed(&acme), "POST", path, Some("k5"), body).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(
        owner.expect("NEW_MESSAGE").await["data"]["content"]["type"],
        "system"
    );
    let elsewhere = call(
        &base,
        Auth::Signed(&portal),
        "POST",
        "/service/tenants/globex/conversations/general/messages",
        Some("k6"),
        body,
    )
    .await;
    assert_eq!(
        (elsewhere.status, elsewhere.body["code"].as_str()),
        (404, Some("CONVERSATION_NOT_FOUND"))
    );

    // The function itself refuses a request that did not come through AWS_IAM (a route
    // deployed without it): UNAUTHORIZED, nothing done.
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri(format!("https://api.test{path}"))
        .header("idempotency-key", "k7")
        .body(lambda_http::Body::Text(body.into()))
        .unwrap();
    let response = messaging_handlers::service_api::handle(&gw.stack.service, request).await;
    assert_eq!(response.status(), 401);
    assert!(owner
        .drain(QUIET)
        .await
        .iter()
        .all(|f| f["type"] != "NEW_MESSAGE"));
    gw.stop().await;
}

/// The request a matrix cell sends for caller i: method, path, whether it takes a key, body.
type RouteCall = Box<dyn Fn(usize) -> (&'static str, String, bool, String)>;

/// Waits until job `id` of acme has finished (the gateway runs its steps in the background),
/// so that the matrix's next cells compare quiet tables.
async fn job_finished(base: &str, portal: &ServiceCaller, id: &str) -> Value {
    for _ in 0..100 {
        let path = format!("/service/tenants/acme/jobs/{id}");
        let job = call(base, Auth::Signed(portal), "GET", &path, None, "").await;
        if job.body["job"]["state"] != "running" {
            return job.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} never finished");
}

/// The server API's matrix: every route × every kind of caller. Refused cells write nothing
/// (table snapshot before and after) and never reach the function; the matrix is printed as
/// Markdown (docs/matrix/server-api-matrix.md).
#[tokio::test]
async fn every_route_by_every_caller_is_allowed_or_refused_with_nothing_written() {
    let gw = GatewayStack::start().await;
    let base = base(&gw);
    let (portal, acme, globex) = (
        ServiceCaller::local_portal_backend(),
        acme_backend(),
        test_support::service_api::globex_backend(),
    );
    let token = tokens::mint_local(
        &Principal {
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse("owner").unwrap(),
            role: Role::Owner,
            name: None,
        },
        600,
    )
    .unwrap();
    // acme's conversation c with y0..y5 (to be removed).
    let seed = call(
        &base,
        Auth::Signed(&portal),
        "POST",
        "/service/tenants/acme/conversations",
        Some("seed"),
        r#"{"conversationId":"c","kind":"project","members":["y0","y1","y2","y3","y4","y5"]}"#,
    )
    .await;
    assert_eq!(seed.status, 201);
    let export = call(
        &base,
        Auth::Signed(&portal),
        "POST",
        "/service/tenants/acme/exports",
        Some("seed-export"),
        "{}",
    )
    .await;
    assert_eq!(export.status, 202, "{}", export.body);
    let job = export.body["job"]["jobId"].as_str().unwrap().to_owned();
    let done = job_finished(&base, &portal, &job).await;
    assert_eq!(done["job"]["state"], "completed", "{done}");
    const CALLERS: [&str; 6] = [
        "unsigned",
        "a user's token (OWNER)",
        "wrong secret",
        "body changed after signing",
        "globex's backend",
        "acme's backend",
    ];
    let routes: [(&str, RouteCall); 10] = [
        (
            "POST conversations",
            Box::new(|i| {
                (
                    "POST",
                    "/service/tenants/acme/conversations".into(),
                    true,
                    format!(r#"{{"conversationId":"m{i}","kind":"project"}}"#),
                )
            }),
        ),
        (
            "POST members",
            Box::new(|i| {
                (
                    "POST",
                    "/service/tenants/acme/conversations/c/members".into(),
                    true,
                    format!(r#"{{"members":["x{i}"]}}"#),
                )
            }),
        ),
        (
            "DELETE member",
            Box::new(|i| {
                (
                    "DELETE",
                    format!("/service/tenants/acme/conversations/c/members/y{i}"),
                    false,
                    String::new(),
                )
            }),
        ),
        (
            "POST messages (system)",
            Box::new(|i| {
                (
                    "POST",
                    "/service/tenants/acme/conversations/c/messages".into(),
                    true,
                    format!(r#"{{"text":"notice {i}"}}"#),
                )
            }),
        ),
        (
            "PUT user",
            Box::new(|i| {
                (
                    "PUT",
                    format!("/service/tenants/acme/users/u{i}"),
                    false,
                    r#"{"role":"ADMIN"}"#.into(),
                )
            }),
        ),
        (
            "POST exports",
            Box::new(|i| {
                (
                    "POST",
                    "/service/tenants/acme/exports".into(),
                    true,
                    format!(r#"{{"userId":"y{i}"}}"#),
                )
            }),
        ),
        (
            "POST erasures",
            Box::new(|i| {
                (
                    "POST",
                    "/service/tenants/acme/erasures".into(),
                    true,
                    format!(r#"{{"userId":"x{i}"}}"#),
                )
            }),
        ),
        (
            "GET job",
            Box::new({
                let job = job.clone();
                move |_| {
                    (
                        "GET",
                        format!("/service/tenants/acme/jobs/{job}"),
                        false,
                        String::new(),
                    )
                }
            }),
        ),
        (
            "PUT retention",
            Box::new(|i| {
                (
                    "PUT",
                    "/service/tenants/acme/retention".into(),
                    false,
                    format!(r#"{{"days":{}}}"#, 30 + i),
                )
            }),
        ),
        // Last: acme's own backend offboards acme (the cells after it are on globex's paths).
        (
            "POST offboarding",
            Box::new(|_| {
                (
                    "POST",
                    "/service/tenants/acme/offboarding".into(),
                    true,
                    r#"{"confirm":"acme"}"#.into(),
                )
            }),
        ),
    ];
    let mut table = format!(
        "| route | {} |\n|---|---|---|---|---|---|---|\n",
        CALLERS.join(" | ")
    );
    for (name, request) in routes {
        let mut row = format!("| {name} |");
        for (i, caller) in CALLERS.iter().enumerate() {
            let (method, path, keyed, body) = request(i);
            let key = format!("{name}-{i}")
                .replace(' ', "-")
                .replace(['(', ')'], "");
            let key = keyed.then_some(key.as_str());
            let auth = match i {
                0 => Auth::None,
                1 => Auth::Bearer(&token),
                2 => Auth::WrongSecret(&acme),
                3 => Auth::SignedFor(&acme, "{}"),
                4 => Auth::Signed(&globex),
                _ => Auth::Signed(&acme),
            };
            let before = gw.stack.snapshot().await;
            let answer = call(&base, auth, method, &path, key, &body).await;
            if i < 5 {
                assert_eq!(answer.status, 403, "{name} by {caller}: {}", answer.body);
                assert_eq!(
                    gw.stack.snapshot().await,
                    before,
                    "{name} by {caller} was refused but wrote"
                );
                row.push_str(" ✗ 403 |");
            } else {
                assert!(
                    answer.status < 300,
                    "{name} by {caller}: {} {}",
                    answer.status,
                    answer.body
                );
                row.push_str(&format!(" ✓ {} |", answer.status));
                if let (202, Some(id)) = (answer.status, answer.body["job"]["jobId"].as_str()) {
                    job_finished(&base, &portal, id).await;
                }
            }
        }
        table.push_str(&row);
        table.push('\n');
    }
    // The tenant is the path's: the all-tenant backend on globex's paths finds none of acme's.
    let mut cross =
        String::from("| all-tenant backend on globex's path, acme's ids | answer |\n|---|---|\n");
    for (method, path, key, body) in [
        (
            "POST",
            "/service/tenants/globex/conversations/c/members",
            Some("x-1"),
            r#"{"members":["z"]}"#,
        ),
        (
            "DELETE",
            "/service/tenants/globex/conversations/c/members/y5",
            None,
            "",
        ),
        (
            "POST",
            "/service/tenants/globex/conversations/c/messages",
            Some("x-2"),
            r#"{"text":"to acme?"}"#,
        ),
        ("GET", "/service/tenants/globex/jobs/JOB", None, ""),
    ] {
        let path = path.replace("JOB", &job);
        let path = path.as_str();
        let before = gw.stack.snapshot().await;
        let answer = call(&base, Auth::Signed(&portal), method, path, key, body).await;
        let code = answer.body["code"].as_str().unwrap_or_default().to_owned();
        let expected = if path.contains("/jobs/") {
            "NOT_FOUND"
        } else {
            "CONVERSATION_NOT_FOUND"
        };
        assert_eq!(
            (answer.status, code.as_str()),
            (404, expected),
            "{method} {path}"
        );
        let after = gw.stack.snapshot().await;
        let acme_items = |s: &std::collections::BTreeMap<String, _>| {
            s.keys().filter(|k| k.contains("CLIENT#acme")).count()
        };
        assert_eq!(acme_items(&after), acme_items(&before));
        cross.push_str(&format!(
            "| {method} {path} | ✗ {} {code} |\n",
            answer.status
        ));
    }
    table.push('\n');
    table.push_str(&cross);
    println!("{table}");
    let out = format!("{}/target/test-output", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(format!("{out}/server-api-matrix.md"), &table).unwrap();
    gw.stop().await;
}
