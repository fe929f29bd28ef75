//! The broadcast function: consumes fan-out jobs from the SQS FIFO queue and posts each job's
//! frame to every subscribed connection through the `@connections` API.
//!
//! Per job: a page of at most [`FANOUT_PER_RUN`] recipients (a bigger conversation continues
//! in a next-page job behind it, so no run's work grows with the conversation), read in a few
//! Queries of growing size ([`FIRST_READ`], then [`READ_GROWTH`] times the one before), each
//! read while the recipients of the one before are posted; posts run with bounded
//! concurrency; a 410 removes exactly that recipient's connection;
//! retryable failures are re-queued for just the recipients that failed (so the others are
//! not sent a duplicate), who must still be subscribed when the retry runs.
//!
//! The `@connections` client makes no retries of its own; a run does. A post failing for a
//! passing reason (5xx, a timeout) is called again up to [`POST_ATTEMPTS`] times after a
//! jittered pause, then goes to a retry job.
//! Throttling (429 from `@connections`: the account's API Gateway requests a second are
//! spent, docs/scale.md) is met with backoff, never with loss: the run ([`Pacer`]) pauses
//! every new call for a full-jitter delay that doubles with each pause in a row
//! ([`THROTTLE_BACKOFF_BASE`] to [`THROTTLE_BACKOFF_CAP`]) and halves the calls it lets in
//! flight, then tries the post again, up to [`MAX_THROTTLED_TRIES`] calls;
//! a recipient still throttled then (or at the run's deadline) goes to a continuation job,
//! which is not an attempt: throttling alone never sends a job to the dead-letter queue. The
//! continuation queues behind the conversation's later jobs, so such a recipient may receive
//! a later event first; clients order by `seq` (docs/protocol.md).
//!
//! Notifications: a message notifies at most [`MAX_NOTIFIED_MEMBERS`] members. In a
//! conversation with more members than that, only the members it @mentions are notified (at
//! most [`MAX_MENTIONS`]); everyone still sees it unread when they open the conversation.
//!
//! Order: a batch may hold several jobs of one conversation (one FIFO message group). They
//! run one after another, groups in parallel. A job that fails for a passing reason is
//! reported in `batchItemFailures` together with every later job of its group, so SQS
//! redelivers them in order. A job that can never succeed (malformed, or recipients still
//! failing after [`MAX_ATTEMPTS`]) goes straight to the dead-letter queue instead, so it does
//! not hold its conversation up.

use std::collections::{HashMap, HashSet};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use tracing::{error, info, warn};

use messaging_core::time::now_millis;

use messaging_aws::{
    notification_id, Audience, AwsError, BroadcastJob, BroadcastQueue, ConnectionsApi,
    MessagingTable, NewNotification, NotifySpec, PostOutcome, Recipients,
};
use messaging_core::notify::NotificationKind;
use messaging_core::protocol::{PresenceStatus, ServerFrame};
use messaging_core::{ConnectionId, ConversationId, UserId};

use crate::coalesce;
use crate::config::{self, ConfigError};
use crate::metrics::{self, Metric};
use crate::outbox;

/// Delivery attempts per recipient before the job goes to the dead-letter queue.
pub const MAX_ATTEMPTS: u32 = 4;
/// Time kept back from the invocation's deadline: for queueing the continuation, writing the
/// notifications and answering (the function's timeout is 30 s).
pub const DEADLINE_MARGIN_MILLIS: i64 = 5_000;
/// Message groups (conversations) of one SQS batch handled at the same time.
const GROUP_CONCURRENCY: usize = 4;
/// Most connections one run posts to; the rest go to a next-page job.
pub const FANOUT_PER_RUN: usize = 2_000;
/// The first read of a run's page of recipients; each later read is [`READ_GROWTH`] times the
/// one before (a page of 2,000: 250, 500, 1,000, 250), and runs while the one before is posted.
/// Posting a recipient takes two to three times as long as reading it (on moto ~190–400 µs
/// against ~65–180 µs, the bench's timelines; on DynamoDB a whole page is read in ~10–20 ms),
/// so posting starts after the first read instead of the whole page's and does not wait for
/// a read again (with 4 instead of 2, the bench's 1,000-connection timeline paused 130 ms
/// for the second read); a run of 2,000 makes four Queries instead of one, a conversation of
/// up to 250 connections still one.
pub const FIRST_READ: usize = 250;
/// How much larger each read of a run is than the one before.
pub const READ_GROWTH: usize = 2;
/// Calls of one post that fails for a passing reason (5xx, a timeout), within a run, before
/// its recipient goes to a retry job (the SDK's standard mode makes 3 too; the `@connections`
/// client has no SDK retries of its own: config::connections_api_at).
pub const POST_ATTEMPTS: u32 = 3;
/// The pause before a post's second call after a passing failure; doubled before its third.
pub const RETRY_BACKOFF_BASE: std::time::Duration = std::time::Duration::from_millis(100);
/// Tries of one post that API Gateway answers 429, within a run, before its recipient goes to
/// a continuation job.
pub const MAX_THROTTLED_TRIES: u32 = 8;
/// The pause after a first 429; each 429 in a row doubles it, up to [`THROTTLE_BACKOFF_CAP`]
/// (full jitter: a uniformly random time below it). Eight tries wait ~3.5 s on average.
pub const THROTTLE_BACKOFF_BASE: std::time::Duration = std::time::Duration::from_millis(50);
pub const THROTTLE_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_secs(2);
/// Most notifications one message writes: the members of a conversation up to this size.
pub const MAX_NOTIFIED_MEMBERS: usize = 200;
/// Most @mentions of one message that notify (the producer keeps no more either).
pub use messaging_core::notify::MAX_MENTIONS;

pub struct BroadcastService {
    pub table: MessagingTable,
    pub api: ConnectionsApi,
    pub queue: BroadcastQueue,
    pub dead_letters: BroadcastQueue,
    /// PostToConnection calls in flight per job.
    pub concurrency: usize,
    /// Most connections one run posts to ([`FANOUT_PER_RUN`]).
    pub fanout_per_run: usize,
    /// The first read of a run's page ([`FIRST_READ`]).
    pub first_read: usize,
}

