//! Notifications end to end on moto: offline members get pending notifications, the batch
//! sends one digest per user through SES (read back from moto), suppresses what was read,
//! respects email preferences and quiet hours, never sends twice, retries a failed send; and
//! the EMF metric lines of one message's path.

use std::time::Duration;

use messaging_core::Role;
use messaging_handlers::notify_batch;
use serde_json::{json, Value};
use test_support::gateway::GatewayStack;
use test_support::{chat, create, email, http, sent_emails, sent_emails_to, Client, TestStack};

fn address(user: &str) -> String {
    format!("{user}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Connects `user` with a token whose verified email is `address`, sets their preferences,
/// and leaves (offline from then on).
async fn prefer(stack: &TestStack, user: &str, address: &str, preferences: Value) -> Client {
    let client = stack
        .connect_with("acme", user, Role::User, &email(address))
        .await;
    let (_, answer) = stack
        .send(
            &client,
            &json!({ "type": "SET_PREFERENCES", "preferences": preferences }),
        )
        .await;
    assert_eq!(answer["type"], "PREFERENCES", "{answer}");
    stack.disconnect(&client).await;
    client
}

#[tokio::test]
async fn an_offline_member_gets_one_digest_and_read_muted_or_repeated_batches_send_nothing() {
    let stack = TestStack::new().await;
    let (bob, carol, dave, erin) = (
        address("bob"),
        address("carol"),
        address("dave"),
        address("erin"),
    );
    prefer(&stack, "bob", &bob, json!({})).await;
    prefer(&stack, "carol", &carol, json!({ "email": false })).await;
    let dave_client = prefer(&stack, "dave", &dave, json!({})).await;
    // Erin's quiet hours: from an hour ago to two hours from now (UTC).
    let minute = (messaging_core::time::now_millis() / 60_000).rem_euclid(1440);
    let quiet = json!({ "startMinute": (minute + 1380) % 1440, "endMinute": (minute + 120) % 1440, "utcOffsetMinutes": 0 });
    prefer(&stack, "erin", &erin, json!({ "quietHours": quiet })).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let (_, ack) = stack.send(&owner, &json!({ "type": "CREATE_CONVERSATION", "conversationId": "deal", "kind": "project", "title": "Q3 deal", "members": ["bob", "carol", "dave", "erin"] })).await;
    assert_eq!(ack["type"], "ACK");

    // Three messages within five minutes while they are all offline.
    for text in [
        "Terms attached",
        "Please review by Friday",
        "@bob can you sign?",
    ] {
        assert_eq!(
            stack.send(&owner, &chat("deal", text)).await.1["type"],
            "ACK"
        );
    }
    stack.pump().await;
    // Dave comes back and reads the conversation before the batch runs.
    let dave_again = stack.connect_as("acme", "dave", Role::User).await;
    let (_, read) = stack
        .send(
            &dave_again,
            &json!({ "type": "MARK_READ", "conversationId": "deal", "seq": 3 }),
        )
        .await;
    assert_eq!(read["type"], "ACK", "{read}");
    stack.disconnect(&dave_again).await;
    let _ = dave_client;

    // Before the 5-minute window has closed, nothing goes out.
    let early = notify_batch::run(&stack.notify, messaging_core::time::now_millis())
        .await
        .unwrap();
    assert_eq!(
        (early.pending, early.waiting, early.emails),
        (12, 12, 0),
        "{early:?}"
    );
    let now = messaging_core::time::now_millis() + notify_batch::DEFAULT_WINDOW_MILLIS;
    let first = notify_batch::run(&stack.notify, now).await.unwrap();
    assert_eq!(
        first.pending, 12,
        "3 messages x 4 offline members: {first:?}"
    );
    assert_eq!(
        (
            first.emails,
            first.suppressed,
            first.in_app_only,
            first.held
        ),
        (1, 3, 3, 3),
        "{first:?}"
    );

    // The run also published today's ActiveUsers gauge (PutMetricData on moto's CloudWatch).
    assert_eq!(first.active_user_tenants, 1, "{first:?}");
    let metrics =
        aws_sdk_cloudwatch::Client::new(&messaging_devstack::sdk_config(&test_support::endpoint()))
            .list_metrics()
            .namespace("StackPro/Messaging")
            .metric_name("ActiveUsers")
            .send()
            .await
            .unwrap();
    let tenants: Vec<String> = metrics
        .metrics()
        .iter()
        .flat_map(|m| {
            m.dimensions()
                .iter()
                .filter_map(|d| d.value().map(str::to_owned))
        })
        .collect();
    assert!(tenants.contains(&"acme".to_owned()), "{tenants:?}");
    let sent = sent_emails_to(&[&bob, &carol, &dave, &erin]).await;
    let mails = &sent[&bob];
    assert_eq!(mails.len(), 1, "one digest for three messages: {mails:?}");
    let (subject, html) = &mails[0];
    assert_eq!(subject, "3 new notifications in acme portal");
    for line in [
        "<li>owner of acme in Q3 deal: Terms attached</li>",
        "Please review by Friday",
        "@bob can you sign?",
    ] {
        assert!(html.contains(line), "{line} in {html}");
    }
    assert!(
        html.contains("href=\"https://acme.stackpro.test\""),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://api.stackpro.test/unsubscribe?c=acme&amp;u=bob&amp;t="),
        "{html}"
    );
    assert!(sent[&carol].is_empty(), "carol turned email off");
    assert!(sent[&dave].is_empty(), "dave read it before the batch ran");
    assert!(sent[&erin].is_empty(), "erin is in her quiet hours");

    // A second run in the same window sends nothing more.
    let second = notify_batch::run(&stack.notify, now + 1000).await.unwrap();
    assert_eq!(
        (second.pending, second.emails),
        (3, 0),
        "only erin's held ones are left: {second:?}"
    );
    assert_eq!(sent_emails(&bob).await.len(), 1);

    // Bob's in-app list has them, the mention marked as such.
    // Still inside Erin's quiet hours: hers stay pending (held), run after run.
    let erin_ok = notify_batch::run(&stack.notify, now + 2000).await.unwrap();
    assert_eq!(erin_ok.held, 3, "{erin_ok:?}");
    let bob_client = stack.connect_as("acme", "bob", Role::User).await;
    let (_, list) = stack
        .send(&bob_client, &json!({ "type": "LIST_NOTIFICATIONS" }))
        .await;
    let kinds: Vec<&str> = list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["MENTION", "NEW_MESSAGE", "NEW_MESSAGE"], "{list}");
    assert_eq!(list["unread"], 3);
    assert_eq!(
        list["notifications"][0]["text"],
        "owner of acme mentioned you"
    );
    let (_, ack) = stack
        .send(
            &bob_client,
            &json!({ "type": "MARK_NOTIFICATIONS_READ", "all": true }),
        )
        .await;
    assert_eq!(ack["type"], "ACK");
    let (_, list) = stack
        .send(&bob_client, &json!({ "type": "LIST_NOTIFICATIONS" }))
        .await;
    assert_eq!(list["unread"], 0);
}

#[tokio::test]
async fn a_failed_send_is_retried_next_run_and_sent_once() {
    let stack = TestStack::new().await;
    let bob = address("bob");
    prefer(&stack, "bob", &bob, json!({})).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("deal", "project", &["bob"]))
        .await;
    stack.send(&owner, &chat("deal", "one message")).await;
    stack.pump().await;

    // SES refuses an unverified sender: the send fails, the claim is released.
    let mut broken = stack.notify.clone();
    broken.mailer = broken.mailer.with_sender("nobody@unverified.test");
    let later = || messaging_core::time::now_millis() + notify_batch::DEFAULT_WINDOW_MILLIS;
    let failed = notify_batch::run(&broken, later()).await.unwrap();
    assert_eq!((failed.emails, failed.failed), (0, 1), "{failed:?}");
    assert!(sent_emails(&bob).await.is_empty());

    let retried = notify_batch::run(&stack.notify, later()).await.unwrap();
    assert_eq!(retried.emails, 1, "{retried:?}");
    let again = notify_batch::run(&stack.notify, later()).await.unwrap();
    assert_eq!((again.pending, again.emails), (0, 0));
    let mails = sent_emails(&bob).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].0, "New message in acme portal",
        "a single notification is sent as itself"
    );
}

