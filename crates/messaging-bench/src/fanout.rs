//! One message to a conversation of N connected clients, and beside it the raw gateway rate:
//! the same N frames posted straight to `@connections` with the same concurrency. Measured
//! [`TRIALS`] times on the same conversation; the row is the trial with the median posting
//! phase (a 2-core machine shared with moto and every socket varies by half from one second
//! to the next: one trial is a sample, not a measurement).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use messaging_core::{ConversationId, TenantId};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::stack::{Arrival, Client, Stack};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutResult {
    pub recipients: usize,
    pub delivered: usize,
    pub seconds_to_ack: f64,
    pub seconds_to_first: f64,
    pub seconds_to_last: f64,
    pub deliveries_per_second: f64,
    pub raw_seconds_to_last: f64,
    pub raw_deliveries_per_second: f64,
    pub percent_of_raw: f64,
    /// The recipient Query alone (on moto), measured separately.
    pub recipient_query_seconds: f64,
    /// Deliveries per second from the first delivery to the last: the posting phase.
    pub posting_deliveries_per_second: f64,
    pub posting_percent_of_raw: f64,
    /// The posting phase's % of raw in each trial (this row is the median one).
    pub posting_percent_of_raw_trials: Vec<f64>,
    pub route_dynamodb_requests: BTreeMap<String, u64>,
    pub broadcast_dynamodb_requests: BTreeMap<String, u64>,
    pub recipient_query_pages: usize,
    pub recipient_query_read_units: f64,
    pub sqs_requests: BTreeMap<String, u64>,
    pub post_to_connection_calls: u64,
    pub route_ms: f64,
    /// Per broadcast invocation.
    pub broadcast_ms: f64,
    /// Broadcast invocations the message took (0: route posted to everyone).
    pub broadcast_invocations: usize,
    /// Of the GetItems, those eventually consistent (half a read unit).
    pub eventual_get_items: u64,
    /// Items in the send transaction (message, client message id).
    pub transaction_items: usize,
}

/// Waits for `count` arrivals whose text contains `marker`; their times.
async fn collect(
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    marker: &str,
    count: usize,
    within: Duration,
) -> Vec<Instant> {
    let deadline = tokio::time::Instant::now() + within;
    let mut times = Vec::with_capacity(count);
    while times.len() < count {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((_, text, at))) if text.contains(marker) => times.push(at),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    times
}

fn ms(durations: &[Duration]) -> f64 {
    if durations.is_empty() {
        return 0.0;
    }
    durations.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / durations.len() as f64
}

