//! What the simulator is told: AWS's quotas ([`Quotas`]), how long each call takes
//! ([`Times`], from the bench or from AWS) and how the system is built ([`Design`]: the code
//! as it is today, or as docs/scale.md proposes).

use crate::engine::{ms, Time, MILLI, SECOND};

/// AWS quotas, per account and region unless said otherwise. Sources in docs/scale.md.
#[derive(Clone, Debug)]
pub struct Quotas {
    /// API Gateway account-level throttle: requests a second shared by every API of the
    /// account, each inbound WebSocket message and each `@connections` POST included.
    pub api_requests_per_second: f64,
    pub api_burst: f64,
    /// New WebSocket connections a second, across all WebSocket APIs of the account.
    pub api_new_connections_per_second: f64,
    pub api_new_connections_burst: f64,
    /// Lambda concurrent executions, shared by every function of the account.
    pub lambda_concurrency: u32,
    /// One DynamoDB partition: write units a second (1 KB writes).
    pub partition_write_units: f64,
    /// One DynamoDB partition: read units a second (4 KB strongly consistent reads; an
    /// eventually consistent read costs half).
    pub partition_read_units: f64,
}

impl Quotas {
    /// The defaults of a new account.
    pub fn aws_default() -> Self {
        Quotas {
            api_requests_per_second: 10_000.0,
            api_burst: 5_000.0,
            api_new_connections_per_second: 500.0,
            // Not published; one second's worth.
            api_new_connections_burst: 500.0,
            lambda_concurrency: 1_000,
            partition_write_units: 1_000.0,
            partition_read_units: 3_000.0,
        }
    }

    /// Nothing but the machine: the bench's local run has no quota to meet.
    pub fn unlimited() -> Self {
        Quotas {
            api_requests_per_second: 1e12,
            api_burst: 1e12,
            api_new_connections_per_second: 1e12,
            api_new_connections_burst: 1e12,
            lambda_concurrency: u32::MAX,
            partition_write_units: 1e12,
            partition_read_units: 1e12,
        }
    }
}

/// Mean service times (each draw uniform within ±50 % of its mean).
#[derive(Clone, Debug)]
pub struct Times {
    /// route, from the frame's arrival to its first post: token check, membership GetItem,
    /// the message's transaction, the sequence counter.
    pub route: Time,
    /// `$connect` before its writes: the token check, the user's conversations (a GSI Query)
    /// and their memberships (a consistent BatchGetItem).
    pub connect: Time,
    /// One DynamoDB write call (a transaction or a batch).
    pub write: Time,
    /// One Query page of subscriptions: fixed part, and per item read.
    pub query: Time,
    pub query_per_item: Time,
    /// One `@connections` POST answered 200, and one answered 429.
    pub post: Time,
    pub throttled_post: Time,
    /// A fan-out job sent to the queue until a broadcast run starts on it.
    pub queue_hop: Time,
}

impl Times {
    /// In an AWS region, warm functions (assumptions in docs/scale.md, "Service times").
    pub fn aws() -> Self {
        Times {
            route: ms(20.0),
            connect: ms(15.0),
            write: ms(8.0),
            query: ms(8.0),
            query_per_item: 2,
            post: ms(12.0),
            throttled_post: ms(4.0),
            queue_hop: ms(40.0),
        }
    }

    /// This machine's bench (bench/results/latest.json): moto, the local gateway and every
    /// client on two cores. Calibrated from the bench's component measurements, not from the
    /// end-to-end times it is compared with (docs/scale.md, "Validation").
    ///
    /// - `post`: the local gateway delivers about 4,000 posts a second whatever the
    ///   concurrency (its "raw gateway deliveries/s" column, 3,685-4,561 at 100-5,000
    ///   recipients); at the bench's concurrency of 64, one post holds its slot 64/4,000 s.
    /// - `query_per_item`: the "recipient Query on moto" column over the recipients (61 µs a
    ///   recipient at 1,000, 70 µs at 5,000).
    /// - `route`: the time to the first delivery of a 2-recipient message (25 ms), less one
    ///   post and one small Query.
    /// - `queue_hop`: the local gateway's queue poller (moto's SQS, polled every 20 ms).
    pub fn local_bench() -> Self {
        Times {
            route: ms(22.0),
            connect: ms(10.0),
            write: ms(3.0),
            query: ms(1.5),
            query_per_item: 66,
            post: 64 * SECOND / 4_000,
            throttled_post: MILLI,
            queue_hop: ms(30.0),
        }
    }
}

/// What happens when API Gateway answers a post with 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnThrottle {
    /// The code before 2026-12-03: the SDK's standard retries (3 attempts, full jitter from 1 s, out of a
    /// retry quota of 500 tokens at 5 a retry), then the job is queued again for the
    /// recipients that failed, and after 4 attempts it goes to the dead-letter queue: those
    /// recipients lose the event.
    Requeue,
    /// The code since 2026-12-03 (broadcast's `Pacer`; the `@connections` client makes no SDK
    /// retries): a 429 pauses every new call of the run for a full jitter below
    /// 50 ms · 2^(n-1) (at most 2 s) after the n-th pause in a row and halves the calls the
    /// run lets in flight (a 429 during a pause adds neither); a delivery ends the row and lets
    /// 1/window more in flight. The post is tried again, up to 8 calls; a recipient still
    /// throttled then, or at the run's deadline, goes to a continuation job, which is not an
    /// attempt. No recipient is dropped for throttling.
    Backoff,
}

