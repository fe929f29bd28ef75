//! `notify-batch`: every 5 minutes (EventBridge schedule), settles the pending notifications.
//!
//! Per user: what they already read (read marker at or past the message) is suppressed; the
//! rest goes out as **one** email (a digest when there are several, the single notification's
//! own email when there is one), and as a push and a text message when they turned those on;
//! quiet hours hold email, push and SMS back until they end. Each channel's delivery of a
//! batch is claimed with a conditional write before sending, so a second run (or a run after a
//! crash) never sends it twice; a send that fails releases its claim and is retried next run.
//! Emails respect SES's sending rate and carry a signed unsubscribe link. The run also
//! publishes the ActiveUsers gauge per tenant through CloudWatch's PutMetricData.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use tracing::{error, info, warn};

use messaging_core::cursor::CursorSigner;
use messaging_core::notify::{NotificationKind, Preferences};
use messaging_core::templates::{self, Email};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ConversationId, TenantId, UserId};
use messaging_store::{Delivery, MessagingTable, StoreError, StoredNotification};

use crate::config::{self, ConfigError};
use crate::metrics::{self, Metric};

/// SES's default sandbox rate; production accounts raise it (SES_MAX_SEND_RATE).
pub const DEFAULT_SEND_RATE: f64 = 1.0;
/// The cursor-signer scope of unsubscribe links.
pub const UNSUBSCRIBE_SCOPE: &str = "unsubscribe:email";

#[derive(Clone)]
pub struct NotifyBatchService {
    pub table: MessagingTable,
    pub email: aws_sdk_sesv2::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The verified SES identity mail comes from.
    pub sender: String,
    /// The portal address, with `{clientId}` for the tenant.
    pub portal_url: String,
    /// The HTTP API's unsubscribe endpoint (`…/unsubscribe`).
    pub unsubscribe_url: String,
    /// Signs unsubscribe links (the functions' CURSOR_SECRET).
    pub signer: CursorSigner,
    /// Emails per second at most.
    pub max_send_rate: f64,
    /// The batching window: a user's notifications go out together once the oldest is this
    /// old, so everything that arrived within it makes one digest.
    pub window_millis: i64,
}

/// The seed's 5-minute window.
pub const DEFAULT_WINDOW_MILLIS: i64 = 5 * 60 * 1000;

