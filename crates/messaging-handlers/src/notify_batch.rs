//! `notify-batch`: settles the pending notifications, tenant by tenant.
//!
//! **Coordinator** (the EventBridge schedule, every 5 minutes): lists the tenants marked as
//! having pending notifications (a marker per tenant, written by whoever stores one) and puts
//! one work item per tenant on the notify queue; it also publishes the ActiveUsers gauge. Its
//! work is bounded by the number of tenants with work, never by how much work they have.
//!
//! **Worker** (the notify queue's event source, one tenant per item, at most `NOTIFY_WORKERS`
//! at once): reads at most [`PAGE_PER_SHARD`] pending notifications from each of the tenant's
//! shards, settles them user by user until its deadline, and hands what is left to a
//! continuation item at the back of the queue, behind every other tenant: a tenant with a
//! million pending notifications takes many passes and never holds the others up. A tenant
//! drained dry loses its marker (unless marked again meanwhile).
//!
//! Per user: what they already read (read marker at or past the message) and messages deleted
//! since are suppressed, and an edited message shows its current text; the rest goes out as
//! **one** email (a digest when there are several, the single notification's own email when
//! there is one), and as a push and a text message when they turned those on; quiet hours hold
//! email, push and SMS back until they end. Each channel's delivery of a batch is claimed with
//! a conditional write before sending, so a second run never sends it twice; a send that fails
//! releases its claim and is retried next run; a claim left by a run that died is taken over
//! after [`messaging_aws::CLAIM_EXPIRY_MILLIS`]. Emails respect SES's sending rate, split
//! between the workers, and carry a signed unsubscribe link.
//!
//! This module decides; the sending is `messaging_aws`'s ([`Mailer`], [`Sns`], [`Gauges`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use tracing::{error, info, warn};

use messaging_aws::table::PENDING_SHARDS;
use messaging_aws::{
    AwsError, Delivery, Gauges, Mailer, MessagingTable, Sns, StoredNotification, WorkQueue,
};
pub use messaging_core::jobs::{NotifyWork, ShardStart};
use messaging_core::notify::{Channel, NotificationKind, NotificationStatus, Preferences};
use messaging_core::signed::Signer;
use messaging_core::templates::{self, Email, NotificationData};
use messaging_core::time::{now_millis, parse_rfc3339_millis, rfc3339_millis};
use messaging_core::token::Contacts;
use messaging_core::{ConversationId, TenantId, UserId};

use crate::config::{self, ConfigError};
use crate::metrics::{self, Metric};
use crate::unsubscribe;

/// The seed's 5-minute batching window.
pub const DEFAULT_WINDOW_MILLIS: i64 = 5 * 60 * 1000;
/// Pending notifications a pass reads from each of a tenant's shards.
pub const PAGE_PER_SHARD: usize = 250;
/// A pass stops starting users this long before the invocation's deadline.
pub const DEADLINE_MARGIN_MILLIS: i64 = 20_000;
/// A drained tenant keeps its marker if it was marked this recently: the index the pass read
/// may not show a notification stored just before (GSIs are eventually consistent).
pub const MARKER_GRACE_MILLIS: i64 = 10_000;

#[derive(Clone)]
pub struct NotifyBatchService {
    pub table: MessagingTable,
    pub mailer: Mailer,
    pub sns: Sns,
    pub gauges: Gauges,
    /// Where the coordinator puts the tenants to settle, and a worker what it left.
    pub work: WorkQueue,
    /// Workers that may run at once (the queue's event source `MaximumConcurrency`): each
    /// sends at most `max_send_rate / workers` emails a second.
    pub workers: usize,
    /// The portal address, with `{clientId}` for the tenant.
    pub portal_url: String,
    /// The HTTP API's unsubscribe endpoint (`…/unsubscribe`).
    pub unsubscribe_url: String,
    /// Signs unsubscribe links (the functions' signing secret).
    pub signer: Signer,
    /// Emails per second at most, all workers together (the SES account's rate).
    pub max_send_rate: f64,
    /// Whether text messages go out (`SMS_ENABLED`).
    pub sms_enabled: bool,
    /// The batching window: a user's notifications go out together once the oldest is this
    /// old, so everything that arrived within it makes one digest.
    pub window_millis: i64,
    /// Pending notifications a pass reads from each shard ([`PAGE_PER_SHARD`]).
    pub page_per_shard: usize,
    /// How long a tenant's pending marker outlives its last notification
    /// ([`MARKER_GRACE_MILLIS`]).
    pub marker_grace_millis: i64,
}

