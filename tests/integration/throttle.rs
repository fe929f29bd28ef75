//! Rate limits: a flooding connection, user or tenant is answered THROTTLED with
//! `retryAfterMs` and nothing it sent past its limit is stored or delivered; other tenants go
//! on; sandboxes share a user's allowance through the table without a write per message.

use std::sync::atomic::Ordering;

use messaging_core::limits::{window_of, RateLimits, WINDOW_MILLIS};
use messaging_core::time::now_millis;
use messaging_core::{Role, TenantId};
use messaging_handlers::route::RouteService;
use messaging_handlers::throttle::Limiter;
use serde_json::{json, Value};
use test_support::{chat, create, events, TestStack};

/// Waits for a fresh counting window when the current one has less than `need_ms` left, so a
/// test's frames all fall in one window.
async fn fresh_window(need_ms: i64) {
    let now = now_millis();
    let left = window_of(now) + WINDOW_MILLIS - now;
    if left < need_ms {
        tokio::time::sleep(std::time::Duration::from_millis(left as u64 + 20)).await;
    }
}

fn answer_of(response: aws_lambda_events::apigw::ApiGatewayProxyResponse) -> Value {
    match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => {
            serde_json::from_str(&text).unwrap()
        }
        _ => Value::Null,
    }
}

async fn history_len(
    stack: &TestStack,
    client: &test_support::Client,
    conversation: &str,
) -> usize {
    let (_, history) = stack
        .send(
            client,
            &json!({ "type": "GET_HISTORY", "conversationId": conversation, "limit": 100 }),
        )
        .await;
    history["messages"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_flooding_user_is_throttled_with_retry_after_and_another_tenant_is_not() {
    let stack = TestStack::new().await;
    // The operator gives tenant "flood" tight limits of its own; "calm" keeps the stack's.
    let tight = RateLimits {
        frames_per_second: 1_000,
        frame_burst: 1_000,
        user_sends_per_minute: 30, // 5 a window
        tenant_sends_per_minute: 600,
    };
    stack
        .route
        .table
        .set_rate_limits(&TenantId::parse("flood").unwrap(), Some(&tight))
        .await
        .unwrap();
    let boss = stack.connect_as("flood", "boss", Role::Owner).await;
    let flooder = stack.connect_as("flood", "mallory", Role::User).await;
    let calm = stack.connect_as("calm", "ann", Role::Owner).await;
    stack
        .send(&boss, &create("spam", "general", &["mallory"]))
        .await;
    stack.send(&calm, &create("work", "general", &[])).await;
    stack.pump().await;
    stack.gateway.take();
    // The whole window for the 40 sends below: on a slow machine they took 250 ms a pair, and
    // 5 s of it ran into the next window (8 ACKed).
    fresh_window(WINDOW_MILLIS).await;

    let mut acked = 0;
    let mut throttled = Vec::new();
    for i in 0..20 {
        stack.dynamo_requests.reset();
        let (status, answer) = stack
            .send(&flooder, &chat("spam", &format!("spam {i}")))
            .await;
        match answer["type"].as_str() {
            Some("ACK") => acked += 1,
            _ => {
                assert_eq!(answer["code"], "THROTTLED", "{answer}");
                assert_eq!(status, 429);
                assert_eq!(answer["retryable"], true);
                throttled.push(answer["retryAfterMs"].as_u64().expect("retryAfterMs"));
                // The first refusal looked her up; the rest of the window costs nothing.
                if throttled.len() > 1 {
                    assert_eq!(
                        stack.dynamo_requests.snapshot(),
                        Default::default(),
                        "refused send {i} read or wrote the table"
                    );
                }
            }
        }
        // The other tenant, in the same run, is not slowed or refused.
        let (_, answer) = stack.send(&calm, &chat("work", &format!("work {i}"))).await;
        assert_eq!(answer["type"], "ACK", "{answer}");
    }
    // Her 5 of the window, then THROTTLED.
    assert_eq!(acked, 5, "{throttled:?}");
    assert_eq!(throttled.len(), 15);
    assert!(throttled
        .iter()
        .all(|ms| (1..=WINDOW_MILLIS as u64).contains(ms)));
    // Nothing refused was stored or queued.
    assert_eq!(history_len(&stack, &flooder, "spam").await, 5);
    assert_eq!(history_len(&stack, &calm, "work").await, 20);

    // Reads still work while sends are throttled (they cost only the connection's bucket).
    let (_, list) = stack
        .send(&flooder, &json!({ "type": "LIST_CONVERSATIONS" }))
        .await;
    assert_eq!(list["type"], "CONVERSATIONS", "{list}");

    // After the window, the flooder may send again.
    let wait = *throttled.last().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(wait + 20)).await;
    let (_, answer) = stack.send(&flooder, &chat("spam", "later")).await;
    assert_eq!(answer["type"], "ACK", "{answer}");
}

#[tokio::test]
async fn a_connection_sending_too_fast_is_throttled_whatever_it_sends_and_costs_no_request() {
    let stack = TestStack::new().await;
    let tight = RateLimits {
        frames_per_second: 2,
        frame_burst: 3,
        ..RateLimits::default()
    };
    stack
        .route
        .table
        .set_rate_limits(&TenantId::parse("acme").unwrap(), Some(&tight))
        .await
        .unwrap();
    let ann = stack.connect_as("acme", "ann", Role::Owner).await;
    let other = stack.connect_as("acme", "ann", Role::Owner).await;
    // Eight frames at once, as a misbehaving client sends them.
    let frame = json!({ "type": "GET_PREFERENCES" });
    let answers = futures_util::future::join_all((0..8).map(|_| stack.send(&ann, &frame))).await;
    let ok = answers
        .iter()
        .filter(|(_, a)| a["type"] == "PREFERENCES")
        .count();
    let throttled: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["code"] == "THROTTLED")
        .collect();
    // The burst of 3 (a 4th if the frames took over half a second to arrive), the rest refused.
    assert!((3..=4).contains(&ok), "{answers:?}");
    assert_eq!(ok + throttled.len(), 8, "{answers:?}");
    assert!(throttled
        .iter()
        .all(|a| a["retryAfterMs"].as_u64().is_some_and(|ms| ms <= 500)));
    // Still flooding: refused before her connection is even looked up, so a flood costs the
    // table nothing (it made a GetItem per refused frame before).
    let mut refused = 0;
    for _ in 0..10 {
        stack.dynamo_requests.reset();
        let (_, answer) = stack.send(&ann, &frame).await;
        if answer["code"] == "THROTTLED" {
            refused += 1;
            assert_eq!(
                stack.dynamo_requests.snapshot(),
                Default::default(),
                "a refused frame read or wrote the table"
            );
        }
    }
    // (A token may come back during the loop: 2 a second.)
    assert!(refused >= 9, "{refused} of 10 refused");
    // Her other connection has its own bucket.
    let (_, answer) = stack
        .send(&other, &json!({ "type": "GET_PREFERENCES" }))
        .await;
    assert_eq!(answer["type"], "PREFERENCES", "{answer}");
}

