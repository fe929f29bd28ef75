//! The results as JSON and as a Markdown table, with the machine they were measured on.

use std::fmt::Write as _;

use serde::Serialize;

use crate::coldstart::ColdStart;
use crate::cost::Cost;
use crate::fanout::FanoutResult;
use crate::steady::SteadyResult;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub rustc: String,
    pub emulator: String,
    pub notes: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split(':').nth(1))
            })
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0.0);
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            date: messaging_core::time::rfc3339_millis(messaging_core::time::now_millis()),
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib: kib / 1024.0 / 1024.0,
            rustc,
            emulator: "moto server 5.2.5 (DynamoDB, SQS) + the local gateway, all on loopback".into(),
            notes: "The bench process runs the gateway, the functions and every client on the same 2 cores; moto is a single Python process.".into(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub machine: Machine,
    pub fanout_concurrency: usize,
    pub fanout: Vec<FanoutResult>,
    pub steady: Option<SteadyResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<crate::throttle::ThrottleResult>,
    pub cold_start: Vec<ColdStart>,
    pub cost_per_million_messages: Vec<Cost>,
}

fn ops(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# StackPro Messaging — benchmark results\n");
        let _ = writeln!(
            out,
            "Measured {} on {} ({} cores, {:.1} GiB), {}. {} {}\n",
            m.date, m.cpu, m.cores, m.memory_gib, m.rustc, m.emulator, m.notes
        );
        let _ = writeln!(
            out,
            "## Fan-out: one message to N connected clients (concurrency {})\n\nEach row is the median of {} messages to the same clients (by the posting phase's % of raw; every trial's in brackets), each followed by its raw gateway rate.\n",
            self.fanout_concurrency,
            crate::fanout::TRIALS
        );
        let _ = writeln!(out, "| N | delivered | ACK (s) | first (s) | last (s) | deliveries/s | raw gateway deliveries/s | % of raw | recipient Query on moto (s) | posting phase deliveries/s (% of raw) | DynamoDB requests (route; broadcast) | recipient Query pages / RRU | SQS requests | PostToConnection |");
        let _ = writeln!(
            out,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for f in &self.fanout {
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} % | {:.3} | {:.0} ({:.0} %; [{}]) | {}; {} | {} / {:.1} | {} | {} |",
                f.recipients, f.delivered, f.seconds_to_ack, f.seconds_to_first, f.seconds_to_last, f.deliveries_per_second,
                f.raw_deliveries_per_second, f.percent_of_raw, f.recipient_query_seconds, f.posting_deliveries_per_second,
                f.posting_percent_of_raw,
                f.posting_percent_of_raw_trials.iter().map(|p| format!("{p:.0}")).collect::<Vec<_>>().join(", "),
                ops(&f.route_dynamodb_requests), ops(&f.broadcast_dynamodb_requests),
                f.recipient_query_pages, f.recipient_query_read_units, ops(&f.sqs_requests), f.post_to_connection_calls
            );
        }
        if let Some(s) = &self.steady {
            let _ = writeln!(out, "\n## Steady load\n");
            let _ = writeln!(
                out,
                "{} clients in {} conversations of 10 (one portal each), {} messages/s for {} s, on a moto of its own: {} messages, {} deliveries expected, {} received, **{} lost, {} duplicates**.\n",
                s.clients, s.conversations, s.messages_per_second, s.seconds, s.messages_sent, s.deliveries_expected,
                s.deliveries_received, s.lost, s.duplicates
            );
            let _ = writeln!(
                out,
                "| send → deliver latency | p50 | p95 | p99 | max |\n|---|---|---|---|---|"
            );
            let _ = writeln!(
                out,
                "| ms | {:.1} | {:.1} | {:.1} | {:.1} |",
                s.latency_ms_p50, s.latency_ms_p95, s.latency_ms_p99, s.latency_ms_max
            );
            let per = |x: usize| x as f64 / s.index_lines.max(1) as f64;
            let _ = writeln!(
                out,
                "\n**Search index, off the message path.** The search indexer read the table's stream every {} s (the template's batching window): {} invocations indexed {} messages into {} blocks, **{} write units ({:.2} a message)**, {:.3} invocations a message of {:.1} ms (median). A new message became searchable after **{:.0} ms** (median of {} probes, max {:.0} ms): send → first SEARCH that finds it.",
                s.index_window_seconds, s.index_batches, s.index_lines, s.index_blocks, s.index_write_units,
                per(s.index_write_units), per(s.index_batches), s.index_ms_p50,
                s.search_latency_ms_p50, crate::steady::SEARCH_PROBES, s.search_latency_ms_max
            );
        }
        if let Some(t) = &self.throttle {
            out.push_str(&throttle_markdown(t));
        }
        let _ = writeln!(
            out,
            "\n## Cold start (release build, spawn → first Runtime API request)\n"
        );
        let _ = writeln!(out, "| function | stripped size | min ms | median ms | p95 ms | max ms | runs |\n|---|---|---|---|---|---|---|");
        for c in &self.cold_start {
            let _ = writeln!(
                out,
                "| {} | {:.2} MB | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                c.function,
                c.binary_bytes as f64 / 1e6,
                c.ms_min,
                c.ms_median,
                c.ms_p95,
                c.ms_max,
                c.runs
            );
        }
        let _ = writeln!(
            out,
            "\n## Cost per 1 million chat messages (us-east-1 prices)\n"
        );
        let _ = writeln!(out, "| design | N | API Gateway | Lambda | DynamoDB | SQS | total | above API Gateway | basis |\n|---|---|---|---|---|---|---|---|---|");
        for c in &self.cost_per_million_messages {
            let _ = writeln!(
                out,
                "| {} | {} | ${:.2} | ${:.2} | ${:.2} | ${:.2} | ${:.2} | ${:.2} | {} |",
                c.design,
                c.recipients,
                c.api_gateway,
                c.lambda,
                c.dynamodb,
                c.sqs,
                c.total,
                c.above_api_gateway,
                c.notes
            );
        }
        out
    }
}