impl NotifyBatchService {
    /// As the Lambda builds it: `TABLE_NAME`, `SENDER_EMAIL`, `PORTAL_URL`, `HTTP_API_URL`,
    /// `CURSOR_SECRET`, `SES_MAX_SEND_RATE`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let rate: f64 = std::env::var("SES_MAX_SEND_RATE")
            .ok()
            .map(|r| r.parse())
            .transpose()
            .map_err(|e| ConfigError::Invalid {
                name: "SES_MAX_SEND_RATE",
                reason: format!("{e}"),
            })?
            .unwrap_or(DEFAULT_SEND_RATE);
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(ConfigError::Invalid {
                name: "SES_MAX_SEND_RATE",
                reason: "it must be a positive number of emails per second".into(),
            });
        }
        Ok(Self {
            table: config::table(sdk)?,
            email: aws_sdk_sesv2::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            sender: config::required("SENDER_EMAIL")?,
            portal_url: config::required("PORTAL_URL")?,
            unsubscribe_url: format!(
                "{}/unsubscribe",
                config::required("HTTP_API_URL")?.trim_end_matches('/')
            ),
            signer: config::cursor_signer()?,
            max_send_rate: rate,
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
    Store(#[from] StoreError),
}

pub async fn handle(
    service: &NotifyBatchService,
    _event: CloudWatchEvent,
) -> Result<BatchReport, BatchError> {
    run(service, now_millis()).await
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Channel {
    Email,
    Push,
    Sms,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Email => "EMAIL",
            Channel::Push => "PUSH",
            Channel::Sms => "SMS",
        }
    }
}

/// One run at `now`.
pub async fn run(service: &NotifyBatchService, now: i64) -> Result<BatchReport, BatchError> {
    let pending = service.table.pending_notifications().await?;
    let mut report = BatchReport {
        pending: pending.len(),
        ..Default::default()
    };
    let mut by_user: BTreeMap<(TenantId, UserId), Vec<StoredNotification>> = BTreeMap::new();
    for n in pending {
        by_user
            .entry((n.tenant.clone(), n.user.clone()))
            .or_default()
            .push(n);
    }
    report.users = by_user.len();
    let mut pacer = Pacer::new(service.max_send_rate);
    for ((tenant, user), notifications) in by_user {
        if let Err(e) = settle_user(
            service,
            &tenant,
            &user,
            notifications,
            now,
            &mut pacer,
            &mut report,
        )
        .await
        {
            error!(tenant = %tenant, user = %user, error = %e, "notifications of a user not settled; next run retries");
            report.failed += 1;
        }
    }
    report.active_user_tenants = publish_active_users(service, now).await;
    info!(?report, "notification batch done");
    Ok(report)
}

async fn settle_user(
    service: &NotifyBatchService,
    tenant: &TenantId,
    user: &UserId,
    notifications: Vec<StoredNotification>,
    now: i64,
    pacer: &mut Pacer,
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    // The window opens with the oldest pending notification; it goes out once closed, with
    // everything that arrived inside it (later ones wait for their own window).
    let opened = notifications
        .first()
        .and_then(|n| messaging_core::time::parse_rfc3339_millis(&n.view.created_at))
        .unwrap_or(now);
    if now - opened < service.window_millis {
        report.waiting += notifications.len();
        return Ok(());
    }
    let (notifications, later): (Vec<_>, Vec<_>) = notifications.into_iter().partition(|n| {
        messaging_core::time::parse_rfc3339_millis(&n.view.created_at)
            .is_none_or(|at| at < opened + service.window_millis)
    });
    report.waiting += later.len();
    // What they already read is not worth a message (nor is a conversation they left).
    let mut read: HashMap<ConversationId, Option<u64>> = HashMap::new();
    let mut live = Vec::new();
    for n in notifications {
        let conversation = n
            .view
            .data
            .conversation_id
            .as_deref()
            .and_then(|c| ConversationId::parse(c).ok());
        let (Some(conversation), Some(seq)) = (conversation, n.view.data.seq) else {
            live.push(n);
            continue;
        };
        if !read.contains_key(&conversation) {
            let marker = service
                .table
                .member(tenant, &conversation, user)
                .await?
                .map(|m| m.last_read_seq);
            read.insert(conversation.clone(), marker);
        }
        match read[&conversation] {
            Some(marker) if marker < seq => live.push(n),
            _ => {
                if service.table.settle_notification(&n, "suppressed").await? {
                    report.suppressed += 1;
                }
            }
        }
    }
    if live.is_empty() {
        return Ok(());
    }
    let preferences = service.table.preferences(tenant, user).await?;
    if preferences.is_quiet(now) {
        report.held += live.len();
        return Ok(());
    }
    let channels = channels(&preferences);
    if channels.is_empty() {
        for n in &live {
            if service.table.settle_notification(n, "in_app_only").await? {
                report.in_app_only += 1;
            }
        }
        return Ok(());
    }
    let ids: Vec<String> = live
        .iter()
        .map(|n| n.view.notification_id.clone())
        .collect();
    let first = ids[0].clone();
    let items: Vec<(NotificationKind, templates::NotificationData)> = live
        .iter()
        .map(|n| (n.view.kind, n.view.data.clone()))
        .collect();
    let portal = service.portal_url.replace("{clientId}", tenant.as_str());
    let token = service
        .signer
        .issue(tenant, user, UNSUBSCRIBE_SCOPE, "email");
    let unsubscribe = format!("{}?c={tenant}&u={user}&t={token}", service.unsubscribe_url);
    let email = templates::email(&items, tenant.as_str(), &portal, &unsubscribe);
    let mut all_out = true;
    for channel in channels {
        match service
            .table
            .claim_delivery(tenant, user, &first, channel.name(), &ids)
            .await?
        {
            Delivery::AlreadySent => {
                report.already_sent += 1;
                continue;
            }
            Delivery::Interrupted => {
                // A run stopped between claiming and recording: it may have sent. Never twice.
                warn!(tenant = %tenant, user = %user, channel = channel.name(), "an earlier run was interrupted mid-send; not sending again");
                report.already_sent += 1;
                continue;
            }
            Delivery::Claimed => {}
        }
        let sent = match channel {
            Channel::Email => {
                pacer.wait().await;
                send_email(service, &preferences, &email, &unsubscribe).await
            }
            Channel::Push => send_push(service, &preferences, &email).await,
            Channel::Sms => send_sms(service, &preferences, &email).await,
        };
        match sent {
            Ok(()) => {
                service
                    .table
                    .delivery_sent(tenant, user, &first, channel.name())
                    .await?;
                match channel {
                    Channel::Email => report.emails += 1,
                    Channel::Push => report.pushes += 1,
                    Channel::Sms => report.texts += 1,
                }
                metrics::emit(tenant, &[(Metric::NotificationsSent, 1.0)]);
            }
            Err(reason) => {
                warn!(tenant = %tenant, user = %user, channel = channel.name(), %reason, "send failed; retried next run");
                service
                    .table
                    .release_delivery(tenant, user, &first, channel.name())
                    .await?;
                report.failed += 1;
                all_out = false;
            }
        }
    }
    if all_out {
        for n in &live {
            service.table.settle_notification(n, "sent").await?;
        }
    }
    Ok(())
}

fn channels(p: &Preferences) -> Vec<Channel> {
    let mut channels = Vec::new();
    if p.email && p.email_address.is_some() {
        channels.push(Channel::Email);
    }
    if p.push && p.push_endpoint.is_some() {
        channels.push(Channel::Push);
    }
    if p.sms && p.phone_number.is_some() {
        channels.push(Channel::Sms);
    }
    channels
}

async fn send_email(
    service: &NotifyBatchService,
    p: &Preferences,
    email: &Email,
    unsubscribe: &str,
) -> Result<(), String> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};
    let to = p.email_address.clone().unwrap_or_default();
    let text = |data: &str| {
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(|e| e.to_string())
    };
    let header = |name: &str, value: &str| {
        MessageHeader::builder()
            .name(name)
            .value(value)
            .build()
            .map_err(|e| e.to_string())
    };
    let message = Message::builder()
        .subject(text(&email.subject)?)
        .body(
            Body::builder()
                .html(text(&email.html)?)
                .text(text(&email.text)?)
                .build(),
        )
        // One-click unsubscribe (RFC 8058), as mailbox providers expect of bulk mail.
        .headers(header("List-Unsubscribe", &format!("<{unsubscribe}>"))?)
        .headers(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click",
        )?)
        .build();
    service
        .email
        .send_email()
        .from_email_address(&service.sender)
        .destination(Destination::builder().to_addresses(to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())
}

