//! A tenant's data under its owner's control, on moto: the portal's backend exports a tenant,
//! erases one of its users and exports again, through the real service-api and lifecycle
//! functions (SQS steps, DynamoDB, S3 multipart uploads); the other tenant is never touched
//! and the audit log names each step.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use messaging_core::{Role, TenantId};
use serde_json::{json, Value};
use test_support::service_api::iam_request;
use test_support::{chat, create, http, Client, TestStack};

/// A server API call straight to the handler, as API Gateway passes a signed request.
async fn service(
    stack: &TestStack,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let request = iam_request(method, path, key, body);
    let response = messaging_handlers::service_api::handle(&stack.service, request).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body)
}

/// Starts a job, runs every step, and returns the finished job as `GET /jobs/{id}` shows it.
async fn run_job(stack: &TestStack, path: &str, key: &str, body: &str) -> Value {
    let (status, started) = service(stack, "POST", path, Some(key), body).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["job"]["state"], "running");
    let responses = stack.pump_jobs().await;
    assert!(
        responses.iter().all(|r| r.batch_item_failures.is_empty()),
        "a step failed: {responses:?}"
    );
    let id = started["job"]["jobId"].as_str().unwrap();
    let (status, job) = service(
        stack,
        "GET",
        &format!("/service/tenants/acme/jobs/{id}"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["job"]["state"], "completed", "{job}");
    job
}

/// The lines of a finished export, fetched through its download link.
async fn exported(job: &Value) -> Vec<Value> {
    let url = job["download"]["url"].as_str().expect("a download link");
    let (status, bytes) = http::request("GET", url, &[], b"").await;
    assert_eq!(status, 200);
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect()
}

fn records_of<'a>(lines: &'a [Value], record: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["record"] == record).collect()
}

/// Every item of `tenant`'s partition, keyed by sort key.
async fn items_of(
    stack: &TestStack,
    tenant: &str,
) -> BTreeMap<String, BTreeMap<String, AttributeValue>> {
    let prefix = format!("CLIENT#{tenant}|");
    stack
        .snapshot()
        .await
        .into_iter()
        .filter_map(|(key, item)| Some((key.strip_prefix(&prefix)?.to_owned(), item)))
        .collect()
}

async fn send(stack: &TestStack, who: &Client, frame: Value) -> Value {
    let answer = stack.send(who, &frame).await.1;
    assert_ne!(answer["type"], "ERROR", "{frame}: {answer}");
    answer
}

/// acme: bob writes, reacts, owns a file shared with carol and comments on carol's; carol
/// and the owner write around him. globex: a conversation of its own.
async fn portal(stack: &TestStack) -> (Client, Client, Client) {
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let bob = stack.connect_as("acme", "bob", Role::Admin).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    send(stack, &owner, create("deal", "project", &["bob", "carol"])).await;
    // bob creates and adds to a conversation of his own: others' items that name him.
    send(stack, &bob, create("bobs-room", "project", &["carol"])).await;
    send(
        stack,
        &bob,
        chat("deal", "bob drafts the zanzibar contract"),
    )
    .await;
    send(
        stack,
        &carol,
        chat("deal", "carol likes the zanzibar draft"),
    )
    .await;
    let reply = json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "parentSeq": 2, "content": { "text": "bob answers in the thread" } });
    send(stack, &bob, reply).await;
    let react = |seq: u64| json!({ "type": "ADD_REACTION", "conversationId": "deal", "seq": seq, "emoji": "+1" });
    send(stack, &bob, react(2)).await;
    send(stack, &carol, react(1)).await;
    for (who, file) in [(&bob, "bob-notes"), (&carol, "carol-plan")] {
        let register = json!({ "type": "REGISTER_FILE", "fileId": file, "name": format!("{file}.txt"), "size": 5, "mimeType": "text/plain" });
        let registered = send(stack, who, register).await;
        http::put_presigned(&registered["upload"], b"notes").await;
    }
    let share = |file: &str, user: &str| json!({ "type": "SHARE_FILE", "fileId": file, "userId": user, "permissions": { "comment": true } });
    send(stack, &bob, share("bob-notes", "carol")).await;
    send(stack, &carol, share("carol-plan", "bob")).await;
    let comment =
        |file: &str, text: &str| json!({ "type": "FILE_COMMENT", "fileId": file, "content": text });
    send(
        stack,
        &carol,
        comment("bob-notes", "carol reads bob's notes"),
    )
    .await;
    send(
        stack,
        &bob,
        comment("carol-plan", "bob comments on zanzibar"),
    )
    .await;
    stack.pump().await;
    stack.index_search().await;

    let globex = stack.connect_as("globex", "gina", Role::Owner).await;
    send(stack, &globex, create("ops", "project", &["bob"])).await;
    send(
        stack,
        &globex,
        chat("ops", "globex has its own bob and zanzibar"),
    )
    .await;
    stack.pump().await;
    stack.index_search().await;
    (owner, bob, carol)
}