/// The rate-limit section: the calm portal's ACK latency alone and during the flood, what the
/// flood got, and the limiter's cost.
pub fn throttle_markdown(t: &crate::throttle::ThrottleResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## Rate limits under a flood\n");
    let _ = writeln!(
        out,
        "A calm portal (10 users in one conversation) sends {} messages/s for {} s, first alone, then while one connection of another portal sends {} messages/s (10× its connection's allowance) for the same time. The real route function behind the local gateway, the stack's default limits.\n",
        t.calm_rate, t.seconds, t.flood_rate
    );
    let _ = writeln!(
        out,
        "| phase | calm sent | calm ACKed | calm ACK p50 ms | p95 ms | max ms | flood sent | flood ACKed | flood THROTTLED | route fn p50 / p95 / max ms | route DynamoDB requests |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (name, p) in [("calm alone", &t.alone), ("during the flood", &t.flooded)] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.2} / {:.1} / {:.1} | {} |",
            p.calm_sent,
            p.calm_acked,
            p.calm_ack_ms_p50,
            p.calm_ack_ms_p95,
            p.calm_ack_ms_max,
            p.flood_sent,
            p.flood_acked,
            p.flood_throttled,
            p.route_ms_p50,
            p.route_ms_p95,
            p.route_ms_max,
            p.route_dynamodb_requests
        );
    }
    let _ = writeln!(
        out,
        "\nThe limiter's cost: shared-counter writes (DynamoDB UpdateItem, 1 WRU) per million admitted messages — **{:.0} at a user's limit (${:.3} per million messages)**, **{:.0} in normal traffic (${:.3})**; no write per message. Tenants' own limits: one GetItem per tenant per minute per warm sandbox.",
        t.writes_per_million_at_limit, t.dollars_per_million_at_limit,
        t.writes_per_million_normal, t.dollars_per_million_normal
    );
    out
}
