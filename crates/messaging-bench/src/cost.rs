//! Cost per million chat messages, from counted requests and measured durations, with
//! published us-east-1 prices; beside it the seed's per-recipient lookups and a
//! Scan-every-connection design at 10,000 connections, from their request counts.

use serde::Serialize;

use crate::fanout::FanoutResult;
use crate::steady::SteadyResult;

/// The search indexer's share of a message, measured over the steady load (its stream
/// batches as the event source mapping formed them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexCost {
    pub write_units_per_message: f64,
    pub invocations_per_message: f64,
    pub ms_per_invocation: f64,
}

impl IndexCost {
    pub fn from_steady(run: &SteadyResult) -> Option<Self> {
        let lines = run.index_lines as f64;
        (lines > 0.0).then(|| Self {
            write_units_per_message: run.index_write_units as f64 / lines,
            invocations_per_message: run.index_batches as f64 / lines,
            ms_per_invocation: run.index_ms_p50,
        })
    }
}

pub const API_GATEWAY_PER_MESSAGE: f64 = 1.00 / 1e6; // per 32 KB message unit
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
pub const LAMBDA_PER_GB_SECOND_ARM: f64 = 0.000_013_333_4;
pub const DYNAMODB_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
pub const DYNAMODB_PER_READ_UNIT: f64 = 0.125 / 1e6;
pub const SQS_FIFO_PER_REQUEST: f64 = 0.50 / 1e6;
pub const ROUTE_MEMORY_GB: f64 = 0.125;
pub const BROADCAST_MEMORY_GB: f64 = 0.25;
pub const INDEXER_MEMORY_GB: f64 = 0.125;
/// The Scan design's read units per message at 10,000 connections (eventually consistent,
/// ~50-byte items: 500 KB a message).
pub const SCAN_READ_UNITS_AT_10K: f64 = 61.0;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub design: String,
    pub recipients: usize,
    pub api_gateway: f64,
    pub lambda: f64,
    pub dynamodb: f64,
    pub sqs: f64,
    pub total: f64,
    /// Everything but API Gateway.
    pub above_api_gateway: f64,
    pub notes: String,
}

fn per_million(
    design: &str,
    recipients: usize,
    api: f64,
    lambda: f64,
    dynamodb: f64,
    sqs: f64,
    notes: String,
) -> Cost {
    let m = 1e6;
    Cost {
        design: design.into(),
        recipients,
        api_gateway: api * m,
        lambda: lambda * m,
        dynamodb: dynamodb * m,
        sqs: sqs * m,
        total: (api + lambda + dynamodb + sqs) * m,
        above_api_gateway: (lambda + dynamodb + sqs) * m,
        notes,
    }
}

/// Billed GB-seconds of one invocation (Lambda rounds up to the millisecond).
fn gb_seconds(ms: f64, gb: f64) -> f64 {
    ms.ceil() / 1000.0 * gb
}