impl NotifyBatchService {
    /// As the Lambda builds it: `TABLE_NAME`, `NOTIFY_QUEUE_URL`, `NOTIFY_WORKERS`,
    /// `SENDER_EMAIL`, `PORTAL_URL`, `HTTP_API_URL`, `CURSOR_SECRET_ID`, `SES_MAX_SEND_RATE`.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        // The secret's round trip first: the clients below are built while it is in flight.
        let signer = config::start_signer(sdk);
        Ok(Self {
            table: config::table(sdk)?,
            mailer: config::mailer(sdk)?,
            sns: config::sns(sdk),
            gauges: config::gauges(sdk),
            work: config::notify_queue(sdk)?,
            workers: config::notify_workers()?,
            portal_url: config::required("PORTAL_URL")?,
            unsubscribe_url: config::unsubscribe_url()?,
            signer: signer.await?,
            max_send_rate: config::ses_max_send_rate()?,
            sms_enabled: config::sms_enabled()?,
            window_millis: DEFAULT_WINDOW_MILLIS,
            page_per_shard: PAGE_PER_SHARD,
            marker_grace_millis: MARKER_GRACE_MILLIS,
        })
    }
}

/// What one run (or pass) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    /// Tenants with pending notifications (coordinator).
    pub tenants: usize,
    /// Work items the coordinator queued.
    pub queued: usize,
    /// Passes made over tenants, continuations included.
    pub passes: usize,
    pub pending: usize,
    pub users: usize,
    pub emails: usize,
    pub pushes: usize,
    pub texts: usize,
    /// Already read: settled without sending.
    pub suppressed: usize,
    /// No channel on (or no address): settled, in-app only.
    pub in_app_only: usize,
    /// Held by quiet hours (still pending).
    pub held: usize,
    /// Inside a window that is still open (still pending).
    pub waiting: usize,
    /// Channel deliveries that failed (retried next run).
    pub failed: usize,
    /// Channel deliveries an earlier run had already made, or is making.
    pub already_sent: usize,
    /// Claims of runs that died, taken over and sent.
    pub reclaimed: usize,
    /// Deliveries another run is making right now (left pending to it).
    pub in_progress: usize,
    /// Passes that ran out of time or page and left a continuation.
    pub continued: usize,
    /// Tenants drained dry whose marker was removed.
    pub drained: usize,
    /// Tenants whose ActiveUsers gauge was published.
    pub active_user_tenants: usize,
}

