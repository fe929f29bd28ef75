//! The broadcast function against moto and a recording `@connections` server.

use std::collections::BTreeMap;

use messaging_aws::{Audience, BroadcastJob};
use messaging_core::{ConversationId, Role, TenantId};
use messaging_handlers::broadcast::{run_job, JobError, MAX_ATTEMPTS};
use serde_json::json;
use test_support::{
    connection, connection_key, conversation, frames_for, key_map, keys, Client, TestStack,
};

async fn general_with_connections(stack: &TestStack, connections: usize) -> (Client, Vec<Client>) {
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let create =
        json!({ "type": "CREATE_CONVERSATION", "conversationId": "general", "kind": "general" });
    assert_eq!(stack.send(&owner, &create).await.1["type"], "ACK");
    // Up to 10 sockets per user: the first joins, the later ones are subscribed at connect.
    let mut clients = Vec::new();
    for i in 0..connections {
        let user = format!("user{}", i / 10);
        let client = stack.connect_as("123", &user, Role::User).await;
        if i % 10 == 0 {
            let join = json!({ "type": "JOIN_CONVERSATION", "conversationId": "general" });
            assert_eq!(stack.send(&client, &join).await.1["type"], "ACK");
        }
        clients.push(client);
    }
    stack.pump().await;
    stack.gateway.take();
    (owner, clients)
}

/// Everyone is connected here, so no notification is written: the two Queries are the
/// recipients (subscriptions; one read up to `FIRST_READ`, 250, and a few more for a page of
/// 2,000: `a_page_is_read_in_growing_parts_…`) and the members (to find who is offline). (Queued
/// here; posted by the route function, the same two Queries are route's: see
/// `a_small_conversation_is_posted_by_the_route_function_with_no_queue_hop`.)
#[tokio::test]
async fn a_fan_out_costs_two_queries_recipients_and_members_for_1_10_and_200_connections() {
    let mut measured = BTreeMap::new();
    for n in [1, 10, 200] {
        let stack = TestStack::new().await.queueing_messages();
        let (owner, clients) = general_with_connections(&stack, n).await;
        let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "hi all" } });
        assert_eq!(stack.send(&owner, &message).await.1["type"], "ACK");

        stack.dynamo_requests.reset();
        let responses = stack.pump().await;
        assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
        let deliveries = stack.gateway.take();
        assert_eq!(
            deliveries.len(),
            n,
            "every subscriber but the sender gets it"
        );
        for client in &clients {
            assert_eq!(frames_for(&deliveries, client).len(), 1);
        }
        measured.insert(n, stack.dynamo_requests.snapshot());
    }
    eprintln!("DynamoDB requests of one fan-out, by recipients: {measured:?}");
    for (n, requests) in &measured {
        assert_eq!(
            requests,
            &BTreeMap::from([("Query".to_owned(), 2)]),
            "N = {n}"
        );
    }
}

#[tokio::test]
async fn a_retryable_failure_is_retried_for_that_recipient_only() {
    let stack = TestStack::new().await;
    let (owner, clients) = general_with_connections(&stack, 3).await;
    // Three 500s outlast the SDK's own three attempts, so the job re-queues that recipient.
    stack.gateway.fail(clients[1].connection.as_str(), 3);
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "retry me" } });
    stack.send(&owner, &message).await;
    let responses = stack.pump().await;
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
    let posts = stack.gateway.take();
    for client in &clients {
        assert_eq!(
            frames_for(&posts, client).len(),
            1,
            "exactly once each: {posts:?}"
        );
    }
    assert_eq!(
        posts.last().unwrap().0,
        clients[1].connection.as_str(),
        "the retried one comes last"
    );
    assert_eq!(stack.queued(&stack.queue_url).await, 0);
}