/// Our design, from one measured fan-out to `run.recipients`, and the search indexer's share
/// of a message (`None`: not measured, counted as nothing).
pub fn ours(run: &FanoutResult, index: Option<IndexCost>) -> Cost {
    let n = run.recipients as f64;
    // Inbound CHAT_MESSAGE + its ACK (the two-way route's response) + one frame per recipient.
    let api = (2.0 + n) * API_GATEWAY_PER_MESSAGE;
    let index = index.unwrap_or(IndexCost {
        write_units_per_message: 0.0,
        invocations_per_message: 0.0,
        ms_per_invocation: 0.0,
    });
    // Route, and broadcast as often as it ran for the message (never, when route posted it).
    let broadcasts = run.broadcast_invocations as f64;
    let lambda = (1.0 + broadcasts) * LAMBDA_PER_REQUEST
        + (gb_seconds(run.route_ms, ROUTE_MEMORY_GB)
            + broadcasts * gb_seconds(run.broadcast_ms, BROADCAST_MEMORY_GB))
            * LAMBDA_PER_GB_SECOND_ARM
        + index.invocations_per_message
            * (LAMBDA_PER_REQUEST
                + gb_seconds(index.ms_per_invocation, INDEXER_MEMORY_GB)
                    * LAMBDA_PER_GB_SECOND_ARM);
    let count = |op: &str| *run.route_dynamodb_requests.get(op).unwrap_or(&0) as f64;
    let both = |op: &str| count(op) + *run.broadcast_dynamodb_requests.get(op).unwrap_or(&0) as f64;
    // A strongly consistent GetItem costs 1 RRU (the membership; the connection and the
    // tenant's limits once a minute per sandbox, so not in a conversation's later messages),
    // an eventually consistent one 0.5 (the client message id's first look). Each Query (the recipients, the members for notifications; by whichever function
    // posted) reads about what a page of recipients reads, measured on its own.
    let per_query = run.recipient_query_read_units / run.recipient_query_pages.max(1) as f64;
    // The send takes its seq with one UpdateItem of the conversation (1 WRU), then
    // writes its idempotency key and the message, one conditional PutItem each (1 WRU each,
    // ≤ 1 KB); a reply writes a transaction instead (2 WRU per item). No index copies the
    // message item; the search indexer writes its blocks from the stream (its share: `index`).
    let reads = both("GetItem") - 0.5 * run.eventual_get_items as f64 + both("Query") * per_query;
    let transactions = count("TransactWriteItems");
    let writes = transactions * 2.0 * run.transaction_items as f64
        + count("PutItem")
        + count("UpdateItem")
        + index.write_units_per_message;
    let dynamodb = reads * DYNAMODB_PER_READ_UNIT + writes * DYNAMODB_PER_WRITE_UNIT;
    // Send, plus the receive and the delete that handled it (one per DeleteMessageBatch). The
    // event source mapping's empty long polls are a fixed cost per poller, not per message.
    let sqs_count = |op: &str| *run.sqs_requests.get(op).unwrap_or(&0) as f64;
    let sqs_requests = sqs_count("SendMessage") + 2.0 * sqs_count("DeleteMessageBatch");
    let sqs = sqs_requests * SQS_FIFO_PER_REQUEST;
    let queue = if sqs_requests == 0.0 {
        "no queue hop (route posted every recipient)".to_owned()
    } else {
        format!(
            "{sqs_requests:.0} SQS FIFO requests (send, receive, delete at one message a batch)"
        )
    };
    per_million(
        "StackPro (this)",
        run.recipients,
        api,
        lambda,
        dynamodb,
        sqs,
        format!(
            "{reads:.1} RRU, {writes:.2} WRU (search index {:.2}), {queue}, route {:.1} ms @128 MB, broadcast {} × {:.1} ms @256 MB, indexer {:.3} invocations of {:.1} ms @128 MB",
            index.write_units_per_message, run.route_ms, run.broadcast_invocations, run.broadcast_ms, index.invocations_per_message, index.ms_per_invocation
        ),
    )
}

/// A design that looks recipients up and fans out from the one function that accepted the
/// message (no queue, no ACK), with `reads` read units per message and Lambda time taken equal
/// to ours (generous to it: it makes more requests in sequence).
fn direct_fan_out(run: &FanoutResult, design: &str, reads: f64, basis: (&str, &str)) -> Cost {
    let api = (1.0 + run.recipients as f64) * API_GATEWAY_PER_MESSAGE;
    let lambda = LAMBDA_PER_REQUEST
        + gb_seconds(run.route_ms + run.broadcast_ms, ROUTE_MEMORY_GB) * LAMBDA_PER_GB_SECOND_ARM;
    let writes = 2.0; // the message and its UserIndex entry, as the seed's layout has it
    let dynamodb = reads * DYNAMODB_PER_READ_UNIT + writes * DYNAMODB_PER_WRITE_UNIT;
    let notes = format!("{reads:.0} RRU{}, {writes:.0} WRU{}", basis.0, basis.1);
    per_million(design, run.recipients, api, lambda, dynamodb, 0.0, notes)
}

/// The seed's sketch: look up every recipient's connection and check its access (1 + 2N
/// strongly consistent reads). Redis is not counted.
pub fn seed(run: &FanoutResult) -> Cost {
    let reads = 1.0 + 2.0 * run.recipients as f64;
    direct_fan_out(
        run,
        "seed: lookup per recipient",
        reads,
        ("", "; Redis not counted"),
    )
}