impl BatchReport {
    fn add(&mut self, other: &BatchReport) {
        self.passes += other.passes;
        self.pending += other.pending;
        self.users += other.users;
        self.emails += other.emails;
        self.pushes += other.pushes;
        self.texts += other.texts;
        self.suppressed += other.suppressed;
        self.in_app_only += other.in_app_only;
        self.held += other.held;
        self.waiting += other.waiting;
        self.failed += other.failed;
        self.already_sent += other.already_sent;
        self.reclaimed += other.reclaimed;
        self.in_progress += other.in_progress;
        self.continued += other.continued;
        self.drained += other.drained;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("pending notifications could not be read: {0}")]
    Store(#[from] AwsError),
}

/// The coordinator: one work item per tenant with pending notifications, and the gauge.
pub async fn handle(
    service: &NotifyBatchService,
    _event: CloudWatchEvent,
) -> Result<BatchReport, BatchError> {
    coordinate(service, now_millis()).await
}

/// Queues a first pass for every tenant marked as having pending notifications.
pub async fn coordinate(service: &NotifyBatchService, now: i64) -> Result<BatchReport, BatchError> {
    let tenants = service.table.tenants_with_pending().await?;
    let work: Vec<NotifyWork> = tenants.iter().cloned().map(NotifyWork::first).collect();
    service.work.send_all(&work).await?;
    let report = BatchReport {
        tenants: tenants.len(),
        queued: work.len(),
        active_user_tenants: publish_active_users(service, now).await,
        ..Default::default()
    };
    info!(tenants = report.tenants, "notification work queued");
    Ok(report)
}

/// The worker: one pass per work item (the event source sends one at a time); an item whose
/// pass failed on our side is reported back to SQS, which delivers it again (and to the dead
/// letter queue after 3 receives). `deadline`: epoch ms the invocation must end by.
pub async fn handle_work(
    service: &NotifyBatchService,
    event: SqsEvent,
    deadline: Option<i64>,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let cutoff = deadline.map(|d| d - DEADLINE_MARGIN_MILLIS);
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let work = match record
            .body
            .as_deref()
            .map(|body| NotifyWork::parse(body, PENDING_SHARDS))
        {
            Some(Ok(work)) => work,
            other => {
                error!(message_id = %id, error = ?other.map(|r| r.err()), "not a notify work item; left for the dead-letter queue");
                response.batch_item_failures.push(failure(id));
                continue;
            }
        };
        match pass(service, &work, now_millis(), cutoff).await {
            Ok((report, next)) => {
                if let Some(next) = next {
                    if let Err(e) = service.work.send(&next).await {
                        error!(tenant = %work.tenant, error = %e, "continuation not queued; the item is retried");
                        response.batch_item_failures.push(failure(id));
                        continue;
                    }
                }
                info!(tenant = %work.tenant, pass = work.pass, ?report, "notification pass done");
            }
            Err(e) => {
                error!(tenant = %work.tenant, error = %e, "notification pass failed; the item is retried");
                response.batch_item_failures.push(failure(id));
            }
        }
    }
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

/// A whole run in one process: every tenant with pending notifications, each pass after pass
/// until drained (tests, benchmarks, `stackpro-dev invoke`). Deployed, the coordinator and the
/// workers do the same through the notify queue.
pub async fn run(service: &NotifyBatchService, now: i64) -> Result<BatchReport, BatchError> {
    let tenants = service.table.tenants_with_pending().await?;
    let mut total = BatchReport {
        tenants: tenants.len(),
        ..Default::default()
    };
    for tenant in tenants {
        let mut work = NotifyWork::first(tenant);
        loop {
            let (report, next) = pass(service, &work, now, None).await?;
            total.add(&report);
            match next {
                Some(next) => work = next,
                None => break,
            }
        }
    }
    total.active_user_tenants = publish_active_users(service, now).await;
    info!(report = ?total, "notification batch done");
    Ok(total)
}

/// One pass over one tenant at `now`: reads a page of each shard, settles user by user until
/// `cutoff` (epoch ms), and returns what it did and the continuation, if any is left.
pub async fn pass(
    service: &NotifyBatchService,
    work: &NotifyWork,
    now: i64,
    cutoff: Option<i64>,
) -> Result<(BatchReport, Option<NotifyWork>), BatchError> {
    // The pass's clock (the run's `now`): a marker set before it, minus the grace, goes.
    let started = now;
    let tenant = &work.tenant;
    let mut by_user: BTreeMap<UserId, Vec<StoredNotification>> = BTreeMap::new();
    let mut more = Vec::new();
    let starts = work.starts(PENDING_SHARDS);
    for start in &starts {
        let (page, next) = service
            .table
            .pending_page(
                tenant,
                start.shard,
                start.after.as_ref(),
                service.page_per_shard,
            )
            .await?;
        for n in page {
            by_user.entry(n.user.clone()).or_default().push(n);
        }
        if let Some(next) = next {
            more.push(ShardStart {
                shard: start.shard,
                after: Some(next),
            });
        }
    }
    let mut run = Run {
        service,
        now,
        pacer: Pacer::new(service.max_send_rate / service.workers.max(1) as f64),
        report: BatchReport {
            passes: 1,
            pending: by_user.values().map(Vec::len).sum(),
            users: by_user.len(),
            ..Default::default()
        },
    };
    let mut out_of_time = false;
    for (done, (user, notifications)) in by_user.into_iter().enumerate() {
        // At least one user a pass, however late: every pass makes progress.
        if done > 0 && cutoff.is_some_and(|c| now_millis() >= c) {
            out_of_time = true;
            break;
        }
        if let Err(e) = run.settle_user(tenant, &user, notifications).await {
            error!(tenant = %tenant, user = %user, error = %e, "notifications of a user not settled; next run retries");
            run.report.failed += 1;
        }
    }
    let mut report = run.report;
    let next = if out_of_time {
        // Same starting points: what this pass settled is off the list, the rest is read again.
        Some(starts)
    } else if !more.is_empty() {
        Some(more)
    } else {
        None
    };
    let next = next.map(|shards| NotifyWork {
        tenant: tenant.clone(),
        shards,
        pass: work.pass + 1,
    });
    if next.is_some() {
        report.continued = 1;
    } else if report.held + report.waiting + report.failed + report.in_progress == 0 {
        // Nothing left here: the marker goes, unless the tenant was marked again meanwhile.
        if service
            .table
            .clear_pending_marker(tenant, started - service.marker_grace_millis)
            .await?
        {
            report.drained = 1;
        }
    }
    Ok((report, next))
}

/// One run's state: the clock, the email pace, what was done.
struct Run<'a> {
    service: &'a NotifyBatchService,
    now: i64,
    pacer: Pacer,
    report: BatchReport,
}