#[tokio::test]
async fn the_local_gateway_runs_the_batch_on_its_schedule_and_the_unsubscribe_link_works() {
    // The schedule every 400 ms, the batching window 5 s (instead of 5 minutes each): room for
    // the three sends below even on a loaded machine.
    let gw =
        GatewayStack::start_with_schedule(Duration::from_millis(400), Duration::from_secs(5)).await;
    let bob_address = address("bob");
    let mut bob = gw
        .connect_with("acme", "bob", Role::User, &email(&bob_address))
        .await;
    bob.send(&json!({ "type": "GET_PREFERENCES" })).await;
    assert_eq!(
        bob.expect("PREFERENCES").await["preferences"]["emailAddress"],
        bob_address.as_str()
    );
    let mut owner = gw.connect("acme", "owner", Role::Owner).await;
    owner.send(&create("deal", "project", &["bob"])).await;
    owner.expect_answer().await;
    bob.close().await;
    for text in ["first", "second", "third"] {
        owner.send(&chat("deal", text)).await;
        assert_eq!(owner.expect_answer().await["type"], "ACK");
    }
    // Wait until a run has settled bob's three notifications
    // (a cheap table read), then read what SES accepted.
    let table = &gw.stack.route.table;
    let (acme, bob_id) = (
        messaging_core::TenantId::parse("acme").unwrap(),
        messaging_core::UserId::parse("bob").unwrap(),
    );
    for _ in 0..150 {
        let written = table.notifications(&acme, &bob_id, 10).await.unwrap().len();
        let pending = table.pending_of(&acme).await.unwrap().len();
        if written == 3 && pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mails = sent_emails(&bob_address).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "3 new notifications in acme portal");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sent_emails(&bob_address).await.len(),
        1,
        "later runs send nothing more"
    );

    // The unsubscribe link in the email turns email off (the gateway serves the HTTP API).
    let link = mails[0]
        .1
        .split("href=\"")
        .filter_map(|part| part.split('"').next())
        .find(|href| href.contains("/unsubscribe?"))
        .expect("an unsubscribe link")
        .replace("&amp;", "&");
    let email_on = || async {
        gw.stack
            .route
            .table
            .preferences(&acme, &bob_id)
            .await
            .unwrap()
            .email
    };
    // Opening it (what a mail scanner or a link preview does) changes nothing: it shows the
    // button that does.
    let (status, page) = http::request("GET", &link, &[], b"").await;
    let page = String::from_utf8_lossy(&page).to_string();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("method=\"post\""), "{page}");
    assert!(email_on().await, "a GET turned email off");
    let tampered = link.replace("u=bob", "u=carol");
    assert_eq!(http::request("GET", &tampered, &[], b"").await.0, 400);
    assert_eq!(http::request("POST", &tampered, &[], b"").await.0, 400);
    assert!(email_on().await);
    // The button, or the mail client's RFC 8058 one-click POST, turns it off.
    let one_click = [(
        "Content-Type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let (status, page) =
        http::request("POST", &link, &one_click, b"List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&page));
    assert!(String::from_utf8_lossy(&page).contains("no longer receive"));
    assert!(!email_on().await);
    gw.stop().await;
}

#[tokio::test]
async fn one_messages_path_emits_its_metrics_as_emf_lines_without_content() {
    messaging_handlers::metrics::capture();
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    stack
        .send(&owner, &create("deal", "project", &["bob", "carol"]))
        .await;
    stack.pump().await;
    stack
        .send(&owner, &chat("deal", "confidential terms"))
        .await;
    stack.pump().await;
    let _ = bob;
    let lines = messaging_handlers::metrics::captured();
    for line in &lines {
        println!("{line}");
        assert!(
            !line.contains("confidential"),
            "no message text in metrics: {line}"
        );
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "StackPro/Messaging"
        );
        assert_eq!(v["TenantId"], "acme");
    }
    let has = |name: &str| {
        lines
            .iter()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap()
                    .get(name)
                    .is_some()
            })
            .count()
    };
    assert_eq!(has("Connections"), 2, "one per $connect");
    assert_eq!(has("Messages"), 1, "one per stored message");
    assert!(
        has("Deliveries") >= 1 && has("FanoutLatency") == 1,
        "{lines:?}"
    );
    let fanout: Value = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v.get("FanoutLatency").is_some())
        .unwrap();
    assert_eq!(
        (
            fanout["Deliveries"].as_f64(),
            fanout["NotificationsQueued"].as_f64()
        ),
        (Some(1.0), Some(1.0)),
        "bob got it; carol (offline) was notified"
    );
}

