//! Notifications: the in-app list, the batch job's pending work list, preferences, the
//! per-channel delivery markers that make the batch idempotent, and active users per day.

use std::collections::HashMap;

use futures_util::StreamExt;

use aws_sdk_dynamodb::types::AttributeValue;

use messaging_core::notify::{Channel, NotificationKind, NotificationStatus, Preferences};
use messaging_core::protocol::NotificationView;
use messaging_core::templates::{self, NotificationData};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{TenantId, UserId};

use super::items::{DeliveryItem, DeliveryState, NotificationItem, PreferencesItem};
use super::requests::{
    decode_all, epoch_seconds, expires_in, key_map, key_of, n, s, with_prefix, Item,
};
use super::table::{self, Key, GSI1, GSI1PK, GSI1SK, PENDING_SHARDS, PENDING_TENANT_SHARDS};
use super::MessagingTable;
use crate::error::{applied, classify, corrupt, AwsError};

/// How long a notification stays in the in-app list.
const NOTIFICATION_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;
/// How long a delivery marker is kept (far longer than any retry).
const DELIVERY_TTL_SECONDS: i64 = 7 * 24 * 60 * 60;
/// How long a tenant's active-users count of a day is kept (the gauge reads today's).
const ACTIVE_USERS_TTL_SECONDS: i64 = 8 * 24 * 60 * 60;
/// The user item's attribute naming the last UTC day the user was counted active.
const ACTIVE_DAY: &str = "activeDay";
/// The tenant's day item's count of its active users.
const ACTIVE_COUNT: &str = "count";

/// Notifications written at the same time by one call.
pub const PUT_CONCURRENCY: usize = 16;

/// A notification to store.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Its id: [`notification_id`] of the event it is about, so that the same event never
    /// notifies a user twice.
    pub id: String,
    /// Epoch ms of the event (ids and the in-app list sort by it).
    pub created_at: i64,
    pub tenant: TenantId,
    pub user: UserId,
    pub kind: NotificationKind,
    pub data: NotificationData,
    /// Who caused it (the sender, commenter, sharer): an erasure of them removes it, as it
    /// quotes them.
    pub actor: Option<UserId>,
    /// Pending (for email, push and SMS) or already settled (`live`: pushed to an open socket).
    pub pending: bool,
}

pub use messaging_core::jobs::PendingCursor;

/// A stored notification with who it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNotification {
    pub tenant: TenantId,
    pub user: UserId,
    pub view: NotificationView,
    pub status: NotificationStatus,
}

impl From<NotificationItem> for StoredNotification {
    fn from(item: NotificationItem) -> Self {
        Self {
            tenant: item.client_id,
            user: item.user,
            view: item.notification,
            status: item.status,
        }
    }
}

impl NewNotification {
    /// A fresh time-ordered id, for a notification no retry can write again (one written by
    /// the synchronous request that caused it).
    pub fn fresh_id() -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }
}

/// The id of `user`'s notification about event `event_id` at `at_millis`: 13 hex digits of the
/// time (so ids sort by time, like the in-app list) and 19 of SHA-256 over the event and user
/// (so the same event gives the same id, whichever invocation writes it).
pub fn notification_id(at_millis: i64, event_id: &str, user: &UserId) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{event_id}\n{user}").as_bytes(),
    );
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{:013x}{}", at_millis.max(0), &hex[..19])
}

/// A claim older than this belongs to a run that died: the batch's worker times out after
/// 4 minutes and SQS redelivers its work after 6, so nobody still holds it.
pub const CLAIM_EXPIRY_MILLIS: i64 = 15 * 60 * 1000;

/// What a delivery marker says about an earlier run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Nobody has tried: this run owns the delivery now.
    Claimed,
    /// A run claimed it over [`CLAIM_EXPIRY_MILLIS`] ago and never recorded a send: it died,
    /// almost certainly before sending. This run owns it now (a lost digest is worse than the
    /// rare duplicate of a run that died between sending and recording).
    Reclaimed,
    /// An earlier run sent it.
    AlreadySent,
    /// Another run claimed it recently and may be sending now.
    InProgress,
}