/// A Scan of every connection per message (the AWS sample chat app) at 10,000 connections.
pub fn scan(run: &FanoutResult) -> Cost {
    direct_fan_out(
        run,
        "Scan all connections (10,000)",
        SCAN_READ_UNITS_AT_10K,
        (" per Scan", ""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn run(recipients: usize) -> FanoutResult {
        FanoutResult {
            recipients,
            delivered: recipients,
            seconds_to_ack: 0.0,
            seconds_to_first: 0.0,
            seconds_to_last: 0.0,
            deliveries_per_second: 0.0,
            raw_seconds_to_last: 0.0,
            raw_deliveries_per_second: 0.0,
            percent_of_raw: 0.0,
            recipient_query_seconds: 0.0,
            posting_deliveries_per_second: 0.0,
            posting_percent_of_raw: 0.0,
            posting_percent_of_raw_trials: Vec::new(),
            route_dynamodb_requests: counts(&[("GetItem", 3), ("UpdateItem", 1), ("PutItem", 2)]),
            broadcast_dynamodb_requests: counts(&[("Query", 1)]),
            recipient_query_pages: 1,
            recipient_query_read_units: 1.0,
            sqs_requests: counts(&[
                ("SendMessage", 1),
                ("ReceiveMessage", 5),
                ("DeleteMessageBatch", 1),
            ]),
            post_to_connection_calls: recipients as u64,
            route_ms: 9.2,
            broadcast_ms: 20.0,
            broadcast_invocations: 1,
            eventual_get_items: 0,
            transaction_items: 2,
        }
    }

    /// The default: route posted to every recipient itself, and made both Queries.
    fn direct(recipients: usize) -> FanoutResult {
        FanoutResult {
            route_dynamodb_requests: counts(&[
                ("GetItem", 3),
                ("UpdateItem", 1),
                ("PutItem", 2),
                ("Query", 2),
            ]),
            broadcast_dynamodb_requests: counts(&[]),
            sqs_requests: counts(&[]),
            route_ms: 19.2,
            broadcast_ms: 0.0,
            broadcast_invocations: 0,
            eventual_get_items: 1,
            ..run(recipients)
        }
    }

    #[test]
    fn a_message_route_posts_itself_costs_no_queue_and_no_broadcast() {
        let cost = ours(&direct(10), None);
        assert_eq!(cost.sqs, 0.0);
        // 3 GetItems (one eventually consistent) + two Queries of one recipient page's 1 RRU;
        // seq, key, message.
        assert!((cost.dynamodb - (4.5 * 0.125 + 3.0 * 0.625)).abs() < 1e-9);
        // One request, 20 ms (rounded up) at 128 MB.
        let lambda = 0.2 + 0.020 * 0.125 * 1e6 * LAMBDA_PER_GB_SECOND_ARM;
        assert!((cost.lambda - lambda).abs() < 1e-9, "{}", cost.lambda);
        assert!(cost.notes.contains("no queue hop"), "{}", cost.notes);
    }

    #[test]
    fn our_cost_is_itemised_from_the_counted_requests() {
        let index = IndexCost {
            write_units_per_message: 0.5,
            invocations_per_message: 0.1,
            ms_per_invocation: 20.0,
        };
        let cost = ours(&run(10), Some(index));
        assert!(
            (cost.api_gateway - 12.0).abs() < 1e-9,
            "inbound + ACK + 10 deliveries"
        );
        // 3 + 1 RRU; the seq (1), the key (1), the message (1) and the index's half unit.
        assert!((cost.dynamodb - (4.0 * 0.125 + 3.5 * 0.625)).abs() < 1e-9);
        // Send + receive + delete; the extra (empty) receives are not per message.
        assert!((cost.sqs - 1.5).abs() < 1e-9);
        // 2 requests + 10 ms (rounded up) at 128 MB + 20 ms at 256 MB, and a tenth of an
        // indexer invocation of 20 ms at 128 MB.
        let lambda = 0.4
            + (0.010 * 0.125 + 0.020 * 0.25) * 1e6 * LAMBDA_PER_GB_SECOND_ARM
            + 0.1 * (0.2 + 0.020 * 0.125 * 1e6 * LAMBDA_PER_GB_SECOND_ARM);
        assert!((cost.lambda - lambda).abs() < 1e-9);
        assert!((cost.total - (cost.api_gateway + cost.above_api_gateway)).abs() < 1e-9);
    }

    #[test]
    fn the_seed_design_reads_grow_with_recipients_and_the_scan_does_not() {
        assert!((seed(&run(100)).dynamodb - (201.0 * 0.125 + 2.0 * 0.625)).abs() < 1e-9);
        // Ours reads 1 RRU for the recipients whatever N, plus the four GetItems.
        assert_eq!(scan(&run(2)).dynamodb, scan(&run(100)).dynamodb);
        assert!(seed(&run(100)).dynamodb > ours(&run(100), None).dynamodb);
    }
}