#[tokio::test]
async fn two_sandboxes_share_a_users_allowance_through_the_table_with_a_write_per_batch() {
    let stack = TestStack::new().await;
    let limits = RateLimits {
        frames_per_second: 1_000,
        frame_burst: 1_000,
        user_sends_per_minute: 60, // 10 a window: a sync every 2
        tenant_sends_per_minute: 1_000_000,
    };
    stack
        .route
        .table
        .set_rate_limits(&TenantId::parse("acme").unwrap(), Some(&limits))
        .await
        .unwrap();
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack.send(&owner, &create("c", "general", &[])).await;
    // Frames of one window only: on a slow machine a run may straddle two windows, and is
    // then repeated with a user who has sent nothing yet.
    for attempt in 0..3 {
        let user = format!("ann{attempt}");
        let ann = stack.connect_as("acme", &user, Role::Owner).await;
        stack
            .send(
                &ann,
                &json!({ "type": "JOIN_CONVERSATION", "conversationId": "c" }),
            )
            .await;
        // Two warm sandboxes of the route function: each its own limiter, one table.
        let sandboxes = [
            RouteService {
                limiter: Limiter::new(RateLimits::default()),
                ..stack.route.clone()
            },
            RouteService {
                limiter: Limiter::new(RateLimits::default()),
                ..stack.route.clone()
            },
        ];
        fresh_window(8_000).await;
        let window = window_of(now_millis());
        let mut acked = 0;
        for i in 0..24 {
            let frame = chat("c", &format!("m{i}")).to_string();
            let event = events::message(ann.connection.as_str(), &frame);
            let answer =
                answer_of(messaging_handlers::route::handle(&sandboxes[i % 2], &event).await);
            if answer["type"] == "ACK" {
                acked += 1;
            } else {
                assert_eq!(answer["code"], "THROTTLED", "{answer}");
            }
        }
        if window_of(now_millis()) != window {
            continue;
        }
        // Each alone would admit 10; together they admit the user's 10 plus at most a batch
        // (2) each.
        assert!((10..14).contains(&acked), "{acked} admitted");
        let syncs: u64 = sandboxes
            .iter()
            .map(|s| s.limiter.stats.syncs.load(Ordering::Relaxed))
            .sum();
        // The user's counter only (the tenant's batch is far away): a write per 2 sends.
        assert!(syncs <= 7, "{syncs} counter writes for {acked} messages");
        return;
    }
    panic!("no attempt fitted in one 10 s window");
}