#[tokio::test]
async fn a_shared_file_and_a_comment_on_your_file_reach_you_by_email_while_away() {
    let stack = TestStack::new().await;
    let (olga_address, bob_address) = (address("olga"), address("bob"));
    prefer(&stack, "bob", &bob_address, json!({})).await;
    let olga = stack
        .connect_with("acme", "olga", Role::User, &email(&olga_address))
        .await;
    let registered = stack.send(&olga, &json!({ "type": "REGISTER_FILE", "fileId": "plan", "name": "plan <v2>.pdf", "size": 10, "mimeType": "application/pdf" })).await.1;
    assert_eq!(registered["type"], "FILE");
    // Bob is offline: FILE_SHARED waits for the batch.
    let share = json!({ "type": "SHARE_FILE", "fileId": "plan", "userId": "bob", "permissions": { "comment": true } });
    assert_eq!(stack.send(&olga, &share).await.1["type"], "ACK");
    stack.disconnect(&olga).await;
    // Bob comments while Olga is away: she is notified.
    let bob = stack
        .connect_with("acme", "bob", Role::User, &email(&bob_address))
        .await;
    let comment =
        json!({ "type": "FILE_COMMENT", "fileId": "plan", "content": "Signed on page 3" });
    assert_eq!(stack.send(&bob, &comment).await.1["type"], "ACK");
    stack.disconnect(&bob).await;

    let later = messaging_core::time::now_millis() + notify_batch::DEFAULT_WINDOW_MILLIS;
    let report = notify_batch::run(&stack.notify, later).await.unwrap();
    assert_eq!(report.emails, 2, "{report:?}");
    let sent = sent_emails_to(&[&olga_address, &bob_address]).await;
    assert_eq!(sent[&bob_address].len(), 1);
    assert_eq!(sent[&bob_address][0].0, "File shared: plan <v2>.pdf");
    assert!(
        sent[&bob_address][0]
            .1
            .contains("shared plan &lt;v2&gt;.pdf with you"),
        "{:?}",
        sent[&bob_address]
    );
    assert_eq!(sent[&olga_address].len(), 1);
    assert_eq!(sent[&olga_address][0].0, "New comment on plan <v2>.pdf");
    assert!(sent[&olga_address][0].1.contains("Signed on page 3"));
}