/// What one user is sent this run, on every channel they have on.
struct Digest {
    /// The notifications it covers; the first names the batch's delivery markers.
    ids: Vec<String>,
    email: Email,
    unsubscribe: String,
}

impl Run<'_> {
    /// Settles one user's pending notifications, oldest first.
    async fn settle_user(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        notifications: Vec<StoredNotification>,
    ) -> Result<(), AwsError> {
        let due = self.due(notifications);
        let unread = self.drop_stale(tenant, user, due).await?;
        if unread.is_empty() {
            return Ok(());
        }
        let preferences = self.service.table.preferences(tenant, user).await?;
        if preferences.is_quiet(self.now) {
            self.report.held += unread.len();
            return Ok(());
        }
        let contacts = self.service.table.contacts(tenant, user).await?;
        let mut channels = preferences.channels(&contacts);
        channels.retain(|c| *c != Channel::Sms || self.service.sms_enabled);
        if channels.is_empty() {
            for n in &unread {
                if self
                    .service
                    .table
                    .settle_notification(n, NotificationStatus::InAppOnly)
                    .await?
                {
                    self.report.in_app_only += 1;
                }
            }
            return Ok(());
        }
        let digest = self.digest(tenant, user, &unread);
        let mut all_out = true;
        for channel in channels {
            all_out &= self
                .deliver(tenant, user, &preferences, &contacts, &digest, channel)
                .await?;
        }
        if all_out {
            for n in &unread {
                self.service
                    .table
                    .settle_notification(n, NotificationStatus::Sent)
                    .await?;
            }
        }
        Ok(())
    }

    /// The notifications whose window has closed. The window opens with the oldest pending
    /// notification; it goes out once closed, with everything that arrived inside it (later
    /// ones wait for their own window).
    fn due(&mut self, notifications: Vec<StoredNotification>) -> Vec<StoredNotification> {
        let created = |n: &StoredNotification| parse_rfc3339_millis(&n.view.created_at);
        let opened = notifications.first().and_then(created).unwrap_or(self.now);
        if self.now - opened < self.service.window_millis {
            self.report.waiting += notifications.len();
            return Vec::new();
        }
        // A window of 0 (no batching) still takes what arrived at the instant it opened.
        let closes = opened + self.service.window_millis.max(1);
        let (due, later): (Vec<_>, Vec<_>) = notifications
            .into_iter()
            .partition(|n| created(n).is_none_or(|at| at < closes));
        self.report.waiting += later.len();
        due
    }

    /// Settles as suppressed what is no longer worth a message: what the user already read
    /// (read marker at or past it, or a conversation they left) and messages deleted since;
    /// the rest says what the message says now (an edit shows, never the first text).
    async fn drop_stale(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        notifications: Vec<StoredNotification>,
    ) -> Result<Vec<StoredNotification>, AwsError> {
        let table = &self.service.table;
        let about = |n: &StoredNotification| {
            let conversation = n.view.data.conversation_id.as_deref()?;
            Some((ConversationId::parse(conversation).ok()?, n.view.data.seq?))
        };
        let wanted: Vec<(ConversationId, u64)> = notifications.iter().filter_map(about).collect();
        let current = if wanted.is_empty() {
            HashMap::new()
        } else {
            table.messages(tenant, &wanted).await?
        };
        let mut markers: HashMap<ConversationId, Option<u64>> = HashMap::new();
        let mut unread = Vec::new();
        for mut n in notifications {
            let Some((conversation, seq)) = about(&n) else {
                unread.push(n);
                continue;
            };
            let marker = match markers.get(&conversation) {
                Some(marker) => *marker,
                None => {
                    let marker = table.read_marker(tenant, &conversation, user).await?;
                    markers.insert(conversation.clone(), marker);
                    marker
                }
            };
            let message = current.get(&(conversation, seq)).filter(|m| !m.deleted);
            match (marker, message) {
                (Some(read), Some(message)) if read < seq => {
                    n.view.data.message_preview = Some(templates::preview(&message.content.text));
                    unread.push(n);
                }
                _ => {
                    if table
                        .settle_notification(&n, NotificationStatus::Suppressed)
                        .await?
                    {
                        self.report.suppressed += 1;
                    }
                }
            }
        }
        Ok(unread)
    }

    fn digest(&self, tenant: &TenantId, user: &UserId, unread: &[StoredNotification]) -> Digest {
        let service = self.service;
        let items: Vec<(NotificationKind, NotificationData)> = unread
            .iter()
            .map(|n| (n.view.kind, n.view.data.clone()))
            .collect();
        let portal = service.portal_url.replace("{clientId}", tenant.as_str());
        let unsubscribe = unsubscribe::link(
            &service.signer,
            &service.unsubscribe_url,
            tenant,
            user,
            now_millis(),
        );
        Digest {
            ids: unread
                .iter()
                .map(|n| n.view.notification_id.clone())
                .collect(),
            email: templates::email(&items, tenant.as_str(), &portal, &unsubscribe),
            unsubscribe,
        }
    }

    /// Claims, sends and records one channel's delivery of the digest. `false` when the send
    /// failed (its claim is released: the next run tries again).
    async fn deliver(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        preferences: &Preferences,
        contacts: &Contacts,
        digest: &Digest,
        channel: Channel,
    ) -> Result<bool, AwsError> {
        let table = &self.service.table;
        let first = &digest.ids[0];
        match table
            .claim_delivery(tenant, user, first, channel, &digest.ids)
            .await?
        {
            Delivery::Claimed => {}
            Delivery::Reclaimed => {
                warn!(tenant = %tenant, user = %user, channel = channel.as_str(), "a run died holding this delivery; sending it now");
                self.report.reclaimed += 1;
            }
            Delivery::AlreadySent => {
                self.report.already_sent += 1;
                return Ok(true);
            }
            Delivery::InProgress => {
                // Another run claimed it moments ago and may be sending: never twice. Its
                // notifications stay pending until that run settles them.
                self.report.in_progress += 1;
                return Ok(false);
            }
        }
        match self.send(preferences, contacts, digest, channel).await {
            Ok(()) => {
                table.delivery_sent(tenant, user, first, channel).await?;
                match channel {
                    Channel::Email => self.report.emails += 1,
                    Channel::Push => self.report.pushes += 1,
                    Channel::Sms => self.report.texts += 1,
                }
                metrics::emit(tenant, &[(Metric::NotificationsSent, 1.0)]);
                Ok(true)
            }
            Err(reason) => {
                warn!(tenant = %tenant, user = %user, channel = channel.as_str(), %reason, "send failed; retried next run");
                table.release_delivery(tenant, user, first, channel).await?;
                self.report.failed += 1;
                Ok(false)
            }
        }
    }

    /// The digest on one channel: the email itself to the verified address, its subject and
    /// text as a push, its subject as a text message to the verified number.
    async fn send(
        &mut self,
        p: &Preferences,
        contacts: &Contacts,
        digest: &Digest,
        channel: Channel,
    ) -> Result<(), AwsError> {
        let service = self.service;
        let target = |address: &Option<String>| address.clone().unwrap_or_default();
        let email = &digest.email;
        match channel {
            Channel::Email => {
                self.pacer.wait().await;
                service
                    .mailer
                    .send(&target(&contacts.email), email, &digest.unsubscribe)
                    .await
            }
            Channel::Push => {
                service
                    .sns
                    .push(&target(&p.push_endpoint), &email.subject, &email.text)
                    .await
            }
            Channel::Sms => {
                service
                    .sns
                    .text(&target(&contacts.phone), &email.subject)
                    .await
            }
        }
    }
}

/// Keeps sends at most `rate` per second.
struct Pacer {
    interval: Duration,
    next: Option<tokio::time::Instant>,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: None,
        }
    }

    async fn wait(&mut self) {
        if let Some(next) = self.next {
            tokio::time::sleep_until(next).await;
        }
        self.next = Some(tokio::time::Instant::now() + self.interval);
    }
}

/// Publishes today's ActiveUsers per tenant (a gauge, not a per-message count). Returns the
/// number of tenants.
async fn publish_active_users(service: &NotifyBatchService, now: i64) -> usize {
    let day = &rfc3339_millis(now)[..10];
    let counts = match service.table.active_users(day).await {
        Ok(counts) => counts,
        Err(e) => {
            error!(error = %e, "active users not read");
            return 0;
        }
    };
    match service
        .gauges
        .put_per_tenant(metrics::ACTIVE_USERS, &counts)
        .await
    {
        Ok(()) => counts.len(),
        Err(e) => {
            error!(error = %e, "ActiveUsers not published");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_keeps_to_the_rate() {
        let mut pacer = Pacer::new(4.0);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        // The first goes at once, then one every 250 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }
}
