//! The scenarios of docs/scale.md, each run under several designs and quotas, and the
//! validation against the bench. Each returns its table (Markdown) and its data files (CSV)
//! for the plots (infra/local/scale-plots.py).

use crate::delivery::{self, DeliveryReport, Traffic};
use crate::engine::{secs, Time, MILLI, SECOND};
use crate::model::{Design, Quotas, Times};
use crate::storm::{self, Storm, StormReport};

/// A scenario's results.
pub struct Outcome {
    pub name: &'static str,
    pub markdown: String,
    /// (file name, CSV).
    pub files: Vec<(String, String)>,
}

/// A quotas variant: its label and the quotas.
pub struct Variant {
    pub label: &'static str,
    pub design: Design,
    pub quotas: Quotas,
}

impl Variant {
    /// `design` under a new account's quotas.
    fn at_defaults(design: Design) -> Self {
        Variant {
            label: "default",
            design,
            quotas: Quotas::aws_default(),
        }
    }
}

fn cdf_csv(points: &[(f64, f64)]) -> String {
    let mut out = String::from("latency_s,fraction\n");
    for (s, f) in points {
        out.push_str(&format!("{s:.4},{f:.4}\n"));
    }
    out
}

fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The limit that bound a delivery run.
fn delivery_binding(r: &DeliveryReport, design: &Design) -> String {
    if r.throttled_posts + r.inbound_throttled > 0 {
        "API Gateway account throttle (requests/s, posts and inbound frames)".into()
    } else if r.lambda_throttled > 0 {
        "Lambda concurrency".into()
    } else if design.shard_size == 0 && r.broadcast_runs > 1 {
        format!(
            "none: runs of {} posted one after another in one message group",
            design.per_run
        )
    } else {
        "none: post latency × concurrency".into()
    }
}

fn storm_binding(r: &StormReport) -> String {
    if r.write_throttles > 0 && r.tenant_partition_utilisation > 0.5 {
        "DynamoDB: the tenant's partition (1,000 WCU/s)".into()
    } else if r.write_throttles > 0 {
        "DynamoDB: a shard's partition".into()
    } else if r.api_refused > 0 {
        "API Gateway: new connections/s".into()
    } else if r.lambda_refused > 0 {
        "Lambda concurrency".into()
    } else {
        "none: arrivals".into()
    }
}

fn delivery_table(
    name: &'static str,
    variants: &[Variant],
    traffic: &Traffic,
    seed: u64,
    horizon: Time,
    bin: Time,
) -> Outcome {
    let mut md = String::from(
        "| design | quotas | delivered | lost | unfinished | p50 s | p95 s | p99 s | last s | posts | 429s | inbound refused | runs | peak Lambda | binding limit |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut files = Vec::new();
    for v in variants {
        let mut r = delivery::simulate(
            traffic,
            &v.quotas,
            &Times::aws(),
            &v.design,
            seed,
            horizon,
            bin,
        );
        md.push_str(&format!(
            "| {} | {} | {} of {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
            v.design.name,
            v.label,
            r.delivered,
            r.expected,
            r.lost,
            r.unfinished,
            r.latency.percentile(50.0),
            r.latency.percentile(95.0),
            r.latency.percentile(99.0),
            secs(r.last_delivery),
            r.posts,
            r.throttled_posts,
            r.inbound_throttled + r.lambda_throttled,
            r.broadcast_runs,
            r.peak_concurrency,
            delivery_binding(&r, &v.design),
        ));
        let stem = format!("{name}-{}-{}", slug(v.design.name), slug(v.label));
        files.push((format!("{stem}-series.csv"), r.series.csv()));
        files.push((format!("{stem}-cdf.csv"), cdf_csv(&r.latency.cdf(200))));
    }
    Outcome {
        name,
        markdown: md,
        files,
    }
}

/// A connect storm of 100,000 users in one minute (one tenant: a tenant-wide conversation
/// and two teams of 50 each).
pub fn connect_storm(seed: u64) -> Outcome {
    let s = Storm {
        users: 100_000,
        window: 60 * SECOND,
        company_wide: 1,
        teams_per_user: 2,
        team_size: 50,
    };
    let raised = Quotas {
        api_new_connections_per_second: 2_500.0,
        api_new_connections_burst: 2_500.0,
        ..Quotas::aws_default()
    };
    let variants = [
        Variant::at_defaults(Design::before_shards()),
        Variant::at_defaults(Design::today()),
        Variant::at_defaults(Design::user_partitions()),
        Variant {
            label: "2,500 new connections/s",
            design: Design::user_partitions(),
            quotas: raised,
        },
    ];
    let mut md = String::from(
        "| design | quotas | connected | p50 s | p95 s | p99 s | last s | connects refused (429) | write throttles | failed connects | tenant partition | hottest shard | shards (items each) | peak Lambda | binding limit |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut files = Vec::new();
    for v in &variants {
        let mut r = storm::simulate(
            &s,
            &v.quotas,
            &Times::aws(),
            &v.design,
            seed,
            3_600 * SECOND,
            SECOND,
        );
        let (lo, hi) = (
            r.items_per_shard.iter().min().copied().unwrap_or(0),
            r.items_per_shard.iter().max().copied().unwrap_or(0),
        );
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {:.0} % | {:.0} % | {} ({}–{}) | {} | {} |\n",
            v.design.name,
            v.label,
            r.connected,
            r.latency.percentile(50.0),
            r.latency.percentile(95.0),
            r.latency.percentile(99.0),
            secs(r.last_connected),
            r.api_refused,
            r.write_throttles,
            r.failed_connects,
            r.tenant_partition_utilisation * 100.0,
            r.hottest_shard_utilisation * 100.0,
            r.items_per_shard.len(),
            lo,
            hi,
            r.peak_concurrency,
            storm_binding(&r),
        ));
        let stem = format!("storm-{}-{}", slug(v.design.name), slug(v.label));
        files.push((format!("{stem}-series.csv"), r.series.csv()));
        files.push((format!("{stem}-cdf.csv"), cdf_csv(&r.latency.cdf(200))));
    }
    Outcome {
        name: "storm",
        markdown: md,
        files,
    }
}