#[tokio::test]
async fn a_push_endpoint_must_be_the_users_own_and_addresses_cannot_be_set() {
    let stack = TestStack::new().await;
    let bob_address = address("bob");
    let bob = stack
        .connect_with("acme", "bob", Role::User, &email(&bob_address))
        .await;
    let before = stack.snapshot().await;
    let set = |preferences: Value| json!({ "type": "SET_PREFERENCES", "preferences": preferences });
    // Digests to any inbox, any phone, any topic or anyone else's device: refused, nothing kept.
    let topic = "arn:aws:sns:us-east-1:123456789012:all-staff".to_owned();
    let carols_device = stack.push_endpoint("stackpro:acme:carol").await;
    for refused in [
        json!({ "emailAddress": "victim@example.com" }),
        json!({ "sms": true, "phoneNumber": "+14155550199" }),
        json!({ "push": true, "pushEndpoint": topic }),
        json!({ "push": true, "pushEndpoint": carols_device }),
    ] {
        let (_, answer) = stack.send(&bob, &set(refused.clone())).await;
        assert_eq!(answer["code"], "INVALID_FIELD", "{refused}: {answer}");
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused SET_PREFERENCES wrote"
    );

    // His own device, and his verified address shown back.
    let bobs_device = stack.push_endpoint("stackpro:acme:bob").await;
    let (_, answer) = stack
        .send(
            &bob,
            &set(json!({ "push": true, "pushEndpoint": bobs_device })),
        )
        .await;
    assert_eq!(answer["type"], "PREFERENCES", "{answer}");
    assert_eq!(answer["preferences"]["emailAddress"], bob_address.as_str());
    stack.disconnect(&bob).await;

    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("deal", "project", &["bob"]))
        .await;
    stack.send(&owner, &chat("deal", "terms attached")).await;
    stack.pump().await;
    let later = messaging_core::time::now_millis() + notify_batch::DEFAULT_WINDOW_MILLIS;
    let report = notify_batch::run(&stack.notify, later).await.unwrap();
    assert_eq!((report.emails, report.pushes), (1, 1), "{report:?}");
    assert_eq!(sent_emails(&bob_address).await.len(), 1);
}