#[tokio::test]
async fn events_of_one_conversation_are_delivered_in_the_order_they_were_accepted() {
    let stack = TestStack::new().await;
    let (owner, clients) = general_with_connections(&stack, 2).await;
    let mut sent = Vec::new();
    for i in 0..12 {
        let text = format!("message {i:02}");
        let frame = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": text } });
        stack.send(&owner, &frame).await;
        sent.push(text);
        if i % 4 == 0 {
            stack
                .send(
                    &owner,
                    &json!({ "type": "TYPING_START", "conversationId": "general" }),
                )
                .await;
            stack
                .send(
                    &owner,
                    &json!({ "type": "TYPING_STOP", "conversationId": "general" }),
                )
                .await;
        }
    }
    stack.pump().await;
    let posts = stack.gateway.take();
    for client in &clients {
        let frames = frames_for(&posts, client);
        let texts: Vec<String> = frames
            .iter()
            .filter(|f| f["type"] == "NEW_MESSAGE")
            .map(|f| f["data"]["content"]["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts, sent);
        // Typing is a state: starts and stops of one batch collapse to the latest (the next
        // test), so each client sees some of the three pairs, ending stopped.
        let typing: Vec<&str> = frames
            .iter()
            .filter_map(|f| f["type"].as_str().filter(|t| t.starts_with("TYPING")))
            .collect();
        assert!(!typing.is_empty() && typing.len() <= 6, "{typing:?}");
        assert_eq!(typing.last(), Some(&"TYPING_STOP"), "{typing:?}");
    }
}

#[tokio::test]
async fn typing_churn_in_one_batch_reaches_each_member_as_its_latest_state_in_one_post() {
    let stack = TestStack::new().await;
    let (owner, clients) = general_with_connections(&stack, 3).await;
    let typing = |t: &str| json!({ "type": t, "conversationId": "general" });
    for _ in 0..4 {
        stack.send(&owner, &typing("TYPING_START")).await;
        stack.send(&owner, &typing("TYPING_STOP")).await;
    }
    stack.send(&owner, &typing("TYPING_START")).await;
    // Nine typing events queued in the conversation's group: one receive, one batch.
    let event = stack.events.receive(0).await.unwrap().expect("the batch");
    assert_eq!(event.records.len(), 9);
    let response = messaging_handlers::broadcast::handle(&stack.broadcast, event.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "every job done, the skipped included"
    );
    stack.events.complete(&event, &response).await.unwrap();
    assert_eq!(
        stack.queued(&stack.queue_url).await,
        0,
        "the skipped jobs are deleted too"
    );
    let posts = stack.gateway.take();
    for client in &clients {
        let frames = frames_for(&posts, client);
        let kinds: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
        assert_eq!(
            kinds,
            ["TYPING_START"],
            "{}: the latest state, once",
            client.connection
        );
    }
    assert_eq!(posts.len(), clients.len(), "one post per member, not nine");
}

#[tokio::test]
async fn a_job_still_failing_after_the_last_attempt_goes_back_to_sqs() {
    let stack = TestStack::new().await;
    let (_, clients) = general_with_connections(&stack, 1).await;
    stack.gateway.fail(clients[0].connection.as_str(), 10);
    let mut job = BroadcastJob::new(
        "event-1",
        TenantId::parse("123").unwrap(),
        Audience::Subscribers(ConversationId::parse("general").unwrap()),
        r#"{"type":"PRESENCE","userId":"owner","status":"online"}"#.into(),
    );
    job.attempt = MAX_ATTEMPTS - 1;
    let result = run_job(&stack.broadcast, &job).await;
    assert!(matches!(result, Err(JobError::Exhausted(1))), "{result:?}");
}

#[tokio::test]
async fn a_malformed_job_goes_to_the_dead_letter_queue_without_holding_up_its_conversation() {
    let stack = TestStack::new().await;
    let (owner, clients) = general_with_connections(&stack, 1).await;
    // Poison in the conversation's own message group, ahead of a good job.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.queue_url)
        .message_body("this is not a job")
        .message_group_id("123#general")
        .message_deduplication_id("poison")
        .send()
        .await
        .unwrap();
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "fine" } });
    stack.send(&owner, &message).await;

    let responses = stack.pump().await;
    assert!(
        responses.iter().all(|r| r.batch_item_failures.is_empty()),
        "{responses:?}"
    );
    assert_eq!(
        frames_for(&stack.gateway.take(), &clients[0]).len(),
        1,
        "the good job behind it is delivered"
    );
    assert_eq!(stack.queued(&stack.queue_url).await, 0);
    let dead = stack
        .sqs
        .receive_message()
        .queue_url(&stack.dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some("this is not a job"));
}

