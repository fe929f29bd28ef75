//! Faults: AWS misbehaving under the functions (a fault-injecting proxy in front of moto:
//! throttling, 500s, stalls, lost answers, an endpoint restarting), API Gateway's
//! `@connections` misbehaving (410 / 429 / 500 / slow), the route function dying mid-post,
//! broadcast dying mid-batch, a batch delivered twice, a job failing until the dead-letter
//! queue. The broadcast queue's own cases run on a stack that queues every message
//! (`DirectFanout = 0`); the others on the default, where route posts small fan-outs itself.
//!
//! Each case checks the same things: every message the client was told is accepted is stored
//! once and reaches every recipient; nothing is stored twice; no recipient's stream holds an
//! event twice (clients drop a frame whose `(conversationId, seq)` they already have, the
//! documented rule, so a re-post after a crash is counted but not a duplicate to the user);
//! only failed work is retried; a client whose send failed was told, retryably. Each writes
//! its row of the table in docs/faults.md to `target/test-output/faults/`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use messaging_core::{ConversationId, Role, UserId};
use serde_json::{json, Value};
use test_support::{conversation, frames_for, keys, Client, Fault, FaultProxy, TestStack};

/// The functions' own limit (template.yaml, `Globals.Function.Timeout`): a handler that has
/// not answered by then is killed by Lambda, and its client gets no answer of ours.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

struct Deal {
    stack: TestStack,
    proxy: FaultProxy,
    owner: Client,
    bob: Client,
    carol: Client,
}

/// The jobs in the broadcast dead-letter queue.
async fn dead_letters(d: &Deal) -> Vec<aws_sdk_sqs::types::Message> {
    d.stack
        .sqs
        .receive_message()
        .queue_url(&d.stack.dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

async fn deal() -> Deal {
    deal_on(TestStack::with_fault_proxy().await).await
}

/// The deal on a stack whose route function queues every message for broadcast.
async fn queued_deal() -> Deal {
    let (stack, proxy) = TestStack::with_fault_proxy().await;
    deal_on((stack.queueing_messages(), proxy)).await
}

async fn deal_on((stack, proxy): (TestStack, FaultProxy)) -> Deal {
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    let create = json!({ "type": "CREATE_CONVERSATION", "conversationId": "deal", "kind": "project", "members": ["bob", "carol"] });
    assert_eq!(stack.send(&owner, &create).await.1["type"], "ACK");
    stack.pump().await;
    stack.gateway.take();
    Deal {
        stack,
        proxy,
        owner,
        bob,
        carol,
    }
}

fn chat(id: &str, text: &str) -> Value {
    json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "clientMessageId": id, "content": { "text": text } })
}

/// Sends under the function's time limit, as Lambda would run it.
async fn send(stack: &TestStack, client: &Client, frame: &Value) -> Value {
    tokio::time::timeout(FUNCTION_TIMEOUT, stack.send(client, frame))
        .await
        .unwrap_or_else(|_| panic!("the function outlived its {FUNCTION_TIMEOUT:?} timeout: Lambda would kill it and the client hear nothing"))
        .1
}

/// The texts of the messages stored in `deal`, by seq (voids, the numbers a failed send
/// gave up, are not messages: [`voids`]).
async fn stored(stack: &TestStack) -> BTreeMap<u64, String> {
    let items = stack.snapshot().await;
    let deal = conversation("deal");
    (1..50)
        .filter_map(|seq| {
            let key = keys("acme").name(|k| k.message(&deal, seq));
            items.get(&key).filter(|item| !is_void(item)).map(|item| {
                let text = item
                    .get("content")
                    .and_then(|c| c.as_m().ok())
                    .and_then(|c| c.get("text"))
                    .and_then(|t| t.as_s().ok())
                    .cloned()
                    .unwrap_or_else(|| format!("{item:?}"));
                (seq, text)
            })
        })
        .collect()
}

fn is_void(item: &BTreeMap<String, AttributeValue>) -> bool {
    item.get("senderId")
        .and_then(|s| s.as_s().ok())
        .map(String::as_str)
        == Some(UserId::SYSTEM)
}

/// The seqs of `deal` that hold a void.
async fn voids(stack: &TestStack) -> Vec<u64> {
    let items = stack.snapshot().await;
    let deal = conversation("deal");
    (1..50)
        .filter(|&seq| {
            let key = keys("acme").name(|k| k.message(&deal, seq));
            items.get(&key).is_some_and(is_void)
        })
        .collect()
}

