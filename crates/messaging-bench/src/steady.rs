//! Steady load: C clients in conversations of 10, each conversation in its own portal
//! (tenant), sending at a fixed total rate; latency from send to delivery measured at every
//! receiving client; losses and duplicates counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::stack::Stack;

pub const GROUP: usize = 10;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteadyResult {
    pub clients: usize,
    pub conversations: usize,
    pub messages_per_second: f64,
    pub seconds: f64,
    pub messages_sent: usize,
    pub deliveries_expected: usize,
    pub deliveries_received: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// The search indexer over the run: stream batches it was invoked with, messages it
    /// indexed, blocks and write units it wrote, and its invocations' median duration.
    pub index_batches: usize,
    pub index_lines: usize,
    pub index_blocks: usize,
    pub index_write_units: usize,
    pub index_ms_p50: f64,
    /// The indexer's batching window (the template's `SearchIndexWindow`).
    pub index_window_seconds: u64,
    /// Send → first SEARCH that finds it, over [`SEARCH_PROBES`] messages sent after the run.
    pub search_latency_ms_p50: f64,
    pub search_latency_ms_max: f64,
}

/// Messages whose time to become searchable is measured after the steady run.
pub const SEARCH_PROBES: usize = 4;

/// The `p`th percentile of `sorted` (nearest rank).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `clients` in conversations of 10 (one portal each), `rate` messages a second for
/// `seconds`, every delivery accounted for by client and message; then, with `probe_search`,
/// the indexer's catch-up and the time to searchable.
pub async fn run(
    stack: &Stack,
    clients: usize,
    rate: f64,
    seconds: f64,
    first_index: usize,
    probe_search: bool,
) -> anyhow::Result<SteadyResult> {
    let (arrive, mut arrivals) = mpsc::unbounded_channel();
    let opened = stack.open(first_index, clients, arrive).await?;
    let conversations = clients / GROUP;
    for (k, group) in opened.chunks(GROUP).enumerate().take(conversations) {
        stack
            .seed(
                &format!("steady{k}"),
                &format!("steady-{k}"),
                &group.iter().collect::<Vec<_>>(),
            )
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let total = (rate * seconds).round() as usize;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let marker = format!("steady {run} ");
    // Each message says when it was sent (µs after `origin`): deliveries are accounted for
    // while the run goes on, so nothing piles up in the bench's own memory (the soak's
    // resident size is the gateway's and the functions', not a backlog of frames).
    let origin = Instant::now();
    let sending = async {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        for seq in 0..total {
            ticker.tick().await;
            let k = seq % conversations;
            let sender = &opened[k * GROUP + (seq / conversations) % GROUP];
            let sent = origin.elapsed().as_micros();
            let frame = json!({
                "type": "CHAT_MESSAGE", "conversationId": format!("steady-{k}"),
                "content": { "text": format!("steady {run} {seq} {sent} end") }
            });
            sender.outgoing.send(frame.to_string())?;
        }
        anyhow::Ok(Instant::now())
    };
    let expected = total * (GROUP - 1);
    let mut seen: HashMap<(usize, usize), u32> = HashMap::with_capacity(expected);
    let mut latencies = Vec::with_capacity(expected);
    let receiving = async {
        // Until everything arrived, or a minute after the last send.
        let mut deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds + 60.0);
        while seen.len() < expected {
            let Ok(Some((index, text, at))) =
                tokio::time::timeout_at(deadline, arrivals.recv()).await
            else {
                break;
            };
            if !text.contains("NEW_MESSAGE") {
                continue;
            }
            let Some(rest) = text.split(&marker).nth(1) else {
                continue;
            };
            let mut fields = rest.split(' ');
            let (Some(seq), Some(sent)) = (
                fields.next().and_then(|s| s.parse::<usize>().ok()),
                fields.next().and_then(|s| s.parse::<u64>().ok()),
            ) else {
                continue;
            };
            let count = seen.entry((index, seq)).or_default();
            *count += 1;
            if *count == 1 {
                let sent_at = origin + Duration::from_micros(sent);
                latencies.push(at.duration_since(sent_at).as_secs_f64() * 1000.0);
            }
            if seq + 1 == total {
                deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(60));
            }
        }
    };
    let (sent_all, ()) = tokio::join!(sending, receiving);
    sent_all?;
    // A last look for duplicates that arrive after everything was delivered.
    while let Ok(Some((index, text, _))) =
        tokio::time::timeout(Duration::from_millis(1500), arrivals.recv()).await
    {
        if let Some(seq) = text
            .split(&marker)
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|s| s.parse::<usize>().ok())
        {
            *seen.entry((index, seq)).or_default() += 1;
        }
    }
    // Search: the indexer catches up with the run, then new messages are timed from send to
    // the first SEARCH that finds them.
    let caught_up = Instant::now() + stack.index_window + Duration::from_secs(60);
    while probe_search && stack.indexing.lock().unwrap().lines < total && Instant::now() < caught_up
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let indexing = stack.indexing.lock().unwrap().clone();
    let mut search_latencies = Vec::new();
    let prober = &opened[0];
    for probe in 0..if probe_search { SEARCH_PROBES } else { 0 } {
        let word = format!("probe{}x{probe}", &run[..8]);
        let sent = Instant::now();
        prober.outgoing.send(
            json!({ "type": "CHAT_MESSAGE", "conversationId": "steady-0", "content": { "text": format!("searchable {word}") } })
                .to_string(),
        )?;
        let give_up = sent + stack.index_window + Duration::from_secs(30);
        'probe: while Instant::now() < give_up {
            prober
                .outgoing
                .send(json!({ "type": "SEARCH", "query": word }).to_string())?;
            while let Ok(Some((index, text, at))) =
                tokio::time::timeout(Duration::from_secs(5), arrivals.recv()).await
            {
                if index != prober.index || !text.contains("SEARCH_RESULTS") {
                    continue;
                }
                if text.contains(&format!("searchable {word}")) {
                    search_latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    break 'probe;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    search_latencies.sort_by(|a, b| a.total_cmp(b));
    let mut index_ms = indexing.ms.clone();
    index_ms.sort_by(|a, b| a.total_cmp(b));

    let received: usize = seen.values().map(|c| *c as usize).sum();
    let duplicates: usize = seen.values().map(|c| (*c as usize).saturating_sub(1)).sum();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(SteadyResult {
        clients,
        conversations,
        messages_per_second: rate,
        seconds,
        messages_sent: total,
        deliveries_expected: expected,
        deliveries_received: received - duplicates,
        lost: expected.saturating_sub(seen.len()),
        duplicates,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p95: percentile(&latencies, 95.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        latency_ms_max: latencies.last().copied().unwrap_or(f64::NAN),
        index_batches: indexing.batches,
        index_lines: indexing.lines,
        index_blocks: indexing.blocks,
        index_write_units: indexing.write_units,
        index_ms_p50: percentile(&index_ms, 50.0),
        index_window_seconds: stack.index_window.as_secs(),
        search_latency_ms_p50: percentile(&search_latencies, 50.0),
        search_latency_ms_max: if !probe_search {
            f64::NAN
        } else if search_latencies.len() == SEARCH_PROBES {
            search_latencies.last().copied().unwrap_or(f64::NAN)
        } else {
            // A probe never became searchable within the window and 30 s.
            f64::INFINITY
        },
    })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 51.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