#[tokio::test]
async fn a_passing_failure_returns_the_job_and_the_rest_of_its_group_to_sqs() {
    let stack = TestStack::new().await.queueing_messages();
    let (owner, _) = general_with_connections(&stack, 1).await;
    for text in ["first", "second"] {
        let frame = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": text } });
        stack.send(&owner, &frame).await;
    }
    let event = stack.events.receive(0).await.unwrap().expect("a batch");
    assert_eq!(event.records.len(), 2);
    // The table disappears: reading recipients fails for a passing reason (as a throttle would).
    stack
        .dynamodb
        .delete_table()
        .table_name(&stack.table_name)
        .send()
        .await
        .unwrap();
    let response = messaging_handlers::broadcast::handle(&stack.broadcast, event.clone()).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let ids: Vec<_> = event
        .records
        .iter()
        .map(|r| r.message_id.clone().unwrap())
        .collect();
    assert_eq!(
        failed, ids,
        "the failed job and every later job of its group"
    );
}

#[tokio::test]
async fn an_expired_typing_job_is_dropped_unsent() {
    let stack = TestStack::new().await;
    general_with_connections(&stack, 2).await;
    let mut job = BroadcastJob::new(
        "event-1",
        TenantId::parse("123").unwrap(),
        Audience::Subscribers(ConversationId::parse("general").unwrap()),
        r#"{"type":"PRESENCE","userId":"owner","status":"online"}"#.into(),
    );
    job.expires_at = Some(messaging_core::time::now_millis() - 1);
    let report = run_job(&stack.broadcast, &job).await.unwrap();
    assert!(report.expired);
    assert!(stack.gateway.posts().is_empty());
}

#[tokio::test]
async fn an_orphaned_subscription_is_removed_on_410_even_without_its_connection_record() {
    let stack = TestStack::new().await;
    let (owner, clients) = general_with_connections(&stack, 2).await;
    let orphan = clients[0].connection.as_str().to_owned();
    // A removal that stopped half-way: the registry item is gone, the subscription is not.
    stack
        .dynamodb
        .delete_item()
        .table_name(&stack.table_name)
        .set_key(Some(key_map(&connection_key(&orphan))))
        .send()
        .await
        .unwrap();
    stack.gateway.mark_gone(&orphan);
    let message =
        json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "x" } });
    stack.send(&owner, &message).await;
    stack.pump().await;
    assert_eq!(
        frames_for(&stack.gateway.take(), &clients[1]).len(),
        1,
        "the live one still receives"
    );
    let items = stack.snapshot().await;
    assert!(
        !items.contains_key(&keys("123").name(|k| k.subscription(
            &conversation("general"),
            0,
            &connection(&orphan)
        ))),
        "orphan subscription left"
    );
}