#[tokio::test]
async fn a_message_deleted_or_edited_before_the_batch_is_mailed_as_it_is_now() {
    let stack = TestStack::new().await;
    let bob = address("bob");
    prefer(&stack, "bob", &bob, json!({})).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("deal", "project", &["bob"]))
        .await;
    stack
        .send(&owner, &chat("deal", "wrong file: the salary list"))
        .await;
    stack.send(&owner, &chat("deal", "price is 100")).await;
    stack.pump().await;
    // Before the batch: the first is deleted, the second corrected.
    let delete = json!({ "type": "DELETE_MESSAGE", "conversationId": "deal", "seq": 1 });
    assert_eq!(stack.send(&owner, &delete).await.1["type"], "ACK");
    let edit = json!({ "type": "EDIT_MESSAGE", "conversationId": "deal", "seq": 2, "content": { "text": "price is 120" } });
    assert_eq!(stack.send(&owner, &edit).await.1["type"], "ACK");
    stack.pump().await;

    let later = messaging_core::time::now_millis() + notify_batch::DEFAULT_WINDOW_MILLIS;
    let report = notify_batch::run(&stack.notify, later).await.unwrap();
    assert_eq!((report.emails, report.suppressed), (1, 1), "{report:?}");
    let mails = sent_emails(&bob).await;
    assert_eq!(mails.len(), 1);
    let (subject, body) = &mails[0];
    assert!(
        !subject.contains("salary") && !body.contains("salary"),
        "a deleted message was mailed: {subject} {body}"
    );
    assert!(
        body.contains("price is 120") && !body.contains("price is 100"),
        "{body}"
    );
}

/// Members `m000…` of a conversation `conversation` created by `owner` (97 at creation, the
/// rest 100 at a time).
async fn conversation_of(stack: &TestStack, owner: &Client, conversation: &str, members: usize) {
    let names: Vec<String> = (0..members).map(|i| format!("m{i:03}")).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let first = all.len().min(messaging_core::protocol::MAX_INITIAL_MEMBERS);
    let (_, ack) = stack
        .send(owner, &create(conversation, "project", &all[..first]))
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    for chunk in all[first..].chunks(100) {
        let add =
            json!({ "type": "ADD_MEMBERS", "conversationId": conversation, "members": chunk });
        assert_eq!(stack.send(owner, &add).await.1["type"], "ACK");
    }
}