/// One announcement to a conversation of 50,000 connected members, the account otherwise idle.
pub fn announcement(seed: u64) -> Outcome {
    let raised = Quotas {
        api_requests_per_second: 50_000.0,
        api_burst: 5_000.0,
        ..Quotas::aws_default()
    };
    let variants = [
        Variant::at_defaults(Design::before_shards()),
        Variant::at_defaults(Design::today()),
        Variant {
            label: "50,000 requests/s",
            design: Design::today(),
            quotas: raised,
        },
    ];
    delivery_table(
        "announcement",
        &variants,
        &delivery::one_message(50_000),
        seed,
        600 * SECOND,
        100 * MILLI,
    )
}

/// 1,000,000 connections in 100,000 conversations of 10, chatting at 10,000 messages a
/// second for `seconds`.
pub fn chatting(seed: u64, seconds: f64) -> Outcome {
    let raised = Quotas {
        api_requests_per_second: 150_000.0,
        api_burst: 5_000.0,
        lambda_concurrency: 3_000,
        ..Quotas::aws_default()
    };
    // Conversations of 10 are posted by route alone: sharding changes nothing here.
    let variants = [
        Variant::at_defaults(Design::before_backoff()),
        Variant::at_defaults(Design::today()),
        Variant {
            label: "150,000 requests/s, 3,000 Lambda",
            design: Design::today(),
            quotas: raised,
        },
    ];
    let traffic = delivery::chatting(100_000, 9, 10_000.0, seconds, seed);
    delivery_table(
        "chatting",
        &variants,
        &traffic,
        seed,
        900 * SECOND,
        500 * MILLI,
    )
}

/// The bench's fan-out rows, simulated with the bench's service times and no quotas.
/// `bench`: bench/results/latest.json.
pub fn validation(bench: &serde_json::Value, seed: u64) -> Outcome {
    let mut md = String::from(
        "| recipients | bench ACK s | simulated ACK s | bench first s | simulated first s | bench last s | simulated last s | last: simulated / bench |\n|---|---|---|---|---|---|---|---|\n",
    );
    let concurrency = bench["fanoutConcurrency"].as_u64().unwrap_or(64) as u32;
    // The bench's stack writes its conversation's subscriptions itself, without a sizing
    // item: one shard at every size, the path before shards, which is what it is compared with.
    let design = Design {
        name: "before shards (bench)",
        post_concurrency: concurrency,
        ..Design::before_shards()
    };
    let mut rows = Vec::new();
    for row in bench["fanout"].as_array().into_iter().flatten() {
        let n = row["recipients"].as_u64().unwrap_or(0) as u32;
        if n < 100 {
            // Below 100 a delivery is the route's fixed cost; the rows say nothing of fan-out.
            continue;
        }
        let mut r = delivery::simulate(
            &delivery::one_message(n),
            &Quotas::unlimited(),
            &Times::local_bench(),
            &design,
            seed,
            600 * SECOND,
            100 * MILLI,
        );
        let (ack, first, last) = (
            r.ack.percentile(100.0),
            secs(r.first_delivery),
            secs(r.last_delivery),
        );
        let bench_last = row["secondsToLast"].as_f64().unwrap_or(f64::NAN);
        md.push_str(&format!(
            "| {n} | {:.3} | {ack:.3} | {:.3} | {first:.3} | {bench_last:.3} | {last:.3} | {:.2} |\n",
            row["secondsToAck"].as_f64().unwrap_or(f64::NAN),
            row["secondsToFirst"].as_f64().unwrap_or(f64::NAN),
            last / bench_last,
        ));
        rows.push(format!("{n},{bench_last:.4},{last:.4}"));
    }
    let csv = format!(
        "recipients,bench_last_s,simulated_last_s\n{}\n",
        rows.join("\n")
    );
    Outcome {
        name: "validation",
        markdown: md,
        files: vec![("validation.csv".into(), csv)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("2,500 new connections/s"), "2-500-new-connections-s");
        assert_eq!(slug("default"), "default");
    }

    #[test]
    fn the_model_reproduces_the_committed_bench_within_a_third() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/results/latest.json"
        ))
        .expect("the bench's committed results");
        let bench: serde_json::Value = serde_json::from_str(&text).unwrap();
        let out = validation(&bench, 1);
        let lines: Vec<&str> = out.files[0].1.lines().skip(1).collect();
        assert!(lines.len() >= 3, "{lines:?}");
        for line in lines {
            let cols: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
            let ratio = cols[2] / cols[1];
            assert!((0.67..1.5).contains(&ratio), "{line}: {ratio}");
        }
    }

    #[test]
    fn docs_scale_md_shows_the_tables_the_simulator_last_wrote() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
        let results = std::fs::read_to_string(format!("{root}/scale/results.md")).unwrap();
        let page = std::fs::read_to_string(format!("{root}/scale.md")).unwrap();
        let tables: Vec<String> = results
            .split("\n## ")
            .skip(1)
            .map(|section| {
                section
                    .lines()
                    .filter(|l| l.starts_with('|'))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        assert_eq!(tables.len(), 4, "validation, storm, announcement, chatting");
        for table in tables {
            assert!(
                page.contains(&table),
                "docs/scale.md does not show (run ./infra/local/simulate.sh and copy):\n{table}"
            );
        }
    }
}