/// What `client` received: (raw NEW_MESSAGE posts, distinct seqs).
fn received(posts: &[(String, String)], client: &Client) -> (usize, BTreeSet<u64>) {
    let news: Vec<Value> = frames_for(posts, client)
        .into_iter()
        .filter(|f| f["type"] == "NEW_MESSAGE")
        .collect();
    let seqs = news
        .iter()
        .filter_map(|f| f["data"]["seq"].as_u64())
        .collect();
    (news.len(), seqs)
}

/// One row of the fault table.
struct Row<'a> {
    case: &'a str,
    accepted: usize,
    stored: usize,
    delivered: String,
    duplicates: String,
    retried: String,
}

fn record(row: Row<'_>) {
    let line = format!(
        "| {} | {} | {} | {} | {} | {} |",
        row.case, row.accepted, row.stored, row.delivered, row.duplicates, row.retried
    );
    eprintln!("{line}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/faults");
    std::fs::create_dir_all(&dir).unwrap();
    let name: String = row
        .case
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::fs::write(dir.join(format!("{name}.md")), line + "\n").unwrap();
}

/// Delivery to bob and carol after pumping: each has every seq in `seqs` exactly once.
async fn delivered_once_each(d: &Deal, seqs: &[u64]) -> (usize, usize) {
    d.stack.pump().await;
    let posts = d.stack.gateway.take();
    let want: BTreeSet<u64> = seqs.iter().copied().collect();
    let mut raw = 0;
    let mut distinct = 0;
    for client in [&d.bob, &d.carol] {
        let (count, got) = received(&posts, client);
        assert_eq!(got, want, "{} received {got:?}", client.principal.user);
        assert_eq!(
            count,
            got.len(),
            "{} received a message twice",
            client.principal.user
        );
        raw += count;
        distinct += got.len();
    }
    (raw, distinct)
}

/// One message accepted: stored once, and bob and carol get it once each; the row recorded.
/// Sends `text` as m1 and expects the retryable UNAVAILABLE the fault gives; the error.
async fn told_unavailable(d: &Deal, text: &str) -> Value {
    let error = send(&d.stack, &d.owner, &chat("m1", text)).await;
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(error["code"], "UNAVAILABLE", "{error}");
    assert_eq!(error["retryable"], true, "{error}");
    error
}

/// The client's resend of m1 (same clientMessageId) is acknowledged as the stored message.
async fn resend_acked_as_duplicate(d: &Deal, text: &str) {
    let ack = send(&d.stack, &d.owner, &chat("m1", text)).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    assert_eq!(ack["duplicate"], true, "{ack}");
}

async fn one_message_settled(d: &Deal, case: &str, retried: &str) {
    let stored = stored(&d.stack).await;
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    let seqs: Vec<u64> = stored.keys().copied().collect();
    let (raw, distinct) = delivered_once_each(d, &seqs).await;
    record(Row {
        case,
        accepted: 1,
        stored: 1,
        delivered: format!("{distinct}/2"),
        duplicates: format!("0 stored, {} posts", raw - distinct),
        retried: retried.into(),
    });
}

#[tokio::test]
async fn throttled_dynamodb_writes_are_retried_by_the_sdk_and_the_message_stored_once() {
    let d = deal().await;
    d.proxy.inject("PutItem", Fault::Throttle, 2);
    let ack = send(&d.stack, &d.owner, &chat("m1", "throttled twice")).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    assert_ne!(ack["duplicate"], true, "{ack}");
    assert_eq!(d.proxy.count("PutItem", Some(Fault::Throttle)), 2);
    one_message_settled(
        &d,
        "DynamoDB throttles the message write twice",
        "the write, 2× by the SDK",
    )
    .await;
}

#[tokio::test]
async fn a_write_failing_past_the_sdk_retries_is_refused_retryably_and_the_resend_stores_once() {
    let d = deal().await;
    d.proxy.inject("PutItem", Fault::ServerError, 3);
    let error = send(&d.stack, &d.owner, &chat("m1", "resend me")).await;
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(error["retryable"], true, "{error}");
    assert!(stored(&d.stack).await.is_empty(), "nothing half-written");
    // The number the failed send took holds a void: the conversation keeps no hole.
    assert_eq!(voids(&d.stack).await, [1]);
    assert_eq!(
        d.stack.queued(&d.stack.queue_url).await,
        0,
        "nothing queued"
    );
    // The client resends the same frame, as the ERROR says it may.
    let ack = send(&d.stack, &d.owner, &chat("m1", "resend me")).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    one_message_settled(
        &d,
        "DynamoDB answers 500 to every attempt of the write",
        "3 SDK attempts, then the client's resend (told: retryable ERROR); the failed send's number holds a void, the resend takes the next",
    )
    .await;
}