#[tokio::test]
async fn a_message_notifies_at_most_its_cap_and_in_a_large_conversation_only_its_mentions() {
    use messaging_handlers::broadcast::MAX_NOTIFIED_MEMBERS;
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let acme = messaging_core::TenantId::parse("acme").unwrap();
    // A team: every member who is away is notified.
    conversation_of(&stack, &owner, "team", 40).await;
    // A company-wide channel past the cap: only who a message @mentions.
    conversation_of(&stack, &owner, "all-hands", MAX_NOTIFIED_MEMBERS + 2).await;
    stack.pump().await;
    let pending_before = stack.route.table.pending_of(&acme).await.unwrap().len();

    stack.send(&owner, &chat("team", "standup in 5")).await;
    stack.pump().await;
    let team = stack.route.table.pending_of(&acme).await.unwrap().len() - pending_before;
    assert_eq!(team, 40, "every away member of a small conversation");

    stack
        .send(
            &owner,
            &chat("all-hands", "welcome @m007 and @m150, and @nobody"),
        )
        .await;
    stack.pump().await;
    let pending = stack.route.table.pending_of(&acme).await.unwrap();
    let mut new: Vec<_> = pending
        .iter()
        .filter(|n| n.view.data.conversation_id.as_deref() == Some("all-hands"))
        .map(|n| n.user.to_string())
        .collect();
    new.sort();
    // Before the cap, this message wrote a notification for each of the 202 members.
    assert_eq!(new, ["m007", "m150"], "mentioned members only");
}