/// How the system is built.
#[derive(Clone, Debug)]
pub struct Design {
    pub name: &'static str,
    /// route posts a message to this many recipients itself, before its ACK.
    pub direct_fanout: u32,
    /// Most recipients of one broadcast run; more go to a next-page job.
    pub per_run: u32,
    /// Posts in flight per run.
    pub post_concurrency: u32,
    /// First read of a run, each next read this many times larger.
    pub first_read: u32,
    pub read_growth: u32,
    /// Subscriptions per shard: a conversation of `n` recipients keeps them in
    /// `ceil(n / shard_size)` partitions and fans out one job per shard, each its own message
    /// group, in parallel. 0: today's one subscription range in the tenant's partition and
    /// one message group per conversation.
    pub shard_size: u32,
    /// Write units a connect spends in the tenant's partition besides its subscriptions
    /// (today: the user's connection item and presence, both in a transaction: 2 + 2; and a
    /// user's first connect of the day counts it active: 1 on the user item, 1 on the day's
    /// counter — every connect of a morning storm is a first).
    pub tenant_writes_per_connect: f64,
    pub on_throttle: OnThrottle,
    /// How long a route may post before it queues the rest, and a broadcast run before it
    /// hands the rest to a continuation.
    pub direct_budget: Time,
    pub run_budget: Time,
}

impl Design {
    /// The code as it is (crates/messaging-handlers: route's DIRECT_FANOUT 128 and
    /// DIRECT_BUDGET_MILLIS, broadcast's FANOUT_PER_RUN, FIRST_READ, READ_GROWTH,
    /// MAX_ATTEMPTS and its backoff on 429; the template's FanoutConcurrency 64;
    /// messaging_core::shards' DEFAULT_SHARD_SIZE): subscriptions in shards of 2,000, one
    /// fan-out job per shard in a message group of its own; the user's connection item and
    /// presence still in the tenant's partition.
    pub fn today() -> Self {
        Design {
            name: "today",
            direct_fanout: 128,
            per_run: 2_000,
            post_concurrency: 64,
            first_read: 250,
            read_growth: 2,
            shard_size: 2_000,
            tenant_writes_per_connect: 6.0,
            on_throttle: OnThrottle::Backoff,
            direct_budget: 3 * SECOND,
            run_budget: 25 * SECOND,
        }
    }

    /// The code before subscription shards: every subscription of a conversation in the
    /// tenant's partition, one message group per conversation (what the bench measured).
    /// Its active-users set, rewritten whole by every connect (1 WCU per KB of the set), is
    /// not counted: this design did better here than it did on AWS.
    pub fn before_shards() -> Self {
        Design {
            name: "before shards",
            shard_size: 0,
            tenant_writes_per_connect: 4.0,
            ..Design::today()
        }
    }

    /// The code before 2026-12-03: a 429 after the SDK's retries queued the recipient again
    /// as a new attempt, and the fourth went to the dead-letter queue.
    pub fn before_backoff() -> Self {
        Design {
            name: "before (requeue on 429)",
            on_throttle: OnThrottle::Requeue,
            ..Design::before_shards()
        }
    }

    /// As docs/scale.md proposes next: today's shards, the per-user items (connection,
    /// presence, the day it was counted active) in the user's own partition key, and the
    /// day's active-users counter in shards of its own.
    pub fn user_partitions() -> Self {
        Design {
            name: "+ per-user partitions",
            tenant_writes_per_connect: 0.0,
            ..Design::today()
        }
    }

    /// How many shards a conversation of `recipients` has.
    pub fn shards(&self, recipients: u32) -> u32 {
        if self.shard_size == 0 {
            1
        } else {
            recipients.div_ceil(self.shard_size).max(1)
        }
    }
}

/// SDK standard retry mode (aws-smithy-runtime's defaults).
pub const SDK_ATTEMPTS: u32 = 3;
pub const SDK_BACKOFF_BASE: Time = SECOND;
pub const SDK_BACKOFF_CAP: Time = 20 * SECOND;
pub const SDK_RETRY_QUOTA: f64 = 500.0;
pub const SDK_RETRY_COST: f64 = 5.0;
/// broadcast's MAX_ATTEMPTS: runs of one job before the dead-letter queue.
pub const JOB_ATTEMPTS: u32 = 4;
/// broadcast's THROTTLE_BACKOFF_BASE, THROTTLE_BACKOFF_CAP and MAX_THROTTLED_TRIES.
pub const BACKOFF_BASE: Time = 50 * MILLI;
pub const BACKOFF_CAP: Time = 2 * SECOND;
pub const MAX_THROTTLED_TRIES: u32 = 8;
/// The client SDK's reconnect backoff (clients/messaging-client/src/backoff.ts).
pub const CLIENT_BACKOFF_BASE: Time = SECOND;
pub const CLIENT_BACKOFF_CAP: Time = 30 * SECOND;
/// A subscription item (keys, connection id, user, ttl): bytes read per recipient.
pub const SUBSCRIPTION_BYTES: f64 = 200.0;