#[tokio::test]
async fn a_write_applied_whose_answer_was_lost_is_stored_once_and_delivered_once() {
    let d = deal().await;
    d.proxy.inject("PutItem", Fault::LoseResponse, 1);
    let ack = send(&d.stack, &d.owner, &chat("m1", "the answer was lost")).await;
    // The SDK retried a write that had been applied: the message's idempotency item makes
    // the retry a duplicate of it, and the ACK is the first copy's.
    assert_eq!(ack["type"], "ACK", "{ack}");
    assert_eq!(ack["seq"], 1);
    one_message_settled(
        &d,
        "the write is applied but its answer lost (connection dropped)",
        "the write, once by the SDK (answered from the idempotency item)",
    )
    .await;
}

#[tokio::test]
async fn a_stalled_call_is_abandoned_and_retried_within_the_functions_time() {
    let d = deal().await;
    // Longer than the function may live: without the SDK timeouts the handler would wait it
    // out and Lambda would kill it, leaving the client with no answer.
    d.proxy
        .inject("PutItem", Fault::Stall(Duration::from_secs(20)), 1);
    let started = Instant::now();
    let ack = send(&d.stack, &d.owner, &chat("m1", "stalled")).await;
    eprintln!("answered after {:?}", started.elapsed());
    assert_eq!(ack["type"], "ACK", "{ack}");
    one_message_settled(
        &d,
        "a DynamoDB call stalls for 20 s (longer than the function lives)",
        "the write, after the 3 s attempt timeout",
    )
    .await;
}

#[tokio::test]
async fn a_queue_refusing_the_job_tells_the_client_and_the_resend_delivers_once() {
    let d = queued_deal().await;
    d.proxy.inject("SendMessage", Fault::ServerError, 3);
    let error = told_unavailable(&d, "queue down").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("stored as seq 1 but not delivered live"),
        "{error}"
    );
    assert_eq!(
        stored(&d.stack).await.len(),
        1,
        "stored, as the client was told"
    );
    resend_acked_as_duplicate(&d, "queue down").await;
    one_message_settled(
        &d,
        "SQS answers 500 to every attempt to queue the fan-out",
        "3 SDK attempts, then the client's resend (told: UNAVAILABLE, stored as seq 1)",
    )
    .await;
}

/// Route posts small fan-outs itself; when it cannot read the recipients it queues the job,
/// and when the queue refuses too the client is told, and its resend delivers.
#[tokio::test]
async fn recipients_unreadable_and_the_queue_refusing_tell_the_client_and_the_resend_delivers_once()
{
    let d = deal().await;
    d.proxy.inject("Query", Fault::ServerError, 3);
    d.proxy.inject("SendMessage", Fault::ServerError, 3);
    told_unavailable(&d, "nowhere to go").await;
    assert!(d.stack.gateway.posts().is_empty(), "nobody was posted to");
    resend_acked_as_duplicate(&d, "nowhere to go").await;
    one_message_settled(
        &d,
        "route cannot read the recipients (Query 500 × 3) and SQS refuses the job (500 × 3)",
        "3 SDK attempts each, then the client's resend (told: UNAVAILABLE, stored as seq 1), posted by route",
    )
    .await;
}

/// Beyond its direct fan-out, route queues the next page of recipients before posting its own
/// page: when SQS refuses that job, nobody has been posted to, the client is told, and the
/// resend delivers to everyone once (route its page, the broadcast function the next).
#[tokio::test]
async fn a_next_page_the_queue_refuses_posts_nothing_and_the_resend_delivers_once() {
    let mut d = deal().await;
    // Pages of two connections: the owner's own and one member's; the other member is next.
    d.stack.route.direct_fanout = 2;
    d.proxy.inject("SendMessage", Fault::ServerError, 3);
    told_unavailable(&d, "two pages").await;
    assert!(d.stack.gateway.posts().is_empty(), "nobody was posted to");
    resend_acked_as_duplicate(&d, "two pages").await;
    one_message_settled(
        &d,
        "SQS refuses the next page of a conversation beyond the direct fan-out (500 × 3)",
        "3 SDK attempts, then the client's resend (told: UNAVAILABLE, stored as seq 1): route posts its page, broadcast the next",
    )
    .await;
}