/// The in-app text of a notification.
fn in_app_text(kind: NotificationKind, data: &NotificationData) -> String {
    templates::render(kind, data, "", "").in_app
}

/// The table keys of index entries (a KEYS_ONLY GSI projects them).
fn table_keys(items: &[Item]) -> Vec<Key> {
    items.iter().filter_map(key_of).collect()
}

impl MessagingTable {
    /// Stores notifications, each only if no notification with its id exists (one conditional
    /// PutItem each, [`PUT_CONCURRENCY`] at a time): writing the same event's notifications
    /// again (a redelivered broadcast job) writes nothing twice. Returns, in order, the view of
    /// each one written now (`None`: it was there already).
    pub async fn put_notifications(
        &self,
        new: &[NewNotification],
    ) -> Result<Vec<Option<NotificationView>>, AwsError> {
        let now = now_millis();
        let prepared = new
            .iter()
            .map(|n| {
                let keys = table::tenant(&n.tenant);
                let at = rfc3339_millis(n.created_at);
                let key = keys.notification(&n.user, &n.id);
                let view = NotificationView {
                    notification_id: n.id.clone(),
                    kind: n.kind,
                    text: in_app_text(n.kind, &n.data),
                    data: n.data.clone(),
                    created_at: at.clone(),
                    read: false,
                };
                let item = NotificationItem {
                    pk: key.pk,
                    sk: key.sk,
                    gsi1pk: n.pending.then(|| keys.pending_gsi1pk(&n.user)),
                    gsi1sk: n
                        .pending
                        .then(|| keys.pending_notification_gsi1sk(&at, &n.user, &n.id)),
                    client_id: n.tenant.clone(),
                    user: n.user.clone(),
                    notification: view.clone(),
                    actor: n.actor.clone(),
                    status: if n.pending {
                        NotificationStatus::Pending
                    } else {
                        NotificationStatus::Live
                    },
                    ttl: epoch_seconds(now) + NOTIFICATION_TTL_SECONDS,
                };
                (item, view)
            })
            .collect::<Vec<_>>();
        let written: Vec<Option<NotificationView>> = futures_util::stream::iter(prepared)
            .map(|(item, view)| async move {
                Ok(self.put_new(&item, "notification").await?.then_some(view))
            })
            .buffered(PUT_CONCURRENCY)
            .collect::<Vec<Result<_, AwsError>>>()
            .await
            .into_iter()
            .collect::<Result<_, AwsError>>()?;
        // The batch coordinator finds the tenants with work by their markers.
        let mut marked: Vec<&TenantId> = Vec::new();
        for (n, view) in new.iter().zip(&written) {
            if n.pending && view.is_some() && !marked.contains(&&n.tenant) {
                self.mark_pending(&n.tenant).await?;
                marked.push(&n.tenant);
            }
        }
        Ok(written)
    }