#[tokio::test]
async fn a_redelivered_job_notifies_nobody_twice() {
    let stack = TestStack::new().await.queueing_messages();
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    let create = json!({ "type": "CREATE_CONVERSATION", "conversationId": "deal", "kind": "project", "members": ["bob", "carol"] });
    assert_eq!(stack.send(&owner, &create).await.1["type"], "ACK");
    stack.pump().await;
    stack.gateway.take();
    let chat = json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "content": { "text": "@carol and bob: signed" } });
    assert_eq!(stack.send(&owner, &chat).await.1["type"], "ACK");
    // The same batch twice, as SQS redelivers it when a run's deletes did not go through.
    let event = stack
        .events
        .receive(0)
        .await
        .unwrap()
        .expect("the message's job");
    for _ in 0..2 {
        let response = messaging_handlers::broadcast::handle(&stack.broadcast, event.clone()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    let items = stack.snapshot().await;
    for user in ["bob", "carol"] {
        let prefix = keys("acme").prefix(|k| k.notifications_prefix(&test_support::user(user)));
        let written = items.keys().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(written, 1, "{user} was notified {written} times");
    }
    let live_mentions = frames_for(&stack.gateway.posts(), &carol)
        .into_iter()
        .filter(|f| f["type"] == "NOTIFICATION")
        .count();
    assert_eq!(live_mentions, 1, "carol's mention was pushed twice");
}

/// The owner sends to `general`; its job runs with two posts at a time, 200 ms each, and
/// 500 ms left. The job's event (not yet completed) and the run's report.
async fn send_and_run_out_of_time(
    stack: &mut TestStack,
    owner: &Client,
) -> (
    aws_lambda_events::sqs::SqsEvent,
    messaging_handlers::broadcast::JobReport,
) {
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "all hands" } });
    assert_eq!(stack.send(owner, &message).await.1["type"], "ACK");
    let event = stack
        .events
        .receive(0)
        .await
        .unwrap()
        .expect("the message's job");
    let job: BroadcastJob =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    stack.broadcast.concurrency = 2;
    stack.gateway.slow(std::time::Duration::from_millis(200));
    let cutoff = messaging_core::time::now_millis() + 500;
    let report = messaging_handlers::broadcast::run_job_until(&stack.broadcast, &job, Some(cutoff))
        .await
        .unwrap();
    (event, report)
}

/// Completes the cut-short run's event, lets the queue deliver the rest at full speed, and
/// checks every client got the message exactly once.
async fn settle_each_once(
    stack: &TestStack,
    event: &aws_lambda_events::sqs::SqsEvent,
    clients: &[Client],
) {
    stack
        .events
        .complete(event, &Default::default())
        .await
        .unwrap();
    stack.gateway.slow(std::time::Duration::ZERO);
    stack.pump().await;
    let posts = stack.gateway.take();
    for client in clients {
        let frames = frames_for(&posts, client);
        assert_eq!(frames.len(), 1, "{} got {frames:?}", client.connection);
    }
}

#[tokio::test]
async fn a_run_out_of_time_hands_the_rest_to_a_continuation_and_nobody_gets_two() {
    let mut stack = TestStack::new().await.queueing_messages();
    let (owner, clients) = general_with_connections(&stack, 12).await;
    // Two posts at a time, 200 ms each, and 500 ms left: some recipients wait for the next run.
    let (event, report) = send_and_run_out_of_time(&mut stack, &owner).await;
    assert!(report.continued > 0, "{report:?}");
    assert_eq!(report.delivered + report.continued, 12, "{report:?}");
    settle_each_once(&stack, &event, &clients).await;
}

#[tokio::test]
async fn a_conversation_larger_than_a_run_is_delivered_page_by_page_each_connection_once() {
    let mut stack = TestStack::new().await.queueing_messages();
    let (owner, clients) = general_with_connections(&stack, 11).await;
    // Three connections a run (the deployed page is 2,000): 12 sockets take several runs.
    stack.broadcast.fanout_per_run = 3;
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "all hands" } });
    assert_eq!(stack.send(&owner, &message).await.1["type"], "ACK");
    let mut runs = 0;
    let mut pages = 0;
    while let Some(event) = stack.events.receive(0).await.unwrap() {
        for record in &event.records {
            let job: BroadcastJob = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
            let report = messaging_handlers::broadcast::run_job(&stack.broadcast, &job)
                .await
                .unwrap();
            assert!(report.recipients <= 3, "{report:?}");
            runs += 1;
            pages += usize::from(report.next_page);
        }
        stack
            .events
            .complete(&event, &Default::default())
            .await
            .unwrap();
    }
    assert!(
        runs >= 4 && pages == runs - 1,
        "{runs} runs, {pages} next pages"
    );
    let posts = stack.gateway.take();
    for client in &clients {
        let frames = frames_for(&posts, client);
        let messages = frames.iter().filter(|f| f["type"] == "NEW_MESSAGE").count();
        assert_eq!(messages, 1, "{} got {frames:?}", client.connection);
    }
}