#[tokio::test]
async fn export_erase_export_leaves_nothing_of_the_user_and_never_touches_another_tenant() {
    let mut stack = TestStack::new().await;
    // A few items a query page: the walks take many steps, each saved and resumed.
    stack.lifecycle.page_limit = Some(2);
    let (owner, _bob, carol) = portal(&stack).await;
    let globex_before = items_of(&stack, "globex").await;

    // 1. The tenant's export: every record of its people and conversations, none internal.
    let first = run_job(&stack, "/service/tenants/acme/exports", "export-1", "{}").await;
    let steps = first["job"]["progress"]["steps"].as_u64().unwrap();
    assert!(steps >= 3, "small pages make several steps: {steps}");
    let lines = exported(&first).await;
    assert_eq!(lines[0]["record"], "export");
    assert_eq!(lines[0]["clientId"], "acme");
    assert_eq!(
        first["job"]["progress"]["recordsExported"]
            .as_u64()
            .unwrap() as usize,
        lines.len() - 1
    );
    let bobs: Vec<&Value> = records_of(&lines, "message")
        .into_iter()
        .filter(|m| m["senderId"] == "bob")
        .collect();
    assert_eq!(bobs.len(), 2, "{lines:?}");
    assert!(records_of(&lines, "user")
        .iter()
        .any(|u| u["user"] == "bob"));
    assert_eq!(records_of(&lines, "file").len(), 2);
    for line in &lines {
        let record = line["record"].as_str().unwrap();
        assert!(
            [
                "export",
                "tenant",
                "user",
                "preferences",
                "conversation",
                "membership",
                "message",
                "file",
                "share",
                "grant",
                "comment",
                "notification"
            ]
            .contains(&record),
            "an internal item was exported: {line}"
        );
        assert!(
            line.get("PK").is_none() && line.get("ttl").is_none(),
            "{line}"
        );
        assert_ne!(line["clientId"], "globex", "{line}");
    }
    let text = lines.iter().map(Value::to_string).collect::<String>();
    assert!(
        !text.contains("globex has its own"),
        "another tenant's message was exported"
    );

    // One user's export: only what is about bob.
    let his = run_job(
        &stack,
        "/service/tenants/acme/exports",
        "export-bob",
        r#"{"userId":"bob"}"#,
    )
    .await;
    let his_lines = exported(&his).await;
    assert_eq!(his_lines[0]["userId"], "bob");
    for line in &his_lines[1..] {
        let about_bob = [
            &line["user"],
            &line["senderId"],
            &line["owner"],
            &line["author"],
        ]
        .iter()
        .any(|v| **v == "bob");
        assert!(about_bob, "not about bob: {line}");
    }
    assert_eq!(records_of(&his_lines, "message").len(), 2);

    // 2. Erase bob. The same request again (same Idempotency-Key) is the same job.
    let erased = run_job(
        &stack,
        "/service/tenants/acme/erasures",
        "erase-bob",
        r#"{"userId":"bob"}"#,
    )
    .await;
    let progress = &erased["job"]["progress"];
    assert_eq!(progress["messagesErased"], 2, "{erased}");
    assert_eq!(
        progress["objectsDeleted"], 1,
        "bob's file: one version, no preview"
    );
    let (status, again) = service(
        &stack,
        "POST",
        "/service/tenants/acme/erasures",
        Some("erase-bob"),
        r#"{"userId":"bob"}"#,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(again["job"]["jobId"], erased["job"]["jobId"]);
    assert!(
        stack.pump_jobs().await.is_empty(),
        "a replayed request starts nothing"
    );

    // Nothing in acme's partition names bob or holds his words any more, but the audit
    // entries (ids only: who asked, and that he was erased).
    let after = items_of(&stack, "acme").await;
    for (sk, item) in &after {
        if sk.starts_with("AUDIT#") {
            continue;
        }
        let text = format!("{item:?}");
        for trace in [
            "\"bob\"",
            "bob drafts",
            "bob answers",
            "bob comments",
            "bob-notes",
        ] {
            assert!(!text.contains(trace), "{sk} still holds {trace}: {text}");
        }
    }
    // His messages are tombstones, in place: the conversation's numbering has no hole.
    let tomb = after
        .get("CONVERSATION#deal#MSG#000000000001")
        .expect("seq 1 stays");
    assert_eq!(
        tomb["senderId"],
        AttributeValue::S("stackpro.erased".into())
    );
    assert_eq!(tomb["deleted"], AttributeValue::Bool(true));
    // carol's message keeps its text and loses only bob's reaction.
    let kept = after.get("CONVERSATION#deal#MSG#000000000002").unwrap();
    assert!(format!("{kept:?}").contains("carol likes the zanzibar draft"));
    // His file is gone from S3 too; carol's stays.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.sdk)
            .force_path_style(true)
            .build(),
    );
    let object = |file: &str| {
        messaging_aws::file_object_key(
            &TenantId::parse("acme").unwrap(),
            &messaging_core::FileId::parse(file).unwrap(),
        )
    };
    assert!(s3
        .head_object()
        .bucket(&stack.bucket)
        .key(object("bob-notes"))
        .send()
        .await
        .is_err());
    assert!(s3
        .head_object()
        .bucket(&stack.bucket)
        .key(object("carol-plan"))
        .send()
        .await
        .is_ok());
    // Search no longer finds his words; carol's still are.
    let search = |q: &str| json!({ "type": "SEARCH", "query": q });
    let found = stack.send(&carol, &search("drafts")).await.1;
    assert_eq!(found["results"].as_array().unwrap().len(), 0, "{found}");
    let found = stack.send(&carol, &search("likes")).await.1;
    assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");

    // 3. The second export holds nothing of bob.
    let second = run_job(&stack, "/service/tenants/acme/exports", "export-2", "{}").await;
    let lines = exported(&second).await;
    let text = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for trace in [
        "\"bob\"",
        "bob drafts",
        "bob answers",
        "bob comments",
        "bob-notes",
    ] {
        assert!(
            !text.contains(trace),
            "the second export holds {trace}:\n{text}"
        );
    }
    assert_eq!(
        records_of(&lines, "message").len(),
        3,
        "the two tombstones and carol's message"
    );

    // globex was never touched.
    assert_eq!(items_of(&stack, "globex").await, globex_before);

    // The audit log lists each step, newest first.
    let (entries, _) = stack
        .parts
        .table
        .audit_page(&TenantId::parse("acme").unwrap(), None, 100, 0)
        .await
        .unwrap();
    let jobs: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.job_id.is_some())
        .map(|e| {
            let action = serde_json::to_value(e.action)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            (
                action,
                e.user_id
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let pair = |a: &str, u: &str| (a.to_owned(), u.to_owned());
    assert_eq!(
        jobs,
        [
            pair("EXPORT_COMPLETED", ""),
            pair("EXPORT_REQUESTED", ""),
            pair("ERASURE_COMPLETED", "bob"),
            pair("ERASURE_REQUESTED", "bob"),
            pair("EXPORT_COMPLETED", "bob"),
            pair("EXPORT_REQUESTED", "bob"),
            pair("EXPORT_COMPLETED", ""),
            pair("EXPORT_REQUESTED", ""),
        ]
    );
    let _ = owner;
}

#[tokio::test]
async fn a_job_step_delivered_twice_or_late_changes_nothing_and_jobs_stay_in_their_tenant() {
    let mut stack = TestStack::new().await;
    stack.lifecycle.page_limit = Some(3);
    portal(&stack).await;
    let (status, started) = service(
        &stack,
        "POST",
        "/service/tenants/acme/erasures",
        Some("e1"),
        r#"{"userId":"carol"}"#,
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["job"]["jobId"].as_str().unwrap().to_owned();
    // Each step message is delivered twice: the second finds the record past it.
    loop {
        let Some(event) = stack.jobs.receive(0).await.unwrap() else {
            break;
        };
        let first = messaging_handlers::lifecycle::handle(&stack.lifecycle, event.clone()).await;
        let before = items_of(&stack, "acme").await;
        let second = messaging_handlers::lifecycle::handle(&stack.lifecycle, event.clone()).await;
        assert!(first.batch_item_failures.is_empty() && second.batch_item_failures.is_empty());
        let after = items_of(&stack, "acme").await;
        assert_eq!(before, after, "a duplicate step changed the table");
        stack.jobs.complete(&event, &first).await.unwrap();
    }
    let (_, job) = service(
        &stack,
        "GET",
        &format!("/service/tenants/acme/jobs/{id}"),
        None,
        "",
    )
    .await;
    assert_eq!(job["job"]["state"], "completed", "{job}");
    assert_eq!(job["job"]["progress"]["messagesErased"], 1);
    assert!(job["download"].is_null(), "an erasure has no download");

    // Another tenant's backend path cannot read acme's job; a made-up id is not found.
    let (status, _) = service(
        &stack,
        "GET",
        &format!("/service/tenants/globex/jobs/{id}"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = service(
        &stack,
        "GET",
        "/service/tenants/acme/jobs/0193a1b2c3d4e5f60718293a4b5c6d7e",
        None,
        "",
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    // No job for the server's own names.
    let (status, body) = service(
        &stack,
        "POST",
        "/service/tenants/acme/erasures",
        Some("e2"),
        r#"{"userId":"stackpro.system"}"#,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD"))
    );
}

/// Every version of every object under `prefix` in the stack's bucket.
async fn versions_under(stack: &TestStack, prefix: &str) -> usize {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.sdk)
            .force_path_style(true)
            .build(),
    );
    let listed = s3
        .list_object_versions()
        .bucket(&stack.bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed.versions.unwrap_or_default().len() + listed.delete_markers.unwrap_or_default().len()
}

#[tokio::test]
async fn offboarding_deletes_every_item_and_object_version_of_the_tenant_and_verifies_it() {
    let mut stack = TestStack::new().await;
    stack.lifecycle.page_limit = Some(3);
    let (_owner, bob, _carol) = portal(&stack).await;
    // An export: something under its exports/ prefix too.
    let export = run_job(&stack, "/service/tenants/acme/exports", "x", "{}").await;
    assert_eq!(export["job"]["state"], "completed");
    let registry = |items: &BTreeMap<String, BTreeMap<String, AttributeValue>>| {
        items
            .iter()
            .filter(|(k, item)| {
                k.starts_with("CONNECTION#")
                    && item.get("clientId") == Some(&AttributeValue::S("acme".into()))
            })
            .count()
    };
    assert_eq!(
        registry(&stack.snapshot().await),
        3,
        "acme's three connections"
    );
    assert!(versions_under(&stack, "tenants/acme/").await >= 2);
    assert!(versions_under(&stack, "exports/acme/").await >= 1);
    let globex_items = items_of(&stack, "globex").await;
    let globex_objects = versions_under(&stack, "tenants/globex/").await;

    // The body must repeat the tenant: a request for the wrong one deletes nothing.
    let (status, body) = service(
        &stack,
        "POST",
        "/service/tenants/acme/offboarding",
        Some("o0"),
        r#"{"confirm":"globex"}"#,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
    assert!(stack.pump_jobs().await.is_empty());

    let job = run_job(
        &stack,
        "/service/tenants/acme/offboarding",
        "o1",
        r#"{"confirm":"acme"}"#,
    )
    .await;
    let view = &job["job"];
    assert_eq!(view["kind"], "offboard");
    assert!(view["verifiedEmptyAt"].is_string(), "{job}");
    assert!(
        view["progress"]["itemsChanged"].as_u64().unwrap() > 40,
        "{job}"
    );
    assert!(
        view["progress"]["objectsDeleted"].as_u64().unwrap() >= 3,
        "{job}"
    );

    // Nothing of acme is left: its partition, its connections' registry entries, its other
    // jobs' records, any version of any object under its prefixes. Its offboarding's record
    // stays (the receipt); globex is as it was.
    let items = stack.snapshot().await;
    let left: Vec<&String> = items
        .keys()
        .filter(|k| k.starts_with("CLIENT#acme|") || k.starts_with("CLIENT#acme#"))
        .collect();
    let receipt = format!("CLIENT#acme#JOBS|JOB#{}", view["jobId"].as_str().unwrap());
    assert_eq!(left, [&receipt], "left of acme: {left:?}");
    assert_eq!(registry(&items), 0);
    for prefix in ["tenants/acme/", "previews/acme/", "exports/acme/"] {
        assert_eq!(versions_under(&stack, prefix).await, 0, "{prefix}");
    }
    assert_eq!(items_of(&stack, "globex").await, globex_items);
    assert_eq!(
        versions_under(&stack, "tenants/globex/").await,
        globex_objects
    );
    // bob's socket finds nothing: refused (UNKNOWN_CONNECTION once the route's cache of
    // recent callers has let it go, CONVERSATION_NOT_FOUND before), and nothing is written.
    let answer = stack.send(&bob, &chat("deal", "still here?")).await.1;
    assert_eq!(answer["type"], "ERROR", "{answer}");
    assert!(items_of(&stack, "acme").await.is_empty());
}

#[tokio::test]
async fn retention_sweeps_what_is_older_than_the_tenants_days_and_nothing_newer_or_elsewhere() {
    let mut stack = TestStack::new().await;
    stack.lifecycle.page_limit = Some(3);
    let (_owner, _bob, carol) = portal(&stack).await;
    // Everything above is older than the boundary; one message after it.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let boundary = messaging_core::time::now_millis();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    send(
        &stack,
        &carol,
        chat("deal", "carol brings fresh quokka news"),
    )
    .await;
    stack.pump().await;
    stack.index_search().await;
    let globex_before = items_of(&stack, "globex").await;

    let (status, set) = service(
        &stack,
        "PUT",
        "/service/tenants/acme/retention",
        None,
        r#"{"days":30}"#,
    )
    .await;
    assert_eq!((status, &set["retentionDays"]), (200, &json!(30)), "{set}");
    // Thirty days after the boundary (time simulated: the sweep is told when it runs).
    let month = 30 * 24 * 60 * 60 * 1000;
    let started =
        messaging_handlers::lifecycle::start_retention_sweeps(&stack.lifecycle, boundary + month)
            .await
            .unwrap();
    assert_eq!(started, 1, "acme only: globex keeps everything");
    let responses = stack.pump_jobs().await;
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));

    let after = items_of(&stack, "acme").await;
    let of_kind = |prefix: &str, infix: &str| -> Vec<&String> {
        after
            .keys()
            .filter(|k| k.starts_with(prefix) && k.contains(infix))
            .collect()
    };
    let messages = of_kind("CONVERSATION#", "#MSG#");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(format!("{:?}", after[messages[0]]).contains("quokka"));
    assert!(
        of_kind("FILE#", "").is_empty(),
        "files and their comments, shares, grants"
    );
    assert!(of_kind("NOTIFICATION#", "").is_empty());
    // Who is in which conversation stays: retention is about content.
    assert!(after.contains_key("CONVERSATION#deal"));
    assert!(after.contains_key("CONVERSATION#deal#MEMBER#carol"));
    assert!(after.contains_key("USER#bob"));
    for (sk, item) in &after {
        if sk.starts_with("SEARCH#") {
            let text = format!("{item:?}");
            assert!(
                !text.contains("zanzibar") && !text.contains("drafts"),
                "{sk}: {text}"
            );
        }
    }
    assert_eq!(versions_under(&stack, "tenants/acme/").await, 0);
    let search = |q: &str| json!({ "type": "SEARCH", "query": q });
    let found = stack.send(&carol, &search("zanzibar")).await.1;
    assert_eq!(found["results"].as_array().unwrap().len(), 0, "{found}");
    let found = stack.send(&carol, &search("quokka")).await.1;
    assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(items_of(&stack, "globex").await, globex_before);

    let (entries, _) = stack
        .parts
        .table
        .audit_page(&TenantId::parse("acme").unwrap(), None, 100, 0)
        .await
        .unwrap();
    let actions: Vec<String> = entries
        .iter()
        .take(2)
        .map(|e| {
            serde_json::to_value(e.action)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["RETENTION_SWEPT", "RETENTION_CHANGED"]);
    assert_eq!(entries[1].detail.as_deref(), Some("30 days"));

    // Kept for ever again: no sweep starts.
    let (status, _) = service(
        &stack,
        "PUT",
        "/service/tenants/acme/retention",
        None,
        r#"{"days":null}"#,
    )
    .await;
    assert_eq!(status, 200);
    let started = messaging_handlers::lifecycle::start_retention_sweeps(
        &stack.lifecycle,
        boundary + 2 * month,
    )
    .await
    .unwrap();
    assert_eq!(started, 0);
}