    /// Marks `tenant` as having pending notifications (one UpdateItem; the index entry is
    /// written once, later marks only move `markedAt`).
    pub async fn mark_pending(&self, tenant: &TenantId) -> Result<(), AwsError> {
        let keys = table::tenant(tenant);
        self.client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.pending_marker())))
            .update_expression("SET #markedAt = :now, #g1pk = :g1pk, #g1sk = :g1sk")
            .expression_attribute_names("#markedAt", "markedAt")
            .expression_attribute_names("#g1pk", GSI1PK)
            .expression_attribute_names("#g1sk", GSI1SK)
            .expression_attribute_values(":now", n(now_millis()))
            .expression_attribute_values(":g1pk", s(keys.pending_marker_gsi1pk()))
            .expression_attribute_values(":g1sk", s(keys.pending_marker_gsi1sk()))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(pending marker)", e))?;
        Ok(())
    }

    /// Removes `tenant`'s marker if it was last marked before `before` (epoch ms): a worker
    /// that drained the tenant clears it, unless broadcast marked it again since. `false`
    /// when it was kept.
    pub async fn clear_pending_marker(
        &self,
        tenant: &TenantId,
        before: i64,
    ) -> Result<bool, AwsError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::tenant(tenant).pending_marker())))
            .condition_expression("attribute_not_exists(#markedAt) OR #markedAt < :before")
            .expression_attribute_names("#markedAt", "markedAt")
            .expression_attribute_values(":before", n(before))
            .send()
            .await;
        applied("DeleteItem(pending marker)", result)
    }

    /// Every tenant marked as having pending notifications (GSI1, every shard, every page).
    pub async fn tenants_with_pending(&self) -> Result<Vec<TenantId>, AwsError> {
        let mut tenants = Vec::new();
        for shard in 0..PENDING_TENANT_SHARDS {
            let entries = self
                .query_gsi1(
                    &table::pending_tenants_gsi1pk(shard),
                    None,
                    "Query(GSI1 tenants with pending notifications)",
                )
                .await?;
            tenants.extend(
                entries
                    .iter()
                    .filter_map(key_of)
                    .filter_map(|k| table::tenant_from_pk(&k.pk)),
            );
        }
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    /// Up to `limit` of a tenant's pending notifications in shard `shard`, oldest first, after
    /// `after`; and where the next page starts, if there may be one. One GSI1 Query and one
    /// consistent BatchGetItem per 100 (entries settled since the index was read are skipped).
    pub async fn pending_page(
        &self,
        tenant: &TenantId,
        shard: usize,
        after: Option<&PendingCursor>,
        limit: usize,
    ) -> Result<(Vec<StoredNotification>, Option<PendingCursor>), AwsError> {
        let keys = table::tenant(tenant);
        let gsi1pk = keys.pending_shard_gsi1pk(shard);
        let start = after.map(|c| {
            HashMap::from([
                (GSI1PK.to_owned(), s(gsi1pk.clone())),
                (GSI1SK.to_owned(), s(c.gsi1sk.clone())),
                (table::PK.to_owned(), s(c.pk.clone())),
                (table::SK.to_owned(), s(c.sk.clone())),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":pk", s(gsi1pk.clone()))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query(GSI1 pending notifications)", e))?;
        let next = output.last_evaluated_key.as_ref().and_then(|k| {
            let text = |name: &str| k.get(name).and_then(|v| v.as_s().ok()).cloned();
            Some(PendingCursor {
                shard,
                gsi1sk: text(GSI1SK)?,
                pk: text(table::PK)?,
                sk: text(table::SK)?,
            })
        });
        let entries = output.items.unwrap_or_default();
        let wanted = table_keys(&entries);
        let mut stored: Vec<StoredNotification> =
            decode_all::<NotificationItem>(self.get_items(&wanted, true).await?, "notification")?
                .into_iter()
                .filter(|i| i.gsi1pk.is_some())
                .map(StoredNotification::from)
                .collect();
        stored.sort_by(|a, b| a.view.notification_id.cmp(&b.view.notification_id));
        Ok((stored, next))
    }

    /// Every pending notification of `tenant`, oldest first (every shard, every page): for
    /// tools and tests; the batch reads [`Self::pending_page`]s.
    pub async fn pending_of(&self, tenant: &TenantId) -> Result<Vec<StoredNotification>, AwsError> {
        let mut all = Vec::new();
        for shard in 0..PENDING_SHARDS {
            let mut after = None;
            loop {
                let (page, next) = self
                    .pending_page(tenant, shard, after.as_ref(), 1000)
                    .await?;
                all.extend(page);
                match next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        all.sort_by(|a, b| a.view.notification_id.cmp(&b.view.notification_id));
        Ok(all)
    }

    /// Takes a notification off the work list with its outcome (`sent`, `suppressed`, …).
    /// `false` when another run settled it first.
    pub async fn settle_notification(
        &self,
        n: &StoredNotification,
        outcome: NotificationStatus,
    ) -> Result<bool, AwsError> {
        let key = table::tenant(&n.tenant).notification(&n.user, &n.view.notification_id);
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&key)))
            .update_expression("SET #status = :outcome, #settledAt = :at REMOVE #g1pk, #g1sk")
            .condition_expression("attribute_exists(#g1pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#settledAt", "settledAt")
            .expression_attribute_names("#g1pk", GSI1PK)
            .expression_attribute_names("#g1sk", GSI1SK)
            .expression_attribute_values(
                ":outcome",
                serde_dynamo::to_attribute_value(outcome)
                    .map_err(|e| corrupt("notification status", e))?,
            )
            .expression_attribute_values(":at", s(rfc3339_millis(now_millis())))
            .send()
            .await;
        applied("UpdateItem(settle notification)", updated)
    }

    /// Claims one channel's delivery of a batch (keyed by its first notification): written
    /// before sending, so a second run never sends the same batch on that channel again.
    pub async fn claim_delivery(
        &self,
        tenant: &TenantId,
        user: &UserId,
        first_notification: &str,
        channel: Channel,
        notifications: &[String],
    ) -> Result<Delivery, AwsError> {
        let key = table::tenant(tenant).delivery(user, first_notification, channel);
        let now = now_millis();
        let item = DeliveryItem {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            state: DeliveryState::Sending,
            notifications: notifications.to_vec(),
            at: rfc3339_millis(now),
            ttl: epoch_seconds(now) + DELIVERY_TTL_SECONDS,
        };
        if self.put_new(&item, "delivery").await? {
            return Ok(Delivery::Claimed);
        }
        let Some(existing) = self.get_as::<DeliveryItem>(&key, "delivery").await? else {
            // Released between our put and our read: the next run claims it.
            return Ok(Delivery::InProgress);
        };
        if existing.state == DeliveryState::Sent {
            return Ok(Delivery::AlreadySent);
        }
        let claimed_at = messaging_core::time::parse_rfc3339_millis(&existing.at).unwrap_or(0);
        if now - claimed_at < CLAIM_EXPIRY_MILLIS {
            return Ok(Delivery::InProgress);
        }
        // Take over the dead run's claim, unless another run just did.
        let taken = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(
                serde_dynamo::to_item(&item).map_err(|e| corrupt("delivery", e))?,
            ))
            .condition_expression("#state = :sending AND #at = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(
                ":sending",
                serde_dynamo::to_attribute_value(DeliveryState::Sending)
                    .map_err(|e| corrupt("delivery state", e))?,
            )
            .expression_attribute_values(":claimed", s(existing.at.clone()))
            .send()
            .await;
        Ok(if applied("PutItem(reclaim delivery)", taken)? {
            Delivery::Reclaimed
        } else {
            Delivery::InProgress
        })
    }

    /// Records that a claimed delivery went out.
    pub async fn delivery_sent(
        &self,
        tenant: &TenantId,
        user: &UserId,
        first: &str,
        channel: Channel,
    ) -> Result<(), AwsError> {
        let key = table::tenant(tenant).delivery(user, first, channel);
        self.client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&key)))
            .update_expression("SET #state = :sent")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":sent",
                serde_dynamo::to_attribute_value(DeliveryState::Sent)
                    .map_err(|e| corrupt("delivery state", e))?,
            )
            .send()
            .await
            .map_err(|e| classify("UpdateItem(delivery sent)", e))?;
        Ok(())
    }

    /// Releases a claimed delivery that failed, so the next run tries again.
    pub async fn release_delivery(
        &self,
        tenant: &TenantId,
        user: &UserId,
        first: &str,
        channel: Channel,
    ) -> Result<(), AwsError> {
        self.delete_keys(&[table::tenant(tenant).delivery(user, first, channel)])
            .await
    }

    /// The in-app list, newest first, and how many of those are unread.
    pub async fn notifications(
        &self,
        tenant: &TenantId,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<NotificationView>, AwsError> {
        let keys = table::tenant(tenant);
        let output = with_prefix(
            self.client.query().table_name(&self.name),
            &keys.pk(),
            &keys.notifications_prefix(user),
        )
        .scan_index_forward(false)
        .limit(limit as i32)
        .send()
        .await
        .map_err(|e| classify("Query(notifications)", e))?;
        Ok(
            decode_all::<NotificationItem>(output.items.unwrap_or_default(), "notification")?
                .into_iter()
                .map(|i| i.notification)
                .collect(),
        )
    }

    /// Marks notifications read (unknown ids are skipped).
    pub async fn mark_notifications_read(
        &self,
        tenant: &TenantId,
        user: &UserId,
        ids: &[String],
    ) -> Result<(), AwsError> {
        let keys = table::tenant(tenant);
        for id in ids {
            let result = self
                .client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(key_map(&keys.notification(user, id))))
                .update_expression("SET #read = :yes")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_names("#read", "read")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .send()
                .await;
            // An id that is not (or no longer) there is skipped.
            applied("UpdateItem(notification read)", result)?;
        }
        Ok(())
    }

    /// A user's preferences (the defaults when they never set any).
    pub async fn preferences(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Preferences, AwsError> {
        let key = table::tenant(tenant).preferences(user);
        Ok(self
            .get_as::<PreferencesItem>(&key, "preferences")
            .await?
            .map(|p| p.preferences)
            .unwrap_or_default())
    }

    pub async fn set_preferences(
        &self,
        tenant: &TenantId,
        user: &UserId,
        preferences: &Preferences,
    ) -> Result<(), AwsError> {
        let key = table::tenant(tenant).preferences(user);
        let item = PreferencesItem {
            pk: key.pk,
            sk: key.sk,
            preferences: preferences.clone(),
        };
        self.put_item(&item, "preferences").await
    }

    /// Counts `user` as active on UTC day `day` (`YYYY-MM-DD`), once: the user's own item
    /// remembers the day it was last counted (a conditional UpdateItem of that small item,
    /// which only the day's first connect passes), and that first connect adds one to the
    /// tenant's counter for the day. Returns whether this call counted the user.
    ///
    /// Not a set of the day's users on one item, as before: a write costs 1 WCU per KB of
    /// the whole item, so a set rewritten by every connect cost ~120 WCU a connect at 10,000
    /// users a day, and stopped growing at 400 KB (~30,000 users; docs/scale.md).
    pub async fn record_active(
        &self,
        tenant: &TenantId,
        user: &UserId,
        day: &str,
    ) -> Result<bool, AwsError> {
        let keys = table::tenant(tenant);
        let first = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.user(user))))
            .update_expression("SET #day = :day")
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(#day) OR #day <> :day)",
            )
            .expression_attribute_names("#day", ACTIVE_DAY)
            .expression_attribute_values(":day", s(day))
            .send()
            .await;
        // Counted already today (or no such user: connect writes the user item first).
        if !applied("UpdateItem(active day)", first)? {
            return Ok(false);
        }
        self.client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.active_users(day))))
            .update_expression("ADD #count :one SET #g1pk = :g1pk, #g1sk = :g1sk, #ttl = :ttl")
            .expression_attribute_names("#count", ACTIVE_COUNT)
            .expression_attribute_names("#g1pk", GSI1PK)
            .expression_attribute_names("#g1sk", GSI1SK)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":g1pk", s(table::active_users_gsi1pk(day)))
            .expression_attribute_values(":g1sk", s(keys.active_users_gsi1sk()))
            .expression_attribute_values(":ttl", n(expires_in(ACTIVE_USERS_TTL_SECONDS)))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(active users)", e))?;
        Ok(true)
    }

    /// Active users per tenant on `day` (GSI1, then BatchGetItem).
    pub async fn active_users(&self, day: &str) -> Result<HashMap<TenantId, usize>, AwsError> {
        let pk = table::active_users_gsi1pk(day);
        let entries = self
            .query_gsi1(&pk, None, "Query(GSI1 active users)")
            .await?;
        let keys = table_keys(&entries);
        let mut counts = HashMap::new();
        for item in self.get_items(&keys, false).await? {
            let tenant = key_of(&item).and_then(|key| table::tenant_from_pk(&key.pk));
            // The counter; a day's item written before it was a set of the users.
            let counted = item
                .get(ACTIVE_COUNT)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let listed = item
                .get("users")
                .and_then(|v| v.as_ss().ok())
                .map_or(0, Vec::len);
            let users = counted + listed;
            if let Some(tenant) = tenant {
                counts.insert(tenant, users);
            }
        }
        Ok(counts)
    }
}
