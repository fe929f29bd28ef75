//! `notify-batch`: every 5 minutes (EventBridge schedule), settles the pending notifications.
//!
//! Per user: what they already read (read marker at or past the message) and messages deleted
//! since are suppressed, and an edited message shows its current text; the rest goes out as **one** email (a digest when there are several, the single notification's
//! own email when there is one), and as a push and a text message when they turned those on;
//! quiet hours hold email, push and SMS back until they end. Each channel's delivery of a
//! batch is claimed with a conditional write before sending, so a second run (or a run after a
//! crash) never sends it twice; a send that fails releases its claim and is retried next run.
//! Emails respect SES's sending rate and carry a signed unsubscribe link. The run also
//! publishes the ActiveUsers gauge per tenant through CloudWatch's PutMetricData.
//!
//! This module decides; the sending is `messaging_aws`'s ([`Mailer`], [`Sns`], [`Gauges`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use tracing::{error, info, warn};

use messaging_aws::{AwsError, Delivery, Gauges, Mailer, MessagingTable, Sns, StoredNotification};
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

#[derive(Clone)]
pub struct NotifyBatchService {
    pub table: MessagingTable,
    pub mailer: Mailer,
    pub sns: Sns,
    pub gauges: Gauges,
    /// The portal address, with `{clientId}` for the tenant.
    pub portal_url: String,
    /// The HTTP API's unsubscribe endpoint (`…/unsubscribe`).
    pub unsubscribe_url: String,
    /// Signs unsubscribe links (the functions' CURSOR_SECRET).
    pub signer: Signer,
    /// Emails per second at most.
    pub max_send_rate: f64,
    /// Whether text messages go out (`SMS_ENABLED`).
    pub sms_enabled: bool,
    /// The batching window: a user's notifications go out together once the oldest is this
    /// old, so everything that arrived within it makes one digest.
    pub window_millis: i64,
}

impl NotifyBatchService {
    /// As the Lambda builds it: `TABLE_NAME`, `SENDER_EMAIL`, `PORTAL_URL`, `HTTP_API_URL`,
    /// `CURSOR_SECRET`, `SES_MAX_SEND_RATE`.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            mailer: config::mailer(sdk)?,
            sns: config::sns(sdk),
            gauges: config::gauges(sdk),
            portal_url: config::required("PORTAL_URL")?,
            unsubscribe_url: config::unsubscribe_url()?,
            signer: config::signer(sdk).await?,
            max_send_rate: config::ses_max_send_rate()?,
            sms_enabled: config::sms_enabled()?,
            window_millis: DEFAULT_WINDOW_MILLIS,
        })
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
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
    /// Channel deliveries an earlier run had already made (or may have: never twice).
    pub already_sent: usize,
    /// Tenants whose ActiveUsers gauge was published.
    pub active_user_tenants: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("pending notifications could not be read: {0}")]
    Store(#[from] AwsError),
}

pub async fn handle(
    service: &NotifyBatchService,
    _event: CloudWatchEvent,
) -> Result<BatchReport, BatchError> {
    run(service, now_millis()).await
}

/// One run at `now`.
pub async fn run(service: &NotifyBatchService, now: i64) -> Result<BatchReport, BatchError> {
    let pending = service.table.pending_notifications().await?;
    let mut by_user: BTreeMap<(TenantId, UserId), Vec<StoredNotification>> = BTreeMap::new();
    for n in pending.iter().cloned() {
        by_user
            .entry((n.tenant.clone(), n.user.clone()))
            .or_default()
            .push(n);
    }
    let mut run = Run {
        service,
        now,
        pacer: Pacer::new(service.max_send_rate),
        report: BatchReport {
            pending: pending.len(),
            users: by_user.len(),
            ..Default::default()
        },
    };
    for ((tenant, user), notifications) in by_user {
        if let Err(e) = run.settle_user(&tenant, &user, notifications).await {
            error!(tenant = %tenant, user = %user, error = %e, "notifications of a user not settled; next run retries");
            run.report.failed += 1;
        }
    }
    let mut report = run.report;
    report.active_user_tenants = publish_active_users(service, now).await;
    info!(?report, "notification batch done");
    Ok(report)
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
        let closes = opened + self.service.window_millis;
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
            Delivery::AlreadySent => {
                self.report.already_sent += 1;
                return Ok(true);
            }
            Delivery::Interrupted => {
                // A run stopped between claiming and recording: it may have sent. Never twice.
                warn!(tenant = %tenant, user = %user, channel = channel.as_str(), "an earlier run was interrupted mid-send; not sending again");
                self.report.already_sent += 1;
                return Ok(true);
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