async fn send_push(
    service: &NotifyBatchService,
    p: &Preferences,
    email: &Email,
) -> Result<(), String> {
    let target = p.push_endpoint.clone().unwrap_or_default();
    let request = service
        .sns
        .publish()
        .target_arn(target)
        .subject(truncate(&email.subject, 100));
    publish(request.message(truncate(&email.text, 2000))).await
}

async fn send_sms(
    service: &NotifyBatchService,
    p: &Preferences,
    email: &Email,
) -> Result<(), String> {
    let number = p.phone_number.clone().unwrap_or_default();
    publish(
        service
            .sns
            .publish()
            .phone_number(number)
            .message(truncate(&email.subject, 140)),
    )
    .await
}

async fn publish(
    request: aws_sdk_sns::operation::publish::builders::PublishFluentBuilder,
) -> Result<(), String> {
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_sns::error::DisplayErrorContext(e).to_string())
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
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

/// Publishes today's ActiveUsers per tenant (a gauge, not a per-message count: one
/// PutMetricData per 20 tenants per run). Returns the number of tenants.
async fn publish_active_users(service: &NotifyBatchService, now: i64) -> usize {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let day = &rfc3339_millis(now)[..10];
    let counts = match service.table.active_users(day).await {
        Ok(counts) => counts,
        Err(e) => {
            error!(error = %e, "active users not read");
            return 0;
        }
    };
    let data: Vec<MetricDatum> = counts
        .iter()
        .map(|(tenant, users)| {
            MetricDatum::builder()
                .metric_name("ActiveUsers")
                .dimensions(
                    Dimension::builder()
                        .name("TenantId")
                        .value(tenant.as_str())
                        .build(),
                )
                .unit(StandardUnit::Count)
                .value(*users as f64)
                .build()
        })
        .collect();
    for chunk in data.chunks(20) {
        if let Err(e) = service
            .cloudwatch
            .put_metric_data()
            .namespace(metrics::NAMESPACE)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
        {
            error!(error = %aws_sdk_cloudwatch::error::DisplayErrorContext(e), "ActiveUsers not published");
            return 0;
        }
    }
    counts.len()
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

    #[test]
    fn channels_need_both_the_switch_and_an_address() {
        let mut p = Preferences::default();
        assert!(channels(&p).is_empty(), "email on but no address");
        p.email_address = Some("bob@example.com".into());
        p.push = true;
        assert_eq!(channels(&p), [Channel::Email]);
        p.push_endpoint = Some("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1".into());
        p.sms = true;
        p.phone_number = Some("+14155550123".into());
        assert_eq!(channels(&p), [Channel::Email, Channel::Push, Channel::Sms]);
        p.email = false;
        assert_eq!(channels(&p), [Channel::Push, Channel::Sms]);
    }
}