#[tokio::test]
async fn the_batch_settles_each_tenant_in_bounded_passes_and_a_big_tenant_does_not_hold_up_a_small_one(
) {
    let stack = TestStack::new().await;
    // A tenant with many users away, and a tenant with one.
    let big_owner = stack.connect_as("big", "owner", Role::Owner).await;
    conversation_of(&stack, &big_owner, "news", 24).await;
    for text in ["one", "two"] {
        stack.send(&big_owner, &chat("news", text)).await;
    }
    let small_owner = stack.connect_as("small", "owner", Role::Owner).await;
    stack
        .send(&small_owner, &create("desk", "project", &["sam"]))
        .await;
    stack.send(&small_owner, &chat("desk", "hi sam")).await;
    stack.pump().await;
    let table = &stack.route.table;
    let (big, small) = (
        messaging_core::TenantId::parse("big").unwrap(),
        messaging_core::TenantId::parse("small").unwrap(),
    );
    assert_eq!(table.pending_of(&big).await.unwrap().len(), 48);
    // One pending-work partition per shard of each tenant: the big tenant's notifications
    // spread over its shards, and no key is shared with the small one.
    let shards: std::collections::BTreeSet<String> = stack
        .snapshot()
        .await
        .values()
        .filter_map(|item| item.get(messaging_aws::table::GSI1PK)?.as_s().ok().cloned())
        .filter(|pk| pk.contains("#NOTIFY#PENDING#"))
        .collect();
    assert!(
        shards
            .iter()
            .filter(|pk| pk.starts_with("CLIENT#big#"))
            .count()
            > 1,
        "{shards:?}"
    );
    assert!(shards
        .iter()
        .all(|pk| pk.starts_with("CLIENT#big#") || pk.starts_with("CLIENT#small#")));

    // As deployed: the coordinator queues one item per tenant, workers take items in queue
    // order. Each pass reads 2 notifications a shard at most.
    let mut worker = stack.notify.clone();
    worker.window_millis = 0;
    worker.page_per_shard = 2;
    // Longer than this test can take on a slow machine: the markers' grace below is checked
    // against the clock, not against how fast the passes ran.
    worker.marker_grace_millis = 600_000;
    let queued = notify_batch::coordinate(&worker, messaging_core::time::now_millis())
        .await
        .unwrap();
    assert_eq!((queued.tenants, queued.queued), (2, 2));
    let source = messaging_devstack::event_source::SqsEventSource::new(
        stack.sqs.clone(),
        worker.work.url(),
        "arn:aws:sqs:us-east-1:123456789012:NotifyQueue",
        "us-east-1",
    )
    // The template's BatchSize: one tenant an invocation.
    .with_batch_size(1);
    let mut order = Vec::new();
    while let Some(event) = source.receive(0).await.unwrap() {
        let work: notify_batch::NotifyWork =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        order.push(work.tenant.to_string());
        let response = notify_batch::handle_work(&worker, event.clone(), None).await;
        assert!(response.batch_item_failures.is_empty());
        source.complete(&event, &response).await.unwrap();
        assert!(order.len() < 100, "the passes never end: {order:?}");
    }
    // The small tenant was served right after the big one's first pass, not after all of them.
    assert_eq!(
        order.iter().position(|t| t == "small"),
        Some(1),
        "{order:?}"
    );
    assert!(
        order.iter().filter(|t| *t == "big").count() > 2,
        "{order:?}"
    );
    // Everything settled, each user mailed once, and the markers gone.
    let left = table.pending_of(&big).await.unwrap();
    assert!(
        left.is_empty(),
        "{} left after {order:?}: {:?}",
        left.len(),
        left.iter()
            .map(|n| (n.user.to_string(), n.view.created_at.clone()))
            .collect::<Vec<_>>()
    );
    assert!(table.pending_of(&small).await.unwrap().is_empty());
    // Marked moments ago, the markers stay (the index may not show a notification stored just
    // before); the next run's pass finds nothing and removes them.
    assert_eq!(table.tenants_with_pending().await.unwrap().len(), 2);
    let next_run = messaging_core::time::now_millis() + worker.marker_grace_millis;
    for tenant in [big, small] {
        let (report, next) = notify_batch::pass(
            &worker,
            &notify_batch::NotifyWork::first(tenant),
            next_run,
            None,
        )
        .await
        .unwrap();
        assert_eq!((report.pending, report.drained, next), (0, 1, None));
    }
    assert!(table.tenants_with_pending().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_digest_claimed_by_a_run_that_died_is_sent_by_a_later_run_and_a_live_claim_is_left_alone()
{
    use messaging_core::notify::Channel;
    let stack = TestStack::new().await;
    let (bob, carol) = (address("bob"), address("carol"));
    prefer(&stack, "bob", &bob, json!({})).await;
    prefer(&stack, "carol", &carol, json!({})).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("deal", "project", &["bob", "carol"]))
        .await;
    stack.send(&owner, &chat("deal", "contract attached")).await;
    stack.pump().await;
    let table = &stack.route.table;
    let acme = messaging_core::TenantId::parse("acme").unwrap();
    // Two runs claimed these digests and never recorded a send: bob's 20 minutes ago (that
    // run is long dead), carol's a minute ago (it may still be sending).
    let pending = table.pending_of(&acme).await.unwrap();
    let now = messaging_core::time::now_millis();
    for (user, claimed_ago) in [("bob", 20 * 60_000), ("carol", 60_000)] {
        let first = pending
            .iter()
            .find(|n| n.user.as_str() == user)
            .unwrap()
            .view
            .notification_id
            .clone();
        let key = test_support::keys("acme")
            .key(|k| k.delivery(&test_support::user(user), &first, Channel::Email));
        let mut item = test_support::key_map(&key);
        item.insert(
            "state".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("sending".into()),
        );
        item.insert(
            "notifications".into(),
            aws_sdk_dynamodb::types::AttributeValue::L(vec![]),
        );
        item.insert(
            "at".into(),
            aws_sdk_dynamodb::types::AttributeValue::S(messaging_core::time::rfc3339_millis(
                now - claimed_ago,
            )),
        );
        item.insert(
            "ttl".into(),
            aws_sdk_dynamodb::types::AttributeValue::N("4102444800".into()),
        );
        stack
            .dynamodb
            .put_item()
            .table_name(&stack.table_name)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let later = now + notify_batch::DEFAULT_WINDOW_MILLIS;
    let report = notify_batch::run(&stack.notify, later).await.unwrap();
    // Before: both were taken for sent ("interrupted: never twice") and bob's digest was lost.
    assert_eq!(
        (report.reclaimed, report.emails, report.in_progress),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(sent_emails(&bob).await.len(), 1);
    assert!(sent_emails(&carol).await.is_empty());
    // Carol's stays pending for the run that holds it, and so does the tenant's marker.
    let left: Vec<String> = table
        .pending_of(&acme)
        .await
        .unwrap()
        .iter()
        .map(|n| n.user.to_string())
        .collect();
    assert_eq!(left, ["carol"]);
    assert_eq!(table.tenants_with_pending().await.unwrap(), [acme]);
}