/// A run reads its page in parts of growing size (here 2, 4, then the last 4 of a page of
/// 10), posting each part while the next is read; the next page is queued once the page is
/// read.
#[tokio::test]
async fn a_page_is_read_in_growing_parts_and_each_connection_posted_once() {
    let mut stack = TestStack::new().await.queueing_messages();
    let (owner, clients) = general_with_connections(&stack, 12).await;
    stack.broadcast.fanout_per_run = 10;
    stack.broadcast.first_read = 2;
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "in parts" } });
    assert_eq!(stack.send(&owner, &message).await.1["type"], "ACK");
    let mut reports = Vec::new();
    while let Some(event) = stack.events.receive(0).await.unwrap() {
        for record in &event.records {
            let job: BroadcastJob = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
            reports.push(run_job(&stack.broadcast, &job).await.unwrap());
        }
        stack
            .events
            .complete(&event, &Default::default())
            .await
            .unwrap();
    }
    // 13 subscriptions (the sender's is skipped): 2 + 4 + 4, then the last 3 in a next page.
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0].query_pages, 3, "{reports:?}");
    assert!(reports[0].next_page, "{reports:?}");
    assert!(
        !reports[1].next_page && !reports[1].remainder,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.delivered).sum::<usize>(),
        12,
        "{reports:?}"
    );
    let posts = stack.gateway.take();
    for client in &clients {
        let frames = frames_for(&posts, client);
        assert_eq!(frames.len(), 1, "{} got {frames:?}", client.connection);
    }
}

/// Out of time before its page is read and posted, a run hands the rest of the page, from
/// the first subscriber it did not reach, to a new job; nobody is posted to twice.
#[tokio::test]
async fn a_run_out_of_time_mid_page_hands_the_rest_to_a_new_job_and_nobody_gets_two() {
    let mut stack = TestStack::new().await.queueing_messages();
    // 21 subscriptions, read 2, 4, 8, …: the third read finds more after it.
    let (owner, clients) = general_with_connections(&stack, 20).await;
    stack.broadcast.first_read = 2;
    // Two posts at a time, 200 ms each, and 500 ms left: the first two reads' six posts
    // start in time, the third read's do not.
    let (event, report) = send_and_run_out_of_time(&mut stack, &owner).await;
    assert!(report.remainder, "{report:?}");
    assert_eq!(report.continued, 0, "{report:?}");
    assert!(
        (1..20).contains(&report.delivered),
        "some, not all: {report:?}"
    );
    settle_each_once(&stack, &event, &clients).await;
}

/// The default stack: the route function posts a new message to a conversation of up to
/// `DirectFanout` connections itself, before the ACK; nothing is queued, broadcast never runs.
#[tokio::test]
async fn a_small_conversation_is_posted_by_the_route_function_with_no_queue_hop() {
    let stack = TestStack::new().await;
    assert_eq!(
        stack.route.direct_fanout,
        messaging_handlers::config::DEFAULT_DIRECT_FANOUT
    );
    let (owner, clients) = general_with_connections(&stack, 10).await;
    stack.dynamo_requests.reset();
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general",
        "clientMessageId": "c-1", "content": { "text": "straight to you" } });
    let (_, ack) = stack.send(&owner, &message).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    // Delivered before the ACK came back, by route itself.
    let posts = stack.gateway.take();
    for client in &clients {
        let frames = frames_for(&posts, client);
        assert_eq!(frames.len(), 1, "{}", client.connection);
        assert_eq!(frames[0]["data"]["seq"], ack["seq"]);
    }
    assert!(
        frames_for(&posts, &owner).is_empty(),
        "not to the sender's socket"
    );
    let requests = stack.dynamo_requests.snapshot();
    assert_eq!(
        requests.get("Query"),
        Some(&2),
        "recipients and members, as broadcast would: {requests:?}"
    );
    // Nothing was queued: broadcast has nothing to run.
    assert!(stack.pump().await.is_empty(), "no job queued");
    assert!(stack.gateway.take().is_empty());
}