/// The broadcast function reads a page of recipients in parts, posting each while it reads
/// the next; when a later read fails past the SDK's retries, those already reached stay
/// reached and the rest of the page goes to a new job, which reads it again: nobody is posted
/// to twice, nobody is missed.
#[tokio::test]
async fn a_later_read_of_a_page_failing_hands_the_rest_to_a_new_job_and_nobody_gets_two() {
    let mut d = queued_deal().await;
    // Reads of one subscription, then two: the second read fails (500 × 3).
    d.stack.broadcast.first_read = 1;
    let ack = send(&d.stack, &d.owner, &chat("m1", "read in parts")).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    d.proxy.inject_after("Query", 1, Fault::ServerError, 3);
    let event = d.stack.events.receive(0).await.unwrap().expect("the job");
    let job: messaging_aws::BroadcastJob =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    let report = messaging_handlers::broadcast::run_job(&d.stack.broadcast, &job)
        .await
        .expect("a failed later read does not fail the run");
    assert!(report.remainder, "{report:?}");
    assert!(!report.next_page, "{report:?}");
    assert_eq!(report.query_pages, 1, "{report:?}");
    assert_eq!(d.proxy.count("Query", Some(Fault::ServerError)), 3);
    d.stack
        .events
        .complete(&event, &Default::default())
        .await
        .unwrap();
    one_message_settled(
        &d,
        "broadcast cannot read the rest of its page (its second Query 500 × 3)",
        "3 SDK attempts, then a job for the rest of the page, from after the last subscriber read",
    )
    .await;
}

