//! Rate limits under a flood: a calm portal's users send at a steady pace, first alone, then
//! while one connection of another portal floods (ten times its connection's allowance). The
//! calm portal's ACK latency should not move; the flood is answered THROTTLED. And what the
//! limiter costs: its counter writes per admitted message, at the limit (the flood) and in
//! normal traffic (the steady run), as dollars per million messages.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::stack::Stack;
use crate::steady::percentile;

/// DynamoDB on-demand, us-east-1: dollars per million write request units (a counter update
/// is under 1 KB: one unit).
pub const DOLLARS_PER_MILLION_WRU: f64 = 0.625;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub calm_sent: usize,
    pub calm_acked: usize,
    pub calm_ack_ms_p50: f64,
    pub calm_ack_ms_p95: f64,
    pub calm_ack_ms_max: f64,
    pub flood_sent: usize,
    pub flood_acked: usize,
    pub flood_throttled: usize,
    /// DynamoDB requests the route function made in the phase (both portals).
    pub route_dynamodb_requests: u64,
    /// The route function's own time per frame (both portals), p50 / p95 / max.
    pub route_ms_p50: f64,
    pub route_ms_p95: f64,
    pub route_ms_max: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleResult {
    pub seconds: f64,
    pub calm_rate: f64,
    pub flood_rate: f64,
    pub alone: Phase,
    pub flooded: Phase,
    /// Counter writes per million admitted messages: a user sending at their limit.
    pub writes_per_million_at_limit: f64,
    pub dollars_per_million_at_limit: f64,
    /// The same in normal traffic (the calm portal alone: ten users, well under their limits).
    pub writes_per_million_normal: f64,
    pub dollars_per_million_normal: f64,
}

/// Counter writes per million admitted frames, from a limiter's counts.
pub fn writes_per_million(admitted: u64, syncs: u64) -> f64 {
    if admitted == 0 {
        return 0.0;
    }
    syncs as f64 * 1e6 / admitted as f64
}

pub async fn run(
    stack: &Stack,
    seconds: f64,
    calm_rate: f64,
    flood_rate: f64,
    first_index: usize,
) -> anyhow::Result<ThrottleResult> {
    let (arrive, mut arrivals) = mpsc::unbounded_channel();
    let calm = stack.open(first_index, 10, arrive.clone()).await?;
    let flood = stack.open(first_index + 10, 1, arrive).await?;
    stack
        .seed("throttle-calm", "calm", &calm.iter().collect::<Vec<_>>())
        .await?;
    stack.seed("throttle-flood", "flood", &[&flood[0]]).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut phases = Vec::new();
    let mut at_limit = (0u64, 0u64);
    let mut normal = (0u64, 0u64);
    for flooding in [false, true] {
        let before = (
            stack.limiter.stats.admitted.load(Ordering::Relaxed),
            stack.limiter.stats.syncs.load(Ordering::Relaxed),
        );
        let mut sent: HashMap<String, (bool, Instant)> = HashMap::new();
        stack.timings.lock().unwrap().route.clear();
        stack.route_dynamodb.reset();
        let started = Instant::now();
        let mut calm_tick = tokio::time::interval(Duration::from_secs_f64(1.0 / calm_rate));
        let mut flood_tick = tokio::time::interval(Duration::from_secs_f64(1.0 / flood_rate));
        let (mut calm_seq, mut flood_seq) = (0usize, 0usize);
        while started.elapsed().as_secs_f64() < seconds {
            tokio::select! {
                _ = calm_tick.tick() => {
                    let id = format!("c{}-{calm_seq}", u8::from(flooding));
                    let client = &calm[calm_seq % calm.len()];
                    let frame = json!({ "type": "CHAT_MESSAGE", "requestId": id, "conversationId": "calm", "content": { "text": "steady work" } });
                    sent.insert(id, (false, Instant::now()));
                    client.outgoing.send(frame.to_string())?;
                    calm_seq += 1;
                }
                _ = flood_tick.tick(), if flooding => {
                    let id = format!("f-{flood_seq}");
                    let frame = json!({ "type": "CHAT_MESSAGE", "requestId": id, "conversationId": "flood", "content": { "text": "spam" } });
                    sent.insert(id, (true, Instant::now()));
                    flood[0].outgoing.send(frame.to_string())?;
                    flood_seq += 1;
                }
            }
        }
        // Every frame gets its answer: collect them.
        let mut latencies = Vec::new();
        let (mut calm_acked, mut flood_acked, mut flood_throttled) = (0, 0, 0);
        let mut answered = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered < sent.len() && Instant::now() < deadline {
            let Ok(Some((_, text, at))) =
                tokio::time::timeout(Duration::from_secs(5), arrivals.recv()).await
            else {
                break;
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Some((is_flood, sent_at)) = frame["requestId"].as_str().and_then(|id| sent.get(id))
            else {
                continue;
            };
            answered += 1;
            match (is_flood, frame["type"].as_str(), frame["code"].as_str()) {
                (false, Some("ACK"), _) => {
                    calm_acked += 1;
                    latencies.push(at.duration_since(*sent_at).as_secs_f64() * 1000.0);
                }
                (true, Some("ACK"), _) => flood_acked += 1,
                (true, _, Some("THROTTLED")) => flood_throttled += 1,
                _ => {}
            }
        }
        latencies.sort_by(f64::total_cmp);
        let mut route: Vec<f64> = stack
            .timings
            .lock()
            .unwrap()
            .route
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        route.sort_by(f64::total_cmp);
        let counted = (
            stack.limiter.stats.admitted.load(Ordering::Relaxed) - before.0,
            stack.limiter.stats.syncs.load(Ordering::Relaxed) - before.1,
        );
        if flooding {
            // The calm portal's share is counted in the normal phase; here it adds nothing
            // (its users and tenant stay far under their batches).
            at_limit = (
                counted
                    .0
                    .saturating_sub(phases.last().map_or(0, |p: &Phase| p.calm_acked as u64)),
                counted.1,
            );
        } else {
            normal = counted;
        }
        phases.push(Phase {
            calm_sent: calm_seq,
            calm_acked,
            calm_ack_ms_p50: percentile(&latencies, 50.0),
            calm_ack_ms_p95: percentile(&latencies, 95.0),
            calm_ack_ms_max: latencies.last().copied().unwrap_or(f64::NAN),
            flood_sent: flood_seq,
            flood_acked,
            flood_throttled,
            route_dynamodb_requests: stack.route_dynamodb.total(),
            route_ms_p50: percentile(&route, 50.0),
            route_ms_p95: percentile(&route, 95.0),
            route_ms_max: route.last().copied().unwrap_or(f64::NAN),
        });
    }
    let writes = writes_per_million(at_limit.0, at_limit.1);
    let normal_writes = writes_per_million(normal.0, normal.1);
    let flooded = phases.pop().unwrap_or_else(|| unreachable!("two phases"));
    let alone = phases.pop().unwrap_or_else(|| unreachable!("two phases"));
    Ok(ThrottleResult {
        seconds,
        calm_rate,
        flood_rate,
        alone,
        flooded,
        writes_per_million_at_limit: writes,
        dollars_per_million_at_limit: writes * DOLLARS_PER_MILLION_WRU / 1e6,
        writes_per_million_normal: normal_writes,
        dollars_per_million_normal: normal_writes * DOLLARS_PER_MILLION_WRU / 1e6,
    })
}