/// What delivering a job takes. The broadcast function delivers every queued job with its own
/// (pages of [`FANOUT_PER_RUN`]); the route function delivers a new message's first page of
/// recipients itself (pages of its `DIRECT_FANOUT`), and queues only what is left: retries,
/// continuations and next pages, which this function then delivers as usual.
#[derive(Clone, Copy)]
pub struct Fanout<'a> {
    pub table: &'a MessagingTable,
    pub api: &'a ConnectionsApi,
    /// Where retries, continuations and next pages go.
    pub queue: &'a BroadcastQueue,
    /// PostToConnection calls in flight.
    pub concurrency: usize,
    /// Most connections one run posts to; the rest go to a next-page job.
    pub per_run: usize,
    /// The first read of a run's page; the next page is queued once the page is read, so with
    /// `first_read >= per_run` it is queued before the run's first post.
    pub first_read: usize,
}

impl BroadcastService {
    /// Its clients, to deliver a job with.
    pub fn fanout(&self) -> Fanout<'_> {
        Fanout {
            table: &self.table,
            api: &self.api,
            queue: &self.queue,
            concurrency: self.concurrency,
            per_run: self.fanout_per_run,
            first_read: self.first_read,
        }
    }

    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`, `BROADCAST_DLQ_URL`,
    /// `WEBSOCKET_MANAGEMENT_ENDPOINT`, `FANOUT_CONCURRENCY`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            api: config::connections_api(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            dead_letters: config::broadcast_dead_letter_queue(sdk)?,
            concurrency: config::fanout_concurrency()?,
            fanout_per_run: FANOUT_PER_RUN,
            first_read: FIRST_READ,
        })
    }
}

/// What one job did (logged, and returned for tests and benchmarks).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    pub recipients: usize,
    pub delivered: usize,
    pub pruned: usize,
    pub requeued: usize,
    /// Recipients left to a continuation job (the run's deadline came first, or API Gateway
    /// still throttled their post after [`MAX_THROTTLED_TRIES`]).
    pub continued: usize,
    /// Posts answered 429 (each try counted), every one tried again.
    pub throttled: usize,
    pub permanent_failures: usize,
    pub query_pages: usize,
    pub consumed_read_units: f64,
    pub expired: bool,
    /// Notifications written (offline members, mentions).
    pub notified: usize,
    /// A next-page job was queued for the subscribers after this run's page.
    pub next_page: bool,
    /// The part of the page this run did not reach (its time ran out, or a later read of the
    /// page failed) went to a new job, from the first subscriber not posted to.
    pub remainder: bool,
}

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("message body is not a broadcast job: {0}")]
    Malformed(String),
    #[error("recipients could not be read: {0}")]
    Recipients(AwsError),
    #[error("{0} recipients still failing after {MAX_ATTEMPTS} attempts")]
    Exhausted(usize),
    #[error("retry for {count} recipients could not be queued: {error}")]
    Requeue { count: usize, error: AwsError },
    #[error("the rest of the page could not be queued: {0}")]
    Remainder(AwsError),
}

impl JobError {
    /// Retrying the same job cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, JobError::Malformed(_) | JobError::Exhausted(_))
    }
}

/// Handles a batch with no deadline (the local gateway, tests).
pub async fn handle(service: &BroadcastService, event: SqsEvent) -> SqsBatchResponse {
    handle_until(service, event, None).await
}

/// Handles a batch, starting no post after `deadline - DEADLINE_MARGIN_MILLIS` (epoch ms; the
/// invocation's deadline): recipients not reached by then go into a continuation job, and jobs
/// not started are reported failed, for SQS to redeliver. A run never times out mid-job, so
/// nobody is sent a frame twice by a replay.
pub async fn handle_until(
    service: &BroadcastService,
    event: SqsEvent,
    deadline: Option<i64>,
) -> SqsBatchResponse {
    let cutoff = deadline.map(|d| d - DEADLINE_MARGIN_MILLIS);
    let failures: Vec<BatchItemFailure> = stream::iter(groups_in_order(event.records))
        .map(|records| handle_group(service, records, cutoff))
        .buffer_unordered(GROUP_CONCURRENCY)
        .flat_map(stream::iter)
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Splits a batch into its FIFO message groups, keeping the order inside each.
fn groups_in_order(records: Vec<SqsMessage>) -> Vec<Vec<SqsMessage>> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<SqsMessage>> = HashMap::new();
    for record in records {
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_else(|| record.message_id.clone().unwrap_or_default());
        if !groups.contains_key(&group) {
            order.push(group.clone());
        }
        groups.entry(group).or_default().push(record);
    }
    order
        .into_iter()
        .filter_map(|g| groups.remove(&g))
        .collect()
}

/// Runs one group's jobs in order; returns the message ids to report as failed. A typing or
/// presence event that a later job of the same batch and group supersedes ([`superseded`])
/// is not posted: it succeeds as it is.
async fn handle_group(
    service: &BroadcastService,
    records: Vec<SqsMessage>,
    cutoff: Option<i64>,
) -> Vec<String> {
    let mut failed = Vec::new();
    // Each body parsed once: the collapse, the batching and the run all read it.
    let jobs: Vec<Result<BroadcastJob, String>> = records
        .iter()
        .map(|r| {
            serde_json::from_str(r.body.as_deref().unwrap_or_default()).map_err(|e| e.to_string())
        })
        .collect();
    let skip = superseded(&jobs);
    if skip.iter().any(|s| *s) {
        info!(
            collapsed = skip.iter().filter(|s| **s).count(),
            jobs = records.len(),
            "typing and presence events superseded within the batch are not posted"
        );
    }
    let ids: Vec<String> = records
        .iter()
        .map(|r| r.message_id.clone().unwrap_or_default())
        .collect();
    // Jobs before this index are not tried together again (a batch too large to read at once).
    let mut alone_until = 0;
    let mut i = 0;
    while i < records.len() {
        if skip[i] && failed.is_empty() {
            i += 1;
            continue;
        }
        if !failed.is_empty() || past(cutoff) {
            // A later job must not overtake one that will be redelivered; a job there is no
            // time left for is redelivered whole.
            failed.push(ids[i].clone());
            i += 1;
            continue;
        }
        let end = if i >= alone_until {
            together(&jobs, &skip, i)
        } else {
            i
        };
        if end > i {
            let batch: Vec<&BroadcastJob> = (i..end)
                .filter(|&k| !skip[k])
                .filter_map(|k| jobs[k].as_ref().ok())
                .collect();
            match deliver_together(&service.fanout(), &batch, cutoff).await {
                Ok(true) => {
                    i = end;
                    continue;
                }
                // Too many subscribers to read at once: each job runs alone.
                Ok(false) => alone_until = end,
                Err(e) => {
                    warn!(error = %e, jobs = batch.len(), "batched delivery failed; SQS will redeliver its jobs");
                    failed.extend((i..end).map(|k| ids[k].clone()));
                    i = end;
                    continue;
                }
            }
        }
        let record = &records[i];
        let outcome = match &jobs[i] {
            Ok(job) => run_job_until(service, job, cutoff).await,
            Err(e) => Err(JobError::Malformed(e.clone())),
        };
        match outcome {
            Ok(_) => {}
            Err(e) if e.is_permanent() => dead_letter(service, record, &e)
                .await
                .unwrap_or_else(|()| failed.push(ids[i].clone())),
            Err(e) => {
                warn!(sqs_message_id = %ids[i], error = %e, "broadcast job failed; SQS will redeliver it");
                failed.push(ids[i].clone());
            }
        }
        i += 1;
    }
    failed
}

/// The end (exclusive) of the jobs from `start` that go out together: consecutive jobs of one
/// conversation that may join a batch ([`coalesce::joinable`]; superseded ones among them are
/// skipped), at least two posted, their frames within [`coalesce::MAX_BATCH_BYTES`]. `start`
/// when there are no such jobs.
fn together(jobs: &[Result<BroadcastJob, String>], skip: &[bool], start: usize) -> usize {
    let now = now_millis();
    let Some(conversation) = jobs[start]
        .as_ref()
        .ok()
        .and_then(|j| coalesce::joinable(j, now))
    else {
        return start;
    };
    let (mut end, mut posted, mut frames) = (start, 0, Vec::new());
    while end < jobs.len() {
        if skip[end] {
            end += 1;
            continue;
        }
        let Some(job) = jobs[end]
            .as_ref()
            .ok()
            .filter(|j| coalesce::joinable(j, now) == Some(conversation))
        else {
            break;
        };
        frames.push(job.frame.as_str());
        if coalesce::batch_bytes(frames.iter().copied()) > coalesce::MAX_BATCH_BYTES {
            break;
        }
        posted += 1;
        end += 1;
    }
    if posted >= 2 {
        end
    } else {
        start
    }
}

/// Delivers `jobs` (events of one conversation, each to all its subscribers but the one it
/// excludes) with one post per connection: its events in their order, as one BATCH frame when
/// more than one is for it. `Ok(false)`: the conversation has more subscribers than one read
/// (a run's page); nothing was posted, and the jobs are to run one by one. Connections a post
/// could not reach get what was for them in a retry job (a passing failure; the job's next
/// attempt) or a continuation (throttled, or out of time) of each job.
async fn deliver_together(
    fanout: &Fanout<'_>,
    jobs: &[&BroadcastJob],
    cutoff: Option<i64>,
) -> Result<bool, JobError> {
    let first = jobs[0];
    let read = first_read(fanout, first, fanout.per_run.max(1))
        .await
        .map_err(JobError::Recipients)?;
    // More than a page, or more than one shard to split over: each job runs alone.
    if read.more.is_some() || read.shards.is_some_and(|s| s > 1) {
        return Ok(false);
    }
    let targets: Vec<(ConnectionId, String, Vec<usize>)> = read
        .recipients
        .connections
        .into_iter()
        .filter_map(|(connection, _)| {
            let mine: Vec<usize> = (0..jobs.len())
                .filter(|&k| jobs[k].exclude.as_ref() != Some(&connection))
                .collect();
            if mine.is_empty() {
                return None;
            }
            let frames: Vec<&str> = mine.iter().map(|&k| jobs[k].frame.as_str()).collect();
            Some((connection, coalesce::frame_for(&frames), mine))
        })
        .collect();
    let pacer = Pacer::new(fanout.concurrency);
    let pacer = &pacer;
    let posted: Vec<(ConnectionId, Vec<usize>, Option<PostOutcome>)> = stream::iter(targets)
        .map(|(connection, frame, mine)| async move {
            if past(cutoff) {
                return (connection, mine, None);
            }
            let outcome = post_one(fanout, pacer, &connection, frame.as_bytes(), cutoff).await;
            (connection, mine, Some(outcome))
        })
        .buffer_unordered(fanout.concurrency)
        .collect()
        .await;
    // Per job: the connections to retry, and those to continue.
    let mut retry: Vec<Vec<ConnectionId>> = vec![Vec::new(); jobs.len()];
    let mut continued: Vec<Vec<ConnectionId>> = vec![Vec::new(); jobs.len()];
    let (mut posts, mut events, mut pruned) = (0usize, 0usize, 0usize);
    for (connection, mine, outcome) in posted {
        match outcome {
            Some(PostOutcome::Delivered) => {
                posts += 1;
                events += mine.len();
            }
            Some(PostOutcome::Gone) => {
                prune(fanout, first, &connection).await;
                pruned += 1;
            }
            Some(PostOutcome::Retryable(reason)) => {
                warn!(connection_id = %connection, %reason, "post failed; will retry");
                for k in mine {
                    retry[k].push(connection.clone());
                }
            }
            Some(PostOutcome::Permanent(reason)) => {
                error!(connection_id = %connection, %reason, "post failed permanently");
            }
            Some(PostOutcome::Throttled(_)) | None => {
                for k in mine {
                    continued[k].push(connection.clone());
                }
            }
        }
    }
    for (k, job) in jobs.iter().enumerate() {
        let (again, rest) = (
            std::mem::take(&mut retry[k]),
            std::mem::take(&mut continued[k]),
        );
        if !again.is_empty() {
            let count = again.len();
            fanout
                .queue
                .send(&job.retry(again))
                .await
                .map_err(|error| JobError::Requeue { count, error })?;
        }
        if !rest.is_empty() {
            let count = rest.len();
            fanout
                .queue
                .send(&job.continuation(rest))
                .await
                .map_err(|error| JobError::Requeue { count, error })?;
        }
    }
    metrics::emit(
        &first.tenant,
        &[
            (Metric::Deliveries, events as f64),
            (Metric::PrunedConnections, pruned as f64),
            (Metric::ThrottledPosts, pacer.throttled_tries() as f64),
        ],
    );
    info!(
        jobs = jobs.len(),
        posts,
        events,
        pruned,
        throttled = pacer.throttled_tries(),
        "batched delivery done"
    );
    Ok(true)
}

/// Which jobs of one group's batch a later job of the same batch supersedes: typing
/// (TYPING_START / TYPING_STOP) and presence (PRESENCE) are states, and a client needs only
/// the latest of each user's; the later job must have the same audience (recipients, page,
/// excluded connection) so that everyone the earlier one would reach gets the later one. Any
/// other event (messages, edits, reactions, members) is never skipped, and a skipped event's
/// place in the group's order does not matter: the state it carried is replaced.
fn superseded(jobs: &[Result<BroadcastJob, String>]) -> Vec<bool> {
    let keys: Vec<Option<String>> = jobs
        .iter()
        .map(|job| state_key(job.as_ref().ok()?))
        .collect();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut skip = vec![false; jobs.len()];
    for (i, key) in keys.iter().enumerate().rev() {
        if let Some(key) = key {
            skip[i] = !seen.insert(key.as_str());
        }
    }
    skip
}

/// The state a typing or presence job sets (kind, user, audience), or `None` for an event.
fn state_key(job: &BroadcastJob) -> Option<String> {
    if job.frame.len() > 1_024 || job.notify.is_some() {
        return None;
    }
    let frame: serde_json::Value = serde_json::from_str(&job.frame).ok()?;
    let kind = match frame["type"].as_str()? {
        "TYPING_START" | "TYPING_STOP" => "typing",
        "PRESENCE" => "presence",
        _ => return None,
    };
    let user = frame["userId"].as_str()?;
    let audience = serde_json::json!([
        job.group(),
        job.tenant,
        job.only,
        job.after,
        job.exclude,
        frame["conversationId"],
    ]);
    Some(format!("{kind}\u{0}{user}\u{0}{audience}"))
}

/// Moves a job that can never succeed to the dead-letter queue. `Err` when even that fails
/// (then SQS redelivers it, and its redrive policy moves it after `maxReceiveCount`).
async fn dead_letter(
    service: &BroadcastService,
    record: &SqsMessage,
    reason: &JobError,
) -> Result<(), ()> {
    let id = record.message_id.clone().unwrap_or_default();
    let group = record
        .attributes
        .get("MessageGroupId")
        .cloned()
        .unwrap_or_else(|| "unknown".into());
    let body = record.body.clone().unwrap_or_default();
    match service.dead_letters.send_raw(&body, &group, &id).await {
        Ok(()) => {
            error!(sqs_message_id = %id, error = %reason, "broadcast job moved to the dead-letter queue");
            if let Ok(job) = serde_json::from_str::<BroadcastJob>(&body) {
                metrics::emit(&job.tenant, &[(Metric::Errors, 1.0)]);
            }
            Ok(())
        }
        Err(e) => {
            error!(sqs_message_id = %id, error = %reason, dead_letter_error = %e, "job failed and could not be dead-lettered");
            Err(())
        }
    }
}

fn past(cutoff: Option<i64>) -> bool {
    cutoff.is_some_and(|c| now_millis() >= c)
}

/// Delivers one job, with no deadline.
pub async fn run_job(
    service: &BroadcastService,
    job: &BroadcastJob,
) -> Result<JobReport, JobError> {
    deliver(&service.fanout(), job, None).await
}

/// Delivers one job; no post starts after `cutoff` (epoch ms).
pub async fn run_job_until(
    service: &BroadcastService,
    job: &BroadcastJob,
    cutoff: Option<i64>,
) -> Result<JobReport, JobError> {
    deliver(&service.fanout(), job, cutoff).await
}

/// Delivers one job with `fanout`'s clients: the broadcast function for every queued job, the
/// route function for a message's first page of recipients (see [`Fanout`]). No post starts
/// after `cutoff` (epoch ms): the recipients left go into a continuation job, or, when the run
/// had not read its whole page yet, the rest of the page into a remainder job.
#[tracing::instrument(skip_all, fields(tenant = %job.tenant, group = %job.group(), attempt = job.attempt, lineage = %job.lineage))]
pub async fn deliver(
    fanout: &Fanout<'_>,
    job: &BroadcastJob,
    cutoff: Option<i64>,
) -> Result<JobReport, JobError> {
    let mut report = JobReport::default();
    if job.expires_at.is_some_and(|at| at <= now_millis()) {
        report.expired = true;
        info!("job expired before delivery; dropped");
        return Ok(report);
    }
    let frame = job.frame.as_bytes();
    // Users with a live connection right now (the sender's included): they see the event.
    let mut connected: HashSet<UserId> = HashSet::new();
    let mut live_connections: HashMap<UserId, Vec<ConnectionId>> = HashMap::new();
    let mut outcomes: Vec<(ConnectionId, PostOutcome)> = Vec::new();
    // Recipients read but not started when time ran out with nothing left to read: a
    // continuation job names them.
    let mut unstarted: Vec<ConnectionId> = Vec::new();
    // Where the rest of the page starts when the run stopped before reading or reaching all of
    // it (and had not queued the next page yet): a remainder job reads it again from there.
    let mut remainder: Option<Option<ConnectionId>> = None;
    let mut limit = fanout.first_read.clamp(1, fanout.per_run.max(1));
    let mut requested = limit;
    let mut read = first_read(fanout, job, limit)
        .await
        .map_err(JobError::Recipients)?;
    let split_job = split(fanout, job, read.shards).await?;
    let job = split_job.as_ref().unwrap_or(job);
    let sharded = job.shards.is_some_and(|s| s > 1);
    loop {
        report.query_pages += read.recipients.pages;
        report.consumed_read_units += read.recipients.consumed_read_units;
        for (connection, user) in &read.recipients.connections {
            connected.insert(user.clone());
            live_connections
                .entry(user.clone())
                .or_default()
                .push(connection.clone());
        }
        let targets: Vec<ConnectionId> = read
            .recipients
            .connections
            .into_iter()
            .map(|(connection, _)| connection)
            .filter(|c| job.exclude.as_ref() != Some(c))
            .filter(|c| job.only.as_ref().is_none_or(|only| only.contains(c)))
            .collect();
        report.recipients += targets.len();
        // Only a conversation's subscribers are read in parts.
        let follow = match (read.more, job.subscribers_of()) {
            (None, _) | (_, None) => None,
            // The page is read. The next page is queued before the rest of this one is
            // posted: when the route function runs the first page, the broadcast function
            // posts the rest meanwhile instead of after it (within the broadcast function, the
            // conversation's FIFO group holds it until this run ends). A run that cannot queue
            // it posts no more; read in one go (the route function's), it has posted nothing,
            // so a redelivered job sends no page twice. Its deduplication id is the same on
            // every run of this job, so SQS keeps one.
            (Some(after), Some(_)) if requested >= fanout.per_run => {
                fanout
                    .queue
                    .send(&job.next_page(after))
                    .await
                    .map_err(|error| JobError::Requeue {
                        count: fanout.per_run,
                        error,
                    })?;
                report.next_page = true;
                None
            }
            (Some(after), Some(conversation)) => {
                limit = (limit * READ_GROWTH).min(fanout.per_run - requested);
                requested += limit;
                Some((conversation, after))
            }
        };
        let posting = post_in_order(fanout, frame, targets, cutoff);
        let Some((conversation, after)) = follow else {
            let posted = posting.await;
            report.throttled += posted.throttled;
            outcomes.extend(posted.outcomes);
            unstarted = posted.unstarted;
            break;
        };
        // This read's recipients are posted while the next read is answered.
        let reading = read_page(fanout.table, job, conversation, Some(&after), limit);
        let (posted, next) = futures_util::future::join(posting, reading).await;
        report.throttled += posted.throttled;
        outcomes.extend(posted.outcomes);
        if !posted.unstarted.is_empty() {
            // Out of time: the rest of the page, from the first recipient not reached.
            remainder = Some(posted.last_started.or(read.start));
            break;
        }
        match next {
            Ok(next) => read = next,
            Err(e) => {
                // Those reached stay reached: the rest of the page goes to a new job, whose
                // run reads it again (and, failing there, is redelivered by SQS).
                warn!(error = %e, "a later read of the page failed; the rest of it goes to a new job");
                remainder = Some(Some(after));
                break;
            }
        }
    }
    // Everyone connected was read only if this run read the whole list.
    let whole_list = !report.next_page
        && remainder.is_none()
        && job.after.is_none()
        && job.only.is_none()
        && !sharded;

    let mut retry = Vec::new();
    for (connection, outcome) in outcomes {
        match outcome {
            PostOutcome::Delivered => report.delivered += 1,
            PostOutcome::Throttled(reason) => {
                warn!(connection_id = %connection, %reason, "still throttled; a continuation job tries again");
                unstarted.push(connection);
            }
            PostOutcome::Gone => {
                prune(fanout, job, &connection).await;
                report.pruned += 1;
            }
            PostOutcome::Retryable(reason) => {
                warn!(connection_id = %connection, %reason, "post failed; will retry");
                retry.push(connection);
            }
            PostOutcome::Permanent(reason) => {
                error!(connection_id = %connection, %reason, "post failed permanently");
                report.permanent_failures += 1;
            }
        }
    }
    let complete = retry.is_empty() && unstarted.is_empty() && remainder.is_none();
    // The job first queued notifies (a retry or continuation has the same members to tell).
    if let (Some(spec), Some(conversation), true) =
        (&job.notify, job.subscribers_of(), job.lineage.is_empty())
    {
        report.notified = notify_members(
            fanout,
            job,
            conversation,
            spec,
            whole_list.then_some(&connected),
            &live_connections,
        )
        .await;
    }
    if !unstarted.is_empty() {
        let count = unstarted.len();
        warn!(
            count,
            "no time left for every recipient; the rest continue in a new job"
        );
        fanout
            .queue
            .send(&job.continuation(unstarted))
            .await
            .map_err(|error| JobError::Requeue { count, error })?;
        report.continued = count;
    }
    if let Some(after) = remainder {
        warn!("the rest of the page continues in a new job");
        fanout
            .queue
            .send(&job.remainder(after))
            .await
            .map_err(JobError::Remainder)?;
        report.remainder = true;
    }
    if !retry.is_empty() {
        if job.attempt + 1 >= MAX_ATTEMPTS {
            return Err(JobError::Exhausted(retry.len()));
        }
        let count = retry.len();
        // The SDK already retried each post with backoff; the retry job goes to the back of
        // the conversation's group (FIFO queues have no per-message delay).
        fanout
            .queue
            .send(&job.retry(retry))
            .await
            .map_err(|error| JobError::Requeue { count, error })?;
        report.requeued = count;
    }
    let mut values = vec![
        (Metric::Deliveries, report.delivered as f64),
        (Metric::PrunedConnections, report.pruned as f64),
        (Metric::ThrottledPosts, report.throttled as f64),
        (Metric::NotificationsQueued, report.notified as f64),
    ];
    if let (Some(at), true) = (job.accepted_at, complete) {
        values.push((Metric::FanoutLatency, (now_millis() - at).max(0) as f64));
    }
    metrics::emit(&job.tenant, &values);
    info!(
        recipients = report.recipients,
        delivered = report.delivered,
        pruned = report.pruned,
        requeued = report.requeued,
        continued = report.continued,
        throttled = report.throttled,
        query_pages = report.query_pages,
        consumed_read_units = report.consumed_read_units,
        "broadcast done"
    );
    Ok(report)
}

/// One read of a run's recipients.
struct Read {
    recipients: Recipients,
    /// The read started after this subscriber (`None`: at the conversation's first).
    start: Option<ConnectionId>,
    /// The conversation's subscriptions go on after this one.
    more: Option<ConnectionId>,
    /// How many shards the conversation has (read with shard 0's first page).
    shards: Option<u16>,
}

/// A job's first read: a retry's recipients still subscribed, named users' connections, or
/// the first `limit` subscribers of its page.
async fn first_read(
    fanout: &Fanout<'_>,
    job: &BroadcastJob,
    limit: usize,
) -> Result<Read, AwsError> {
    let table = fanout.table;
    let whole = |recipients| Read {
        recipients,
        start: None,
        more: None,
        shards: None,
    };
    match (&job.audience, &job.only) {
        // A retry or continuation: those of its recipients still subscribed.
        (Audience::Subscribers(conversation), Some(only)) => Ok(whole(
            table
                .subscribed(&job.tenant, conversation, job.shard, only)
                .await?,
        )),
        (Audience::Subscribers(conversation), None) => {
            read_page(table, job, conversation, job.after.as_ref(), limit).await
        }
        (Audience::Users { users, .. }, _) => {
            Ok(whole(table.connections_of(&job.tenant, users).await?))
        }
    }
}

/// The next `limit` subscribers of the job's shard of its conversation after `after`.
async fn read_page(
    table: &MessagingTable,
    job: &BroadcastJob,
    conversation: &ConversationId,
    after: Option<&ConnectionId>,
    limit: usize,
) -> Result<Read, AwsError> {
    let page = table
        .recipients_page(&job.tenant, conversation, job.shard, after, limit)
        .await?;
    Ok(Read {
        recipients: page.recipients,
        start: after.cloned(),
        more: page.next,
        shards: page.shards,
    })
}

/// A job's split over its conversation's shards, when its first read found more than one
/// and it was not split before: the jobs of shards 1.. are queued (each in its own message
/// group: posted in parallel, in order within each shard) before anything is posted, so a run
/// that cannot queue them has posted nothing, and a replayed split queues jobs SQS drops as
/// duplicates (the same deduplication ids). Returns the job to go on with: shard 0's.
async fn split(
    fanout: &Fanout<'_>,
    job: &BroadcastJob,
    shards: Option<u16>,
) -> Result<Option<BroadcastJob>, JobError> {
    let Some(shards) = shards.filter(|_| job.shards.is_none()) else {
        return Ok(None);
    };
    let head = job.split(shards);
    for shard in 1..shards {
        fanout
            .queue
            .send(&head.for_shard(shard, shards))
            .await
            .map_err(|error| JobError::Requeue {
                count: usize::from(shards - shard),
                error,
            })?;
    }
    if shards > 1 {
        info!(shards, "split over the conversation's shards");
    }
    Ok(Some(head))
}

/// What posting one read's recipients did.
struct Posted {
    outcomes: Vec<(ConnectionId, PostOutcome)>,
    /// Not started: the cutoff came first (a suffix of the recipients, in their order).
    unstarted: Vec<ConnectionId>,
    /// The last recipient whose post started.
    last_started: Option<ConnectionId>,
    /// Tries answered 429.
    throttled: usize,
}

/// Posts `frame` to `targets`, starting the posts in their order until `cutoff`. A post
/// answered 429 is tried again after the run's pause ([`Pacer`]).
async fn post_in_order(
    fanout: &Fanout<'_>,
    frame: &[u8],
    targets: Vec<ConnectionId>,
    cutoff: Option<i64>,
) -> Posted {
    let mut targets = targets.into_iter();
    let mut last_started = None;
    let started = std::iter::from_fn(|| {
        if past(cutoff) {
            return None;
        }
        let next = targets.next()?;
        last_started = Some(next.clone());
        Some(next)
    });
    let pacer = Pacer::new(fanout.concurrency);
    let pacer = &pacer;
    let outcomes: Vec<(ConnectionId, PostOutcome)> = stream::iter(started)
        .map(|connection| async move {
            let outcome = post_one(fanout, pacer, &connection, frame, cutoff).await;
            (connection, outcome)
        })
        .buffer_unordered(fanout.concurrency)
        .collect()
        .await;
    Posted {
        outcomes,
        unstarted: targets.collect(),
        last_started,
        throttled: pacer.throttled_tries(),
    }
}

/// Posts `frame` to `connection` at the run's pace: a 429 is tried again after the run's
/// pause, up to [`MAX_THROTTLED_TRIES`] calls; a passing failure (5xx, a timeout) up to
/// [`POST_ATTEMPTS`] calls after a jittered pause of its own. Returns the last outcome.
async fn post_one(
    fanout: &Fanout<'_>,
    pacer: &Pacer,
    connection: &ConnectionId,
    frame: &[u8],
    cutoff: Option<i64>,
) -> PostOutcome {
    let (mut throttled, mut failed) = (0, 0);
    loop {
        pacer.admit().await;
        let outcome = fanout.api.post(connection, frame).await;
        pacer.answered(&outcome);
        match outcome {
            PostOutcome::Throttled(_) => {
                throttled += 1;
                if throttled >= MAX_THROTTLED_TRIES || past(cutoff) {
                    return outcome;
                }
            }
            // A 5xx or a timeout: this post alone waits and is tried again, as the SDK's
            // standard retries would (the client has none of its own).
            PostOutcome::Retryable(_) => {
                failed += 1;
                if failed >= POST_ATTEMPTS || past(cutoff) {
                    return outcome;
                }
                tokio::time::sleep(retry_pause(failed, random_unit())).await;
            }
            outcome => return outcome,
        }
    }
}

/// One run's pace against API Gateway's account throttle. A 429 says the account's requests
/// a second are spent, whichever connection it was for, so the whole run slows down (AIMD,
/// as TCP does): it pauses every new call for a uniformly random time below
/// `THROTTLE_BACKOFF_BASE · 2^(n-1)` (at most [`THROTTLE_BACKOFF_CAP`]) after the n-th pause
/// in a row, and halves the calls it lets in flight (at least one); each delivery ends the row
/// and lets `1/window` more in flight, back up to the run's concurrency. A 429 during a pause
/// (a call in flight when it began: one wave of them) adds neither. Many runs throttled at
/// once spread out instead of retrying together (full jitter). Simulated against the account
/// throttle in docs/scale.md (an announcement to 50,000: ~4,300 calls answered 429 instead of
/// ~159,000 with the pause alone).
struct Pacer {
    state: std::sync::Mutex<PacerState>,
    /// A call ended: a waiting one may start.
    freed: tokio::sync::Notify,
}

struct PacerState {
    resume_at: Option<tokio::time::Instant>,
    in_a_row: u32,
    window: f64,
    most: f64,
    in_flight: usize,
    tries: usize,
}

impl Pacer {
    fn new(concurrency: usize) -> Self {
        let most = concurrency.max(1) as f64;
        Pacer {
            state: std::sync::Mutex::new(PacerState {
                resume_at: None,
                in_a_row: 0,
                window: most,
                most,
                in_flight: 0,
                tries: 0,
            }),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// Waits for the run's pause to end and for a place in its window, and takes it.
    async fn admit(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let pause = {
                let mut state = self.state.lock().expect("pacer");
                let now = tokio::time::Instant::now();
                match state.resume_at {
                    Some(at) if at > now => Some(at),
                    _ if (state.in_flight as f64) < state.window.floor().max(1.0) => {
                        state.in_flight += 1;
                        return;
                    }
                    _ => None,
                }
            };
            match pause {
                Some(at) => tokio::time::sleep_until(at).await,
                None => freed.await,
            }
        }
    }

    /// A call admitted by [`Self::admit`] was answered.
    fn answered(&self, outcome: &PostOutcome) {
        let mut state = self.state.lock().expect("pacer");
        state.in_flight = state.in_flight.saturating_sub(1);
        match outcome {
            PostOutcome::Delivered => {
                state.in_a_row = 0;
                state.window = (state.window + 1.0 / state.window).min(state.most);
            }
            PostOutcome::Throttled(_) => {
                state.tries += 1;
                let now = tokio::time::Instant::now();
                if state.resume_at.is_none_or(|at| at <= now) {
                    state.in_a_row += 1;
                    state.resume_at = Some(now + throttle_pause(state.in_a_row, random_unit()));
                    state.window = (state.window / 2.0).max(1.0);
                }
            }
            _ => {}
        }
        drop(state);
        self.freed.notify_waiters();
    }

    fn throttled_tries(&self) -> usize {
        self.state.lock().expect("pacer").tries
    }
}

/// The pause after the `in_a_row`-th 429 in a row, `unit` uniform in [0, 1).
fn throttle_pause(in_a_row: u32, unit: f64) -> std::time::Duration {
    let ceiling = THROTTLE_BACKOFF_BASE
        .saturating_mul(1u32 << in_a_row.saturating_sub(1).min(16))
        .min(THROTTLE_BACKOFF_CAP);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// The pause before the `failed`+1-th call of a post that failed for a passing reason: full
/// jitter below `RETRY_BACKOFF_BASE · 2^(failed-1)`.
fn retry_pause(failed: u32, unit: f64) -> std::time::Duration {
    RETRY_BACKOFF_BASE
        .saturating_mul(1u32 << failed.saturating_sub(1).min(8))
        .mul_f64(unit.clamp(0.0, 1.0))
}

/// Uniform in [0, 1), from the operating system's random source (a v4 UUID's random bits).
fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Members who are not connected get a pending notification (email and the other channels,
/// settled by `notify-batch`); members @mentioned get one too, pushed live when connected.
/// At most [`MAX_NOTIFIED_MEMBERS`]: a bigger conversation notifies its @mentioned members
/// only. `connected`: the users connected, when the run saw every recipient (otherwise their
/// presence is read). Best effort: a failure is logged and counted, the delivery stands.
async fn notify_members(
    fanout: &Fanout<'_>,
    job: &BroadcastJob,
    conversation: &ConversationId,
    spec: &NotifySpec,
    connected: Option<&HashSet<UserId>>,
    live: &HashMap<UserId, Vec<ConnectionId>>,
) -> usize {
    match notifications_for(fanout, job, conversation, spec, connected).await {
        Ok(notifications) => store_notifications(fanout, notifications, live).await,
        Err(e) => {
            error!(error = %e, "members not read; no notifications for this message");
            0
        }
    }
}

/// The notifications a message makes: who, and whether each waits for the batch (pending) or
/// was pushed live.
async fn notifications_for(
    fanout: &Fanout<'_>,
    job: &BroadcastJob,
    conversation: &ConversationId,
    spec: &NotifySpec,
    connected: Option<&HashSet<UserId>>,
) -> Result<Vec<NewNotification>, AwsError> {
    let table = &fanout.table;
    let mentioned: Vec<UserId> = spec
        .mentioned
        .iter()
        .filter_map(|m| UserId::parse(m.as_str()).ok())
        .filter(|m| *m != spec.sender)
        .take(MAX_MENTIONS)
        .collect();
    let (members, more) = table
        .member_ids(&job.tenant, conversation, MAX_NOTIFIED_MEMBERS)
        .await?;
    let candidates: Vec<UserId> = if more {
        // A large conversation: only who it mentions.
        table
            .members_among(&job.tenant, conversation, &mentioned)
            .await?
    } else {
        members
    };
    let candidates: Vec<UserId> = candidates
        .into_iter()
        .filter(|m| *m != spec.sender)
        .collect();
    let online: HashSet<UserId> = match connected {
        Some(connected) => candidates
            .iter()
            .filter(|m| connected.contains(*m))
            .cloned()
            .collect(),
        None => table.online_among(&job.tenant, &candidates).await?,
    };
    let at = job.accepted_at.unwrap_or_else(now_millis);
    Ok(candidates
        .into_iter()
        .filter_map(|member| {
            let is_mentioned = mentioned.contains(&member);
            let is_online = online.contains(&member);
            if is_online && !is_mentioned {
                return None;
            }
            Some(NewNotification {
                id: notification_id(at, &job.id, &member),
                created_at: at,
                tenant: job.tenant.clone(),
                user: member,
                kind: if is_mentioned {
                    NotificationKind::Mention
                } else {
                    NotificationKind::NewMessage
                },
                data: spec.data.clone(),
                actor: Some(spec.sender.clone()),
                pending: !is_online,
            })
        })
        .collect())
}

/// Writes the notifications (each only once, whichever invocation tries) and pushes the live
/// ones to their users' sockets; how many were written now.
async fn store_notifications(
    fanout: &Fanout<'_>,
    notifications: Vec<NewNotification>,
    live: &HashMap<UserId, Vec<ConnectionId>>,
) -> usize {
    if notifications.is_empty() {
        return 0;
    }
    match fanout.table.put_notifications(&notifications).await {
        Ok(views) => {
            let mut written = 0;
            // Only what this invocation wrote: a redelivered job re-notifies nobody.
            for (new, view) in notifications.iter().zip(views) {
                let Some(view) = view else { continue };
                written += 1;
                if new.pending {
                    continue;
                }
                let frame = ServerFrame::Notification { notification: view }.to_json();
                for connection in live.get(&new.user).into_iter().flatten() {
                    let _ = fanout.api.post(connection, frame.as_bytes()).await;
                }
            }
            written
        }
        Err(e) => {
            error!(error = %e, count = notifications.len(), "notifications not stored");
            0
        }
    }
}

/// How long after its `$connect` a connection answered 410 is left alone. API Gateway answers
/// a post to a connection whose `$connect` has not finished with 410 too: the connection is
/// registered and subscribed (so a message sent meanwhile is posted to it), but not yet open.
/// Pruning it then would leave an open socket that nobody can reach (found by the client
/// SDK's end-to-end test: a reconnecting client, live again, received nothing). A connection
/// that really is gone that young is removed by its `$disconnect`, or by a 410 after this.
/// The message it missed is in history: clients catch up once connected.
pub const CONNECTING_GRACE_MILLIS: i64 = 30_000;

/// A 410 means API Gateway closed the connection: remove it, and its subscription to this
/// job's conversation even if the connection record itself was already gone.
async fn prune(fanout: &Fanout<'_>, job: &BroadcastJob, connection: &ConnectionId) {
    if let Ok(Some(record)) = fanout.table.connection(connection).await {
        if now_millis() - record.connected_at < CONNECTING_GRACE_MILLIS {
            info!(connection_id = %connection, "410 for a connection still connecting; kept");
            return;
        }
    }
    // Removing the connection removes the subscriptions its record lists; this one is deleted
    // separately only when the record was already gone or did not list it.
    let covered = match fanout.table.remove_connection(connection).await {
        Ok(Some(removed)) => {
            info!(connection_id = %connection, "pruned a gone connection");
            if removed.went_offline {
                let p = &removed.principal;
                outbox::announce_presence(
                    fanout.queue,
                    &p.tenant,
                    &p.user,
                    PresenceStatus::Offline,
                    &removed.presence,
                    None,
                )
                .await;
            }
            job.subscribers_of()
                .is_none_or(|c| removed.subscriptions.contains(c))
        }
        Ok(None) => false,
        Err(e) => {
            warn!(connection_id = %connection, error = %e, "could not prune a gone connection");
            false
        }
    };
    // A job for named users reached them through their connection items, not a subscription.
    let Some(conversation) = job.subscribers_of().filter(|_| !covered) else {
        return;
    };
    if let Err(e) = fanout
        .table
        .remove_subscription(&job.tenant, conversation, job.shard, connection)
        .await
    {
        warn!(connection_id = %connection, error = %e, "could not remove a gone subscription");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_throttle_pause_doubles_with_each_429_in_a_row_up_to_its_cap_and_is_jittered_below_it() {
        let ceiling = |n| throttle_pause(n, 1.0);
        assert_eq!(ceiling(1), Duration::from_millis(50));
        assert_eq!(ceiling(2), Duration::from_millis(100));
        assert_eq!(ceiling(5), Duration::from_millis(800));
        assert_eq!(ceiling(6), Duration::from_millis(1_600));
        assert_eq!(ceiling(7), THROTTLE_BACKOFF_CAP);
        assert_eq!(ceiling(u32::MAX), THROTTLE_BACKOFF_CAP);
        assert_eq!(throttle_pause(3, 0.0), Duration::ZERO);
        assert_eq!(throttle_pause(3, 0.5), Duration::from_millis(100));
        for _ in 0..1_000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
        // The eight tries' pauses on average: half of each ceiling.
        let mean: Duration = (1..=MAX_THROTTLED_TRIES)
            .map(|n| throttle_pause(n, 0.5))
            .sum();
        assert!(mean < Duration::from_secs(4), "{mean:?}");
    }

    #[test]
    fn a_post_that_failed_waits_below_100_then_200_ms() {
        assert_eq!(retry_pause(1, 1.0), Duration::from_millis(100));
        assert_eq!(retry_pause(2, 1.0), Duration::from_millis(200));
        assert_eq!(retry_pause(2, 0.25), Duration::from_millis(50));
        assert_eq!(retry_pause(1, 0.0), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_the_run_and_halves_its_window_and_deliveries_grow_it_back() {
        let throttled = PostOutcome::Throttled("429".into());
        let pacer = Pacer::new(8);
        let start = tokio::time::Instant::now();
        for _ in 0..8 {
            pacer.admit().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "8 in flight at once, no pause"
        );
        // The whole wave answers 429: one pause (below 50 ms), the window halved once.
        for _ in 0..8 {
            pacer.answered(&throttled);
        }
        {
            let state = pacer.state.lock().unwrap();
            assert_eq!((state.in_a_row, state.window, state.in_flight), (1, 4.0, 0));
        }
        assert_eq!(pacer.throttled_tries(), 8);
        // Four get in after the pause; the fifth waits for one of them to be answered.
        for _ in 0..4 {
            pacer.admit().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
        let fifth = tokio::time::timeout(Duration::from_secs(5), pacer.admit()).await;
        assert!(fifth.is_err(), "the window holds four");
        // A 429 after the pause: a longer pause, the window halved again.
        pacer.answered(&throttled);
        assert_eq!(pacer.state.lock().unwrap().window, 2.0);
        assert_eq!(pacer.state.lock().unwrap().in_a_row, 2);
        // Deliveries end the row and grow the window by 1/window each.
        for _ in 0..3 {
            pacer.answered(&PostOutcome::Delivered);
        }
        let state = pacer.state.lock().unwrap();
        assert_eq!(state.in_a_row, 0);
        assert!(state.window > 3.0 && state.window < 3.5, "{}", state.window);
    }

    fn record(frame: &str, exclude: Option<&str>) -> Result<BroadcastJob, String> {
        let mut job = BroadcastJob::new(
            "e",
            messaging_core::TenantId::parse("acme").unwrap(),
            messaging_aws::Audience::Subscribers(ConversationId::parse("general").unwrap()),
            frame.into(),
        );
        job.exclude = exclude.map(|c| ConnectionId::parse(c).unwrap());
        Ok(job)
    }

    #[test]
    fn only_the_latest_typing_and_presence_of_a_user_and_audience_in_a_batch_is_posted() {
        let start =
            r#"{"type":"TYPING_START","conversationId":"general","userId":"ann","expiresAt":1}"#;
        let stop = r#"{"type":"TYPING_STOP","conversationId":"general","userId":"ann"}"#;
        let bob =
            r#"{"type":"TYPING_START","conversationId":"general","userId":"bob","expiresAt":1}"#;
        let online = r#"{"type":"PRESENCE","userId":"ann","status":"online"}"#;
        let away = r#"{"type":"PRESENCE","userId":"ann","status":"away"}"#;
        let message = r#"{"type":"NEW_MESSAGE","data":{"userId":"ann"}}"#;
        let records = [
            record(start, Some("c1")),
            record(message, Some("c1")),
            record(bob, Some("c2")),
            record(stop, Some("c1")),
            record(online, None),
            record(message, Some("c1")),
            record(start, Some("c9")),
            record(away, None),
            record(stop, Some("c1")),
        ];
        assert_eq!(
            superseded(&records),
            [
                true,  // ann's start, then her stop (same connection excluded)
                false, // a message is an event, never skipped
                false, // bob's own state
                true,  // superseded by the last stop
                true,  // online, then away
                false, false, // from another connection of ann's: another audience
                false, false,
            ]
        );
        // A malformed body is never skipped (it is dead-lettered as before).
        let bad = Err("not json".to_owned());
        assert_eq!(superseded(&[bad, record(stop, None)]), [false, false]);
    }
}