/// The route function dies after posting to some recipients (Lambda's timeout, a crash):
/// the client hears nothing and resends; the resend delivers to everyone again, and those
/// already reached drop the copy by its seq.
#[tokio::test]
async fn route_killed_mid_post_and_the_resend_reaches_everyone() {
    let mut d = deal().await;
    // One post at a time, 300 ms each: the run dies as soon as the first has landed.
    d.stack.route.fanout_concurrency = 1;
    d.stack.gateway.slow(Duration::from_millis(300));
    let first_post = async {
        while d.stack.gateway.posts().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let frame = chat("m1", "half way");
    tokio::select! {
        _ = d.stack.send(&d.owner, &frame) => panic!("the run was to die mid-post"),
        () = first_post => {}
    }
    // A post already on the wire when the run died may still land (API Gateway does not
    // know the sender died): wait it out, then count who the dead run reached.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reached = d.stack.gateway.posts().len();
    assert!((1..=2).contains(&reached), "{reached}");
    d.stack.gateway.slow(Duration::ZERO);
    resend_acked_as_duplicate(&d, "half way").await;
    assert!(
        d.stack.pump().await.is_empty(),
        "route posted; nothing queued"
    );
    let posts = d.stack.gateway.take();
    let mut raw = 0;
    for client in [&d.bob, &d.carol] {
        let (count, seqs) = received(&posts, client);
        assert_eq!(seqs, BTreeSet::from([1]), "{}", client.connection);
        raw += count;
    }
    assert_eq!(
        raw,
        reached + 2,
        "those reached before the crash got it twice"
    );
    assert_eq!(stored(&d.stack).await.len(), 1);
    record(Row {
        case:
            "route killed mid-post (after its first post of two, one at a time), the client resends",
        accepted: 1,
        stored: 1,
        delivered: "2/2".into(),
        duplicates: format!(
            "0 stored; {} re-posted, dropped by the clients' (conversationId, seq) rule",
            raw - 2
        ),
        retried: "the client's resend (same clientMessageId): delivered again".into(),
    });
}

#[tokio::test]
async fn an_endpoint_restarting_mid_run_loses_no_accepted_message() {
    let d = deal().await;
    let mut acked = Vec::new();
    let mut told = 0;
    for i in 0..6 {
        if i == 2 {
            // The endpoint goes away for the next several calls, whatever they are.
            d.proxy.inject("*", Fault::Refuse, 4);
        }
        let id = format!("m{i}");
        let answer = send(&d.stack, &d.owner, &chat(&id, &format!("message {i}"))).await;
        match answer["type"].as_str() {
            Some("ACK") => acked.push(id),
            _ => {
                assert_eq!(answer["retryable"], true, "{answer}");
                told += 1;
                // Resent, as the client is told it may.
                let again = send(&d.stack, &d.owner, &chat(&id, &format!("message {i}"))).await;
                assert_eq!(again["type"], "ACK", "{again}");
                acked.push(id);
            }
        }
    }
    let refused = d.proxy.count("", Some(Fault::Refuse));
    assert_eq!(refused, 4, "{:?}", d.proxy.log());
    let stored = stored(&d.stack).await;
    assert_eq!(stored.len(), 6, "{stored:?}");
    let seqs: Vec<u64> = stored.keys().copied().collect();
    let (raw, distinct) = delivered_once_each(&d, &seqs).await;
    record(Row {
        case: "the AWS endpoint restarts: 4 calls refused mid-run",
        accepted: 6,
        stored: stored.len(),
        delivered: format!("{distinct}/12"),
        duplicates: format!("0 stored, {} posts", raw - distinct),
        retried: format!("the refused calls by the SDK; {told} sends resent by the client"),
    });
}

#[tokio::test]
async fn connections_gone_throttled_failing_or_slow_get_each_event_once() {
    let d = deal().await;
    let dave = d.stack.connect_long_ago("acme", "owner", Role::Owner).await;
    let erin = d.stack.connect_as("acme", "bob", Role::User).await;
    let frank = d.stack.connect_as("acme", "carol", Role::User).await;
    // owner's second socket is gone (410); bob's second is throttled 3 times (429, past the
    // SDK's attempts: the run pauses and tries it again); carol's first fails 3 times (500,
    // past the SDK's attempts: a retry job).
    d.stack.gateway.mark_gone(dave.connection.as_str());
    d.stack.gateway.limit(erin.connection.as_str(), 3);
    d.stack.gateway.fail(d.carol.connection.as_str(), 3);
    let ack = send(&d.stack, &d.owner, &chat("m1", "through a bad gateway")).await;
    assert_eq!(ack["type"], "ACK");
    d.stack.pump().await;
    let posts = d.stack.gateway.take();
    for client in [&d.bob, &d.carol, &erin, &frank] {
        let (count, seqs) = received(&posts, client);
        assert_eq!((count, seqs.len()), (1, 1), "{}", client.connection);
    }
    assert!(frames_for(&posts, &dave).is_empty());
    let items = d.stack.snapshot().await;
    let gone = test_support::item_name(&test_support::connection_key(dave.connection.as_str()));
    assert!(!items.contains_key(&gone), "the gone connection is removed");
    // Slow: every post takes 500 ms; the run still delivers each once.
    d.stack.gateway.slow(Duration::from_millis(500));
    let ack = send(&d.stack, &d.owner, &chat("m2", "slowly")).await;
    assert_eq!(ack["type"], "ACK");
    d.stack.pump().await;
    let posts = d.stack.gateway.take();
    for client in [&d.bob, &d.carol, &erin, &frank] {
        let (count, seqs) = received(&posts, client);
        assert_eq!((count, seqs.len()), (1, 1), "{}", client.connection);
    }
    record(Row {
        case: "@connections: 410 for one socket, 429×3 and 500×3 for two, then 500 ms per post",
        accepted: 2,
        stored: stored(&d.stack).await.len(),
        delivered: "8/8 live sockets".into(),
        duplicates: "0 stored, 0 posts".into(),
        retried: "only the 429 socket (by the run itself, after its pause) and the 500 one (a retry job); the 410 socket removed".into(),
    });
}

#[tokio::test]
async fn a_socket_throttled_past_every_attempt_gets_the_event_once_and_nothing_is_dead_lettered() {
    // Posted by route itself (its 3 s budget, then a continuation), and by the broadcast
    // function (every message queued).
    for queued in [false, true] {
        let d = if queued {
            queued_deal().await
        } else {
            deal().await
        };
        // 12 × 429: the job's 4 attempts × the SDK's 3. Before backoff, each attempt spent
        // the SDK's 3 and queued a retry job, and the fourth sent the job to the dead-letter
        // queue: bob never got the message live.
        d.stack.gateway.limit(d.bob.connection.as_str(), 12);
        let ack = send(&d.stack, &d.owner, &chat("m1", "through the throttle")).await;
        assert_eq!(ack["type"], "ACK");
        d.stack.pump().await;
        let posts = d.stack.gateway.take();
        for client in [&d.bob, &d.carol] {
            let (count, seqs) = received(&posts, client);
            assert_eq!(
                (count, seqs.len()),
                (1, 1),
                "queued {queued}: {}",
                client.connection
            );
        }
        let dead = dead_letters(&d).await;
        assert!(
            dead.is_empty(),
            "queued {queued}: throttling sent a job to the DLQ: {dead:?}"
        );
        assert_eq!(stored(&d.stack).await.len(), 1);
    }
    record(Row {
        case: "`@connections`: 429 × 12 for one socket (the job's 4 attempts × the SDK's 3)",
        accepted: 1,
        stored: 1,
        delivered: "2/2, posted by route and by broadcast".into(),
        duplicates: "0 stored, 0 posts".into(),
        retried: "the throttled post, by its run after a jittered pause (then a continuation job, never an attempt); nothing in the DLQ".into(),
    });
}

#[tokio::test]
async fn broadcast_killed_mid_batch_redelivers_and_no_stream_holds_an_event_twice() {
    let d = queued_deal().await;
    for i in 0..3 {
        let ack = send(
            &d.stack,
            &d.owner,
            &chat(&format!("m{i}"), &format!("batch {i}")),
        )
        .await;
        assert_eq!(ack["type"], "ACK");
    }
    // Posts take 300 ms; the sandbox dies 500 ms into the batch (Lambda killed: out of
    // memory, a crash). Its records were not deleted.
    d.stack.gateway.slow(Duration::from_millis(300));
    let event = d.stack.events.receive(0).await.unwrap().expect("the batch");
    let killed = tokio::time::timeout(
        Duration::from_millis(500),
        messaging_handlers::broadcast::handle(&d.stack.broadcast, event.clone()),
    )
    .await;
    assert!(killed.is_err(), "the run was to die mid-batch");
    let before = d.stack.gateway.posts().len();
    assert!(before > 0, "it died after posting some");
    d.stack.gateway.slow(Duration::ZERO);
    // SQS makes the batch visible again after the visibility timeout (here: at once).
    let ids: Vec<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    d.stack.events.release(&event, &ids, 0).await.unwrap();
    d.stack.pump().await;
    let posts = d.stack.gateway.take();
    let mut raw = 0;
    for client in [&d.bob, &d.carol] {
        let (count, seqs) = received(&posts, client);
        assert_eq!(seqs, BTreeSet::from([1, 2, 3]), "{}", client.connection);
        raw += count;
    }
    // Notifications (none here: all are online) and stored messages are keyed, never doubled.
    assert_eq!(stored(&d.stack).await.len(), 3);
    record(Row {
        case: "broadcast killed mid-batch (after some posts), the batch redelivered",
        accepted: 3,
        stored: 3,
        delivered: "6/6".into(),
        duplicates: format!(
            "0 stored; {} of the dead run's posts re-posted, dropped by the clients' (conversationId, seq) rule",
            raw - 6
        ),
        retried: "the whole batch (its records were not deleted)".into(),
    });
}

#[tokio::test]
async fn a_job_failing_every_time_reaches_the_dead_letter_queue_after_max_receives() {
    let d = queued_deal().await;
    let ack = send(&d.stack, &d.owner, &chat("m1", "doomed")).await;
    assert_eq!(ack["type"], "ACK");
    // DynamoDB fails every read of the broadcast (its subscribers, its members).
    d.proxy.inject("Query", Fault::ServerError, u32::MAX);
    let mut receives = 0;
    while let Some(event) = d.stack.events.receive(0).await.unwrap() {
        receives += 1;
        assert!(receives <= 10, "never dead-lettered");
        let response =
            messaging_handlers::broadcast::handle(&d.stack.broadcast, event.clone()).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed.len(), 1, "the job is reported failed, not dropped");
        d.stack.events.release(&event, &failed, 0).await.unwrap();
    }
    d.proxy.heal();
    let dead = dead_letters(&d).await;
    assert_eq!(dead.len(), 1, "in the dead-letter queue");
    assert!(d.stack.gateway.take().is_empty());
    assert_eq!(
        stored(&d.stack).await.len(),
        1,
        "the message itself is stored"
    );
    let _: ConversationId = conversation("deal");
    record(Row {
        case: "a job fails on every receive (DynamoDB down for broadcast)",
        accepted: 1,
        stored: 1,
        delivered: "0 (in history; the job in the DLQ, alarmed)".into(),
        duplicates: "0".into(),
        retried: format!("{receives} receives (maxReceiveCount 5), then the DLQ"),
    });
}
