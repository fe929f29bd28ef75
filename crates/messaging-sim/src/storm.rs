//! A connect storm: every user of a large portal opening the app within a minute. Each
//! `$connect` takes one of API Gateway's new connections a second, a Lambda execution, and
//! its writes: today the user's connection item and presence (one transaction) and one
//! subscription per conversation, all in the tenant's partition; as designed the per-user
//! items in the user's own partition and each subscription in its conversation's shard.

use std::collections::HashMap;

use crate::engine::{Queue, Rng, Time};
use crate::model::{
    Design, Quotas, Times, CLIENT_BACKOFF_BASE, CLIENT_BACKOFF_CAP, SDK_ATTEMPTS, SDK_BACKOFF_BASE,
    SDK_BACKOFF_CAP,
};
use crate::quota::{Latencies, Pool, Series, TokenBucket};

/// Who connects.
#[derive(Clone, Debug)]
pub struct Storm {
    pub users: u32,
    /// Arrivals spread uniformly over this window.
    pub window: Time,
    /// Every user is a member of this many tenant-wide conversations (all users in each).
    pub company_wide: u32,
    /// And of this many team conversations of `team_size` members.
    pub teams_per_user: u32,
    pub team_size: u32,
}

#[derive(Clone, Debug)]
pub struct StormReport {
    pub design: &'static str,
    pub users: u32,
    pub connected: u32,
    /// First attempt → connected.
    pub latency: Latencies,
    /// Connects refused by API Gateway's new-connection rate (HTTP 429 on the upgrade).
    pub api_refused: u64,
    pub lambda_refused: u64,
    /// Item writes refused by a partition (ProvisionedThroughputExceeded / throttling).
    pub write_throttles: u64,
    /// Connects that failed after the SDK's retries (the client reconnects later).
    pub failed_connects: u64,
    /// Write units taken by the tenant's partition, and its share of its capacity.
    pub tenant_partition_units: f64,
    pub tenant_partition_utilisation: f64,
    /// Subscriptions of the first tenant-wide conversation written to each of its shards.
    pub items_per_shard: Vec<u64>,
    /// The busiest shard partition's share of its capacity.
    pub hottest_shard_utilisation: f64,
    pub peak_concurrency: u32,
    pub last_connected: Time,
    pub events: u64,
    /// Per bin: connected, refused by API Gateway, write throttles.
    pub series: Series,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Partition {
    Tenant,
    /// (conversation, shard); conversations `0..company_wide` are tenant-wide, the rest teams.
    Shard(u32, u32),
}

enum Ev {
    Attempt { user: u32, tries: u32 },
    Write { user: u32, tries: u32, sdk: u32 },
}

pub fn simulate(
    storm: &Storm,
    quotas: &Quotas,
    times: &Times,
    design: &Design,
    seed: u64,
    horizon: Time,
    bin: Time,
) -> StormReport {
    let mut rng = Rng::new(seed);
    let mut q: Queue<Ev> = Queue::default();
    let mut api = TokenBucket::new(
        "api-connect",
        quotas.api_new_connections_per_second,
        quotas.api_new_connections_burst,
    );
    let mut lambda = Pool::new("lambda", quotas.lambda_concurrency);
    let mut partitions: HashMap<Partition, TokenBucket> = HashMap::new();
    let wcu = quotas.partition_write_units;
    let teams = (u64::from(storm.users) * u64::from(storm.teams_per_user))
        .div_ceil(u64::from(storm.team_size.max(1))) as u32;
    let company_shards = design.shards(storm.users);
    let team_shards = design.shards(storm.team_size);
    let mut first_attempt = vec![0; storm.users as usize];
    // What each user still has to write: (partition, units).
    let mut owed: Vec<Vec<(Partition, f64)>> = vec![Vec::new(); storm.users as usize];
    let mut report = StormReport {
        design: design.name,
        users: storm.users,
        connected: 0,
        latency: Latencies::default(),
        api_refused: 0,
        lambda_refused: 0,
        write_throttles: 0,
        failed_connects: 0,
        tenant_partition_units: 0.0,
        tenant_partition_utilisation: 0.0,
        items_per_shard: vec![0; company_shards as usize],
        hottest_shard_utilisation: 0.0,
        peak_concurrency: 0,
        last_connected: 0,
        events: 0,
        series: Series::new(bin, &["connected", "refused_connects", "write_throttles"]),
    };
    for user in 0..storm.users {
        let at = rng.below(storm.window.max(1));
        first_attempt[user as usize] = at;
        q.at(at, Ev::Attempt { user, tries: 0 });
    }
    // A user's writes, in the order connect makes them.
    let writes_of = |user: u32, rng: &mut Rng| -> Vec<(Partition, f64)> {
        let mut w = Vec::new();
        if design.tenant_writes_per_connect > 0.0 {
            w.push((Partition::Tenant, design.tenant_writes_per_connect));
        }
        for c in 0..storm.company_wide {
            let p = if design.shard_size == 0 {
                Partition::Tenant
            } else {
                // The connection id's hash picks the shard.
                Partition::Shard(c, rng.below(u64::from(company_shards)) as u32)
            };
            w.push((p, 1.0));
        }
        for t in 0..storm.teams_per_user {
            let team = (user.wrapping_mul(2_654_435_761).wrapping_add(t * 7_919)) % teams.max(1);
            let p = if design.shard_size == 0 {
                Partition::Tenant
            } else {
                Partition::Shard(
                    storm.company_wide + team,
                    rng.below(u64::from(team_shards)) as u32,
                )
            };
            w.push((p, 1.0));
        }
        w
    };
    while let Some(ev) = q.pop() {
        let now = q.now;
        if now > horizon {
            break;
        }
        match ev {
            Ev::Attempt { user, tries } => {
                let refused = if !api.take(now, 1.0) {
                    report.api_refused += 1;
                    report.series.add(now, 1, 1.0);
                    true
                } else if !lambda.acquire() {
                    report.lambda_refused += 1;
                    true
                } else {
                    false
                };
                if refused {
                    let wait = rng.full_jitter(CLIENT_BACKOFF_BASE, CLIENT_BACKOFF_CAP, tries);
                    q.after(
                        wait,
                        Ev::Attempt {
                            user,
                            tries: tries + 1,
                        },
                    );
                } else {
                    owed[user as usize] = writes_of(user, &mut rng);
                    let took = rng.around(times.connect);
                    q.after(
                        took,
                        Ev::Write {
                            user,
                            tries,
                            sdk: 0,
                        },
                    );
                }
            }
            Ev::Write { user, tries, sdk } => {
                let mut left = Vec::new();
                for (p, units) in std::mem::take(&mut owed[user as usize]) {
                    let bucket = partitions
                        .entry(p)
                        .or_insert_with(|| TokenBucket::new("partition", wcu, wcu));
                    if bucket.take(now, units) {
                        if let Partition::Shard(0, s) = p {
                            report.items_per_shard[s as usize] += 1;
                        }
                        continue;
                    }
                    report.write_throttles += 1;
                    report.series.add(now, 2, 1.0);
                    left.push((p, units));
                }
                let took = rng.around(times.write);
                if left.is_empty() {
                    let done = now + took;
                    report.connected += 1;
                    report.latency.record(done - first_attempt[user as usize]);
                    report.last_connected = report.last_connected.max(done);
                    report.series.add(done, 0, 1.0);
                    lambda.release();
                } else if sdk + 1 < SDK_ATTEMPTS {
                    owed[user as usize] = left;
                    let wait = took + rng.full_jitter(SDK_BACKOFF_BASE, SDK_BACKOFF_CAP, sdk);
                    q.after(
                        wait,
                        Ev::Write {
                            user,
                            tries,
                            sdk: sdk + 1,
                        },
                    );
                } else {
                    // The connect fails ($connect answers 500); the client tries again.
                    report.failed_connects += 1;
                    lambda.release();
                    let wait =
                        took + rng.full_jitter(CLIENT_BACKOFF_BASE, CLIENT_BACKOFF_CAP, tries);
                    q.after(
                        wait,
                        Ev::Attempt {
                            user,
                            tries: tries + 1,
                        },
                    );
                }
            }
        }
    }
    let period = q.now.min(horizon).max(1);
    if design.shard_size == 0 {
        // Today the tenant-wide conversation's subscriptions are one range of the tenant's
        // partition: one "shard".
        report.items_per_shard =
            vec![u64::from(report.connected) * u64::from(storm.company_wide.min(1))];
    }
    if let Some(t) = partitions.get(&Partition::Tenant) {
        report.tenant_partition_units = t.granted;
        report.tenant_partition_utilisation = t.utilisation(period);
    }
    report.hottest_shard_utilisation = partitions
        .iter()
        .filter(|(p, _)| matches!(p, Partition::Shard(..)))
        .map(|(_, b)| b.utilisation(period))
        .fold(0.0, f64::max);
    report.peak_concurrency = lambda.peak;
    report.events = q.handled;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{MILLI, SECOND};

    fn storm(users: u32) -> Storm {
        Storm {
            users,
            window: 60 * SECOND,
            company_wide: 1,
            teams_per_user: 2,
            team_size: 50,
        }
    }

    fn run(s: &Storm, quotas: &Quotas, design: &Design) -> StormReport {
        simulate(
            s,
            quotas,
            &Times::aws(),
            design,
            1,
            1_200 * SECOND,
            500 * MILLI,
        )
    }

    #[test]
    fn a_storm_within_every_quota_connects_everyone_at_once() {
        // 5,000 users in a minute: 83 connects a second, 4 write units each in the tenant's
        // partition today (333 of its 1,000), the subscriptions in their shards.
        let r = run(&storm(5_000), &Quotas::aws_default(), &Design::today());
        assert_eq!(r.connected, 5_000);
        assert_eq!(r.write_throttles, 0);
        assert_eq!((r.api_refused, r.failed_connects), (0, 0));
        let mut l = r.latency.clone();
        assert!(l.percentile(99.0) < 0.1, "{}", l.percentile(99.0));
    }

    #[test]
    fn the_tenant_partition_binds_before_api_gateway_until_the_per_user_items_leave_it() {
        // 20,000 users in a minute: 333 connects a second, under API Gateway's 500.
        let s = storm(20_000);
        let before = run(&s, &Quotas::aws_default(), &Design::before_shards());
        let today = run(&s, &Quotas::aws_default(), &Design::today());
        let sharded = run(&s, &Quotas::aws_default(), &Design::user_partitions());
        // Before shards 7 units a connect went into the tenant's partition of 1,000 (at most
        // ~143 connects a second); today's shards take the subscriptions out, and its 4 units
        // (connection item and presence) still make 1,333 a second. Connects that fail after
        // their writes were throttled come back and write again.
        assert!(before.write_throttles > today.write_throttles);
        assert!(before.connected <= today.connected);
        assert!(today.write_throttles > 0 && today.failed_connects > 0);
        assert!(
            before.tenant_partition_utilisation > 0.9 && today.tenant_partition_utilisation > 0.5,
            "{} then {}",
            before.tenant_partition_utilisation,
            today.tenant_partition_utilisation
        );
        assert!(
            before.connected < 20_000 || before.last_connected > 140 * SECOND,
            "{} connected, the last at {}",
            before.connected,
            before.last_connected
        );
        // Today everyone gets in, but later than they arrive (the arrivals end at 60 s).
        assert!(
            today.last_connected > 61 * SECOND,
            "{} connected, the last at {}",
            today.connected,
            today.last_connected
        );
        // With per-user partitions: no partition throttles, nobody refused, everyone in as
        // they arrive.
        assert_eq!(sharded.connected, 20_000);
        assert_eq!((sharded.write_throttles, sharded.api_refused), (0, 0));
        assert!(
            sharded.last_connected < 61 * SECOND,
            "{}",
            sharded.last_connected
        );
        assert_eq!(sharded.items_per_shard.len(), 10);
        assert_eq!(sharded.items_per_shard.iter().sum::<u64>(), 20_000);
        let (lo, hi) = (
            *sharded.items_per_shard.iter().min().unwrap(),
            *sharded.items_per_shard.iter().max().unwrap(),
        );
        assert!(hi < lo * 13 / 10, "shards even within 30 %: {lo}..{hi}");
    }

    #[test]
    fn over_api_gateways_connect_rate_clients_back_off_and_all_get_in() {
        let s = storm(20_000);
        let quotas = Quotas {
            api_new_connections_per_second: 200.0,
            api_new_connections_burst: 200.0,
            ..Quotas::aws_default()
        };
        let r = run(&s, &quotas, &Design::user_partitions());
        assert_eq!(r.connected, 20_000);
        assert!(r.api_refused > 0);
        // 20,000 at 200 a second: no sooner than 100 s.
        assert!(r.last_connected >= 99 * SECOND, "{}", r.last_connected);
    }
}
