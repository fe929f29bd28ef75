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
        let pending = table.pending_notifications().await.unwrap().len();
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