/// A conversation with more connections than `DirectFanout`: route posts the first page and
/// queues the rest as a next-page job; each connection gets the message once.
#[tokio::test]
async fn beyond_the_direct_fan_out_route_posts_one_page_and_broadcast_the_rest_each_once() {
    let mut stack = TestStack::new().await;
    stack.route.direct_fanout = 5;
    let (owner, clients) = general_with_connections(&stack, 12).await;
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "big room" } });
    assert_eq!(stack.send(&owner, &message).await.1["type"], "ACK");
    let by_route = stack.gateway.take();
    // The first page is 5 subscriptions, the sender's own among them or not.
    assert!(
        (4..=5).contains(&by_route.len()),
        "route posted its page only: {}",
        by_route.len()
    );
    let responses = stack.pump().await;
    assert!(!responses.is_empty(), "the rest was queued");
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
    let all: Vec<(String, String)> = by_route.into_iter().chain(stack.gateway.take()).collect();
    for client in &clients {
        assert_eq!(frames_for(&all, client).len(), 1, "{}", client.connection);
    }
    assert!(frames_for(&all, &owner).is_empty());
}

#[tokio::test]
async fn a_burst_of_events_in_one_batch_reaches_each_connection_as_one_frame_in_order() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let create =
        json!({ "type": "CREATE_CONVERSATION", "conversationId": "general", "kind": "general" });
    assert_eq!(stack.send(&owner, &create).await.1["type"], "ACK");
    let bob = stack.connect_as("123", "bob", Role::User).await;
    let carol = stack.connect_as("123", "carol", Role::User).await;
    for who in [&bob, &carol] {
        let join = json!({ "type": "JOIN_CONVERSATION", "conversationId": "general" });
        assert_eq!(stack.send(who, &join).await.1["type"], "ACK");
    }
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "general", "content": { "text": "lunch?" } });
    let seq = stack.send(&owner, &message).await.1["seq"]
        .as_u64()
        .unwrap();
    stack.pump().await;
    stack.gateway.take();
    // Four events queued in the conversation's group, one batch.
    for emoji in ["👍", "🍕"] {
        let react = json!({ "type": "ADD_REACTION", "conversationId": "general", "seq": seq, "emoji": emoji });
        assert_eq!(stack.send(&bob, &react).await.1["type"], "ACK");
    }
    let read = json!({ "type": "MARK_READ", "conversationId": "general", "seq": seq });
    assert_eq!(stack.send(&carol, &read).await.1["type"], "ACK");
    let typing = json!({ "type": "TYPING_START", "conversationId": "general" });
    stack.send(&owner, &typing).await;
    let responses = stack.pump().await;
    assert_eq!(responses.len(), 1, "one batch");
    assert!(responses[0].batch_item_failures.is_empty());
    let posts = stack.gateway.take();
    let kinds = |client: &Client| -> Vec<String> {
        frames_for(&posts, client)
            .iter()
            .map(|f| f["type"].as_str().unwrap().to_owned())
            .collect()
    };
    // Each connection: one post, its events in the order accepted, its own left out.
    for (client, expected) in [
        (
            &owner,
            vec!["REACTIONS_CHANGED", "REACTIONS_CHANGED", "READ_RECEIPT"],
        ),
        (&bob, vec!["READ_RECEIPT", "TYPING_START"]),
        (
            &carol,
            vec!["REACTIONS_CHANGED", "REACTIONS_CHANGED", "TYPING_START"],
        ),
    ] {
        let raw: Vec<&(String, String)> = posts
            .iter()
            .filter(|(c, _)| c == client.connection.as_str())
            .collect();
        assert_eq!(raw.len(), 1, "{}: one frame", client.connection);
        assert!(raw[0].1.starts_with(r#"{"type":"BATCH""#), "{}", raw[0].1);
        assert_eq!(kinds(client), expected, "{}", client.connection);
    }
    // 4 events for 3 connections (less each one's own): 8 deliveries in 3 posts.
    assert_eq!(posts.len(), 3);
    let last = frames_for(&posts, &carol);
    assert_eq!(
        last[1]["reactions"]["🍕"],
        json!(["bob"]),
        "the later reaction state last"
    );
}