pub async fn run(
    stack: &Stack,
    recipients: usize,
    first_index: usize,
) -> anyhow::Result<FanoutResult> {
    let (arrive, mut arrivals) = mpsc::unbounded_channel();
    let clients = stack.open(first_index, recipients + 1, arrive).await?;
    let conversation = format!("fanout-{recipients}");
    let tenant = format!("fanout{recipients}");
    stack
        .seed(&tenant, &conversation, &clients.iter().collect::<Vec<_>>())
        .await?;
    let (sender, receivers) = clients
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no clients"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A conversation's messages are rarely its sender's first (a sandbox then reads the
    // connection's record, and the tenant's limits, once a minute): one message first, not
    // counted, as a portal that has been talking.
    let warm = format!("warm-up {}", uuid::Uuid::new_v4().simple());
    let frame = json!({ "type": "CHAT_MESSAGE", "requestId": "warm", "conversationId": conversation,
        "clientMessageId": uuid::Uuid::new_v4().to_string(), "content": { "text": warm } });
    sender.outgoing.send(frame.to_string())?;
    let (mut warm_acked, mut warm_delivered) = (false, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !warm_acked || warm_delivered < recipients {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((index, text, _))) if index == sender.index && text.contains("\"ACK\"") => {
                warm_acked = true
            }
            Ok(Some((_, text, _))) if text.contains(&warm) => warm_delivered += 1,
            Ok(Some(_)) => {}
            _ => anyhow::bail!("the warm-up message did not arrive everywhere"),
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut trials = Vec::with_capacity(TRIALS);
    for _ in 0..TRIALS {
        trials.push(
            trial(
                stack,
                recipients,
                sender,
                receivers,
                &mut arrivals,
                &tenant,
                &conversation,
            )
            .await?,
        );
    }
    let percents: Vec<f64> = trials.iter().map(|t| t.posting_percent_of_raw).collect();
    trials.sort_by(|a, b| {
        a.posting_percent_of_raw
            .total_cmp(&b.posting_percent_of_raw)
    });
    let mut median = trials.swap_remove(TRIALS / 2);
    median.posting_percent_of_raw_trials = percents;
    Ok(median)
}

/// Measured messages per row.
pub const TRIALS: usize = 3;

/// One measured message to the conversation, and the raw rate right after it.
async fn trial(
    stack: &Stack,
    recipients: usize,
    sender: &Client,
    receivers: &[Client],
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    tenant: &str,
    conversation: &str,
) -> anyhow::Result<FanoutResult> {
    stack.reset_counters();
    let posts_before = stack.gateway.connections().posts();

    let marker = format!("fanout {recipients} {}", uuid::Uuid::new_v4().simple());
    // A realistic chat line, sent as clients should send: with a client message id.
    let text = format!("Here are the updated contracts for the launch review, {marker}");
    let frame = json!({ "type": "CHAT_MESSAGE", "requestId": "bench", "conversationId": conversation,
        "clientMessageId": uuid::Uuid::new_v4().to_string(), "content": { "text": text } });
    let started = Instant::now();
    sender.outgoing.send(frame.to_string())?;
    // The sender's ACK carries no marker; count it separately from the deliveries.
    let mut ack_at = None;
    let mut times = Vec::with_capacity(recipients);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while times.len() < recipients || ack_at.is_none() {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((index, text, at))) if index == sender.index && text.contains("\"ACK\"") => {
                ack_at = Some(at)
            }
            Ok(Some((_, text, at))) if text.contains(&marker) => times.push(at),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    // Let the event source mapping delete the message before counting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = stack.gateway.connections().posts() - posts_before;
    let route_dynamodb_requests = stack.route_dynamodb.snapshot();
    let broadcast_dynamodb_requests = stack.broadcast_dynamodb.snapshot();
    let eventual_get_items = [&stack.route_dynamodb, &stack.broadcast_dynamodb]
        .iter()
        .filter_map(|c| c.eventually_consistent().get("GetItem").copied())
        .sum();
    let sqs_requests = stack.sqs_requests.snapshot();
    let (route_ms, broadcast_ms, broadcast_invocations) = {
        let t = stack.timings.lock().unwrap();
        (ms(&t.route), ms(&t.broadcast), t.broadcast.len())
    };
    // The same recipient Query broadcast made, timed on its own: on moto it is most of the
    // time to the first delivery.
    let query_started = Instant::now();
    let query = stack
        .table
        .recipients(
            &TenantId::parse(tenant)?,
            &ConversationId::parse(conversation)?,
        )
        .await?;
    let query_seconds = query_started.elapsed().as_secs_f64();

    // The raw rate: the same frame to the same sockets, straight through @connections.
    let raw_marker = format!("raw {recipients} {}", uuid::Uuid::new_v4().simple());
    let raw_frame = json!({ "type": "RAW", "text": raw_marker }).to_string();
    let raw_started = Instant::now();
    let bytes = raw_frame.as_bytes();
    stream::iter(receivers)
        .map(|client| stack.api.post(&client.connection, bytes))
        .buffer_unordered(stack.concurrency)
        .collect::<Vec<_>>()
        .await;
    let raw_times = collect(arrivals, &raw_marker, recipients, Duration::from_secs(300)).await;

    let last = times
        .iter()
        .max()
        .map(|t| t.duration_since(started).as_secs_f64())
        .unwrap_or(f64::NAN);
    let first = times
        .iter()
        .min()
        .map(|t| t.duration_since(started).as_secs_f64())
        .unwrap_or(f64::NAN);
    let raw_last = raw_times
        .iter()
        .max()
        .map(|t| t.duration_since(raw_started).as_secs_f64())
        .unwrap_or(f64::NAN);
    let rate = times.len() as f64 / last;
    let raw_rate = raw_times.len() as f64 / raw_last;
    Ok(FanoutResult {
        recipients,
        delivered: times.len(),
        seconds_to_ack: ack_at
            .map(|t| t.duration_since(started).as_secs_f64())
            .unwrap_or(f64::NAN),
        seconds_to_first: first,
        seconds_to_last: last,
        deliveries_per_second: rate,
        raw_seconds_to_last: raw_last,
        raw_deliveries_per_second: raw_rate,
        percent_of_raw: 100.0 * rate / raw_rate,
        recipient_query_seconds: query_seconds,
        posting_deliveries_per_second: times.len() as f64 / (last - first),
        posting_percent_of_raw: 100.0 * (times.len() as f64 / (last - first)) / raw_rate,
        posting_percent_of_raw_trials: Vec::new(),
        route_dynamodb_requests,
        broadcast_dynamodb_requests,
        recipient_query_pages: query.pages,
        recipient_query_read_units: query.consumed_read_units,
        sqs_requests,
        post_to_connection_calls: posts,
        route_ms,
        // The message and its client message id (the seq is taken before, by an UpdateItem).
        transaction_items: 2,
        broadcast_ms,
        broadcast_invocations,
        eventual_get_items,
    })
}
