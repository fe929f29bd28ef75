//! The table's side of the lifecycle jobs (`messaging_core::lifecycle`): their records
//! (`CLIENT#t#JOBS`), the walk of a tenant's partition one query page at a time, what an
//! export writes of each item, and what an erasure changes.
//!
//! Every item is judged by its sort key first ([`table::kind_of`]) and then by the attribute
//! that names its person (a message's `senderId`, a file's `owner`, a comment's `author`, a
//! subscription's `user`). Each change is idempotent, so a step that runs twice changes
//! nothing the second time: deletes, a tombstone conditional on the erased user still being
//! the sender, reactions and search lines removed only where they are.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use messaging_core::lifecycle::{JobId, JobState, JobView, JOB_KEPT_DAYS};
use messaging_core::search::Block;
use messaging_core::time::parse_rfc3339_millis;
use messaging_core::{ConnectionId, ConversationId, FileId, TenantId, UserId};

use super::files::{file_object_key, preview_object_key};
use super::items::ConnectionItem;
use super::requests::{epoch_seconds, key_map, n, s, Item};
use super::table::{self, ItemKind, Key};
use super::MessagingTable;
use crate::error::{applied, classify, corrupt, AwsError};

/// Where a job's walk of the partition is, beside what [`JobView`] shows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Walk {
    /// The sort key of the last item handled; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Every item of the partition was handled.
    #[serde(default)]
    pub finished: bool,
    /// Erasure: the erased user's file whose children (`FILE#f#…`, right after it in key
    /// order) go with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_file: Option<String>,
    /// Export: the multipart upload of the result, and the ETags of the parts it holds, in
    /// order (at most `MAX_EXPORT_PARTS`: about 40 KB of the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// Export: records read but fewer than a part, kept for the next step as the object
    /// [`messaging_core::lifecycle`]'s carry of this step.
    #[serde(default)]
    pub carry: bool,
    /// Offboarding: the tenant's object prefixes emptied (this pass).
    #[serde(default)]
    pub objects_done: bool,
    /// Offboarding: passes over a tenant found not empty after the one before.
    #[serde(default)]
    pub passes: u32,
}

/// A job's record: what it shows, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub view: JobView,
    pub walk: Walk,
}

#[derive(Debug, Serialize, Deserialize)]
struct JobItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    job: JobView,
    walk: Walk,
    /// Set once the job has finished: its record goes [`JOB_KEPT_DAYS`] later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

/// One item of a tenant's partition, as a walk read it.
#[derive(Debug, Clone)]
pub struct WalkedItem {
    pub sk: String,
    item: Item,
}

impl WalkedItem {
    pub fn kind(&self) -> ItemKind<'_> {
        table::kind_of(&self.sk)
    }

    fn text(&self, attribute: &str) -> Option<&str> {
        match self.item.get(attribute) {
            Some(AttributeValue::S(text)) => Some(text),
            _ => None,
        }
    }

    fn key(&self) -> Option<Key> {
        Some(Key {
            pk: self.text(table::PK)?.to_owned(),
            sk: self.sk.clone(),
        })
    }

    /// The item as JSON, without its keys, index values, TTL and internal counters.
    fn public_json(&self) -> Result<Value, AwsError> {
        let mut value: Value =
            serde_dynamo::from_item(self.item.clone()).map_err(|e| corrupt("walked item", e))?;
        if let Value::Object(map) = &mut value {
            for internal in [
                table::PK,
                table::SK,
                table::GSI1PK,
                table::GSI1SK,
                table::TTL,
                "version",
                "s3Key",
            ] {
                map.remove(internal);
            }
        }
        Ok(value)
    }
}

/// An export's line for `item`: `{"record": kind, …its attributes}`, or `None` when the item
/// is not exported — internal items (connections, subscriptions, the search index, rate
/// counters, idempotency keys, deliveries, the audit log), and with `only`, every item not
/// about that user (their user record, preferences, memberships, the messages they sent, the
/// files they own and the shares they were given, their comments and notifications).
pub fn export_record(item: &WalkedItem, only: Option<&UserId>) -> Result<Option<Value>, AwsError> {
    let about = |user: Option<&str>| match only {
        None => true,
        Some(only) => user == Some(only.as_str()),
    };
    let (record, included) = match item.kind() {
        ItemKind::Tenant => ("tenant", only.is_none()),
        ItemKind::User(user) => ("user", about(Some(user))),
        ItemKind::Preferences(user) => ("preferences", about(Some(user))),
        ItemKind::Conversation(_) => ("conversation", only.is_none()),
        ItemKind::Member { user, .. } => ("membership", about(Some(user))),
        ItemKind::Message { .. } => ("message", about(item.text("senderId"))),
        ItemKind::File(_) => ("file", about(item.text("owner"))),
        ItemKind::Share { user, .. } => ("share", about(Some(user))),
        ItemKind::Grant { .. } => ("grant", only.is_none()),
        ItemKind::Comment { .. } => ("comment", about(item.text("author"))),
        ItemKind::Notification { user } => ("notification", about(Some(user))),
        _ => return Ok(None),
    };
    if !included {
        return Ok(None);
    }
    let mut value = item.public_json()?;
    if let Value::Object(map) = &mut value {
        map.insert("record".into(), Value::String(record.into()));
    }
    Ok(Some(value))
}

/// What erasing or sweeping one page changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedPage {
    /// Messages turned into tombstones (an erasure).
    pub messages_erased: u64,
    /// Items deleted, and items that stay with something taken out (reactions, search lines,
    /// active-user sets, a name).
    pub items_changed: u64,
    /// Objects of the files bucket to delete (every version): the files that went and their
    /// previews.
    pub objects: Vec<String>,
}

/// What the erasure does with one item, judged from it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Keep,
    Delete,
    /// A connection: its item and its registry entry.
    DeleteConnection(String),
    /// The user's message: a tombstone under [`UserId::ERASED`].
    Tombstone,
    /// Someone else's item that names the user as who did something to it (who created a
    /// conversation, added a member, shared or posted a file): the name becomes
    /// [`UserId::ERASED`].
    Anonymize(&'static str),
    /// Someone else's message the user reacted to.
    RemoveReactions,
    /// The user's file: its item and objects; its children follow.
    DeleteFile(String),
    /// An active-users set holding the user.
    RemoveFromActive,
    /// Checked against the messages and files it names once the page is read.
    SearchBlock,
    OthersNotification,
}

fn action(item: &WalkedItem, user: &str, owned_file: Option<&str>) -> Action {
    let own = |u: &str| u == user;
    match item.kind() {
        ItemKind::User(u) | ItemKind::Preferences(u) if own(u) => Action::Delete,
        ItemKind::UserConnection {
            user: u,
            connection,
        } if own(u) => Action::DeleteConnection(connection.to_owned()),
        ItemKind::Member { user: u, .. }
        | ItemKind::ClientMessage { user: u, .. }
        | ItemKind::Share { user: u, .. }
        | ItemKind::Notification { user: u }
        | ItemKind::Delivery { user: u }
        | ItemKind::Rate { user: Some(u) }
            if own(u) =>
        {
            Action::Delete
        }
        ItemKind::Subscription { .. } if item.text("user") == Some(user) => Action::Delete,
        ItemKind::Message { .. } if item.text("senderId") == Some(user) => Action::Tombstone,
        ItemKind::Message { .. } if reacted(item, user) => Action::RemoveReactions,
        ItemKind::File(file) if item.text("owner") == Some(user) => {
            Action::DeleteFile(file.to_owned())
        }
        ItemKind::Share { file, .. }
        | ItemKind::Grant { file, .. }
        | ItemKind::Comment { file }
            if owned_file == Some(file) =>
        {
            Action::Delete
        }
        ItemKind::Comment { .. } if item.text("author") == Some(user) => Action::Delete,
        ItemKind::Conversation(_) if item.text("createdBy") == Some(user) => {
            Action::Anonymize("createdBy")
        }
        ItemKind::Member { .. } if item.text("addedBy") == Some(user) => {
            Action::Anonymize("addedBy")
        }
        ItemKind::Share { .. } if item.text("sharedBy") == Some(user) => {
            Action::Anonymize("sharedBy")
        }
        ItemKind::Grant { .. } if item.text("grantedBy") == Some(user) => {
            Action::Anonymize("grantedBy")
        }
        ItemKind::Active if in_set(item, "users", user) => Action::RemoveFromActive,
        ItemKind::SearchBlock => Action::SearchBlock,
        // Someone else's notification that quotes the user (their message, comment, share).
        ItemKind::Notification { .. } if item.text("actorId") == Some(user) => Action::Delete,
        ItemKind::Notification { .. } => Action::OthersNotification,
        _ => Action::Keep,
    }
}

fn reacted(item: &WalkedItem, user: &str) -> bool {
    match item.item.get("reactions") {
        Some(AttributeValue::M(reactions)) => reactions.values().any(|users| match users {
            AttributeValue::L(list) => list.iter().any(|u| u.as_s().is_ok_and(|u| u == user)),
            _ => false,
        }),
        _ => false,
    }
}

fn in_set(item: &WalkedItem, attribute: &str, user: &str) -> bool {
    matches!(item.item.get(attribute), Some(AttributeValue::Ss(set)) if set.iter().any(|u| u == user))
}

/// The `(conversation, seq)` a notification is about, and its file.
fn notification_refs(item: &WalkedItem) -> (Option<(String, u64)>, Option<String>) {
    let Some(AttributeValue::M(data)) = item.item.get("data") else {
        return (None, None);
    };
    let text = |name: &str| data.get(name).and_then(|v| v.as_s().ok()).cloned();
    let seq = data
        .get("seq")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok());
    let message = text("conversationId").zip(seq);
    (message, text("fileId"))
}

impl MessagingTable {
    /// Stores a new job's record (its id is fresh: a taken one is a bug).
    pub async fn create_job(&self, record: &JobRecord) -> Result<(), AwsError> {
        let key = table::job(&record.view.client_id, record.view.job_id.as_str());
        let item = JobItem {
            pk: key.pk,
            sk: key.sk,
            job: record.view.clone(),
            walk: record.walk.clone(),
            ttl: None,
        };
        if !self.put_new(&item, "job").await? {
            return Err(AwsError::ConditionFailed("PutItem(job): id taken".into()));
        }
        Ok(())
    }

    /// A job's record, read consistently (a step must see the last one's save).
    pub async fn job(&self, tenant: &TenantId, job: &JobId) -> Result<Option<JobRecord>, AwsError> {
        let key = table::job(tenant, job.as_str());
        Ok(self
            .read_as::<JobItem>(&key, "GetItem(job)", true)
            .await?
            .map(|item| JobRecord {
                view: item.job,
                walk: item.walk,
            }))
    }

    /// Saves `record` if its stored step is still `from_step` (`false`: another run of the
    /// same step saved first, and this one's work is a duplicate of it).
    pub async fn save_job(&self, record: &JobRecord, from_step: u32) -> Result<bool, AwsError> {
        let key = table::job(&record.view.client_id, record.view.job_id.as_str());
        let finished = record.view.state != JobState::Running;
        let ttl = finished.then(|| {
            let now = parse_rfc3339_millis(&record.view.updated_at).unwrap_or_default();
            epoch_seconds(now) + JOB_KEPT_DAYS * 24 * 60 * 60
        });
        let item = JobItem {
            pk: key.pk,
            sk: key.sk,
            job: record.view.clone(),
            walk: record.walk.clone(),
            ttl,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(
                serde_dynamo::to_item(&item).map_err(|e| corrupt("job", e))?,
            ))
            .condition_expression("#job.#progress.#steps = :from")
            .expression_attribute_names("#job", "job")
            .expression_attribute_names("#progress", "progress")
            .expression_attribute_names("#steps", "steps")
            .expression_attribute_values(":from", n(from_step))
            .send()
            .await;
        applied("PutItem(job step)", result)
    }

    /// One query page (at most 1 MB, and at most `limit` items if set) of `tenant`'s
    /// partition after sort key `after`, in key order; and whether there is more.
    pub async fn partition_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: Option<i32>,
    ) -> Result<(Vec<WalkedItem>, bool), AwsError> {
        let pk = table::tenant(tenant).pk();
        let start = after.map(|sk| {
            key_map(&Key {
                pk: pk.clone(),
                sk: sk.to_owned(),
            })
        });
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start)
            .set_limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query(partition)", e))?;
        let more = output.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                let sk = item.get(table::SK)?.as_s().ok()?.clone();
                Some(WalkedItem { sk, item })
            })
            .collect();
        Ok((items, more))
    }

    /// Deletes every item of one page of `tenant`'s partition (an offboarding), with the
    /// registry entries of the connections among them; how many items it deleted.
    pub async fn delete_page(&self, items: &[WalkedItem]) -> Result<u64, AwsError> {
        let mut keys = Vec::with_capacity(items.len());
        let mut outside = 0;
        for item in items {
            let Some(key) = item.key() else { continue };
            match item.kind() {
                ItemKind::UserConnection { connection, .. } => {
                    keys.extend(self.connection_and_subscriptions(connection).await?);
                }
                // Its subscription shards, outside the partition: whatever a registry did not
                // name (a connection whose registry expired first) goes too.
                ItemKind::Conversation(conversation) => {
                    let tenant = item.text(table::PK).and_then(table::tenant_from_pk);
                    if let (Some(tenant), Ok(conversation)) =
                        (tenant, ConversationId::parse(conversation))
                    {
                        outside += self
                            .delete_subscription_shards(&tenant, &conversation)
                            .await?;
                    }
                }
                _ => {}
            }
            keys.push(key);
        }
        self.delete_keys(&keys).await?;
        Ok(keys.len() as u64 + outside)
    }

    /// A connection's registry key and the keys of the subscriptions it records (in their
    /// shards, outside the tenant's partition): what goes with the connection.
    async fn connection_and_subscriptions(&self, connection: &str) -> Result<Vec<Key>, AwsError> {
        let Ok(connection) = ConnectionId::parse(connection) else {
            return Ok(Vec::new());
        };
        let registry = table::connection(&connection);
        let mut keys = Vec::new();
        if let Some(item) = self
            .get_as::<ConnectionItem>(&registry, "connection")
            .await?
        {
            let subscriptions = table::tenant(&item.client_id);
            keys.extend(
                item.subscriptions
                    .iter()
                    .map(|s| subscriptions.subscription(&s.conversation, s.shard, &connection)),
            );
        }
        keys.push(registry);
        Ok(keys)
    }

    /// Deletes every item of a conversation's subscription shards and its sizing (an
    /// offboarding); how many. Keys only are read, every shard below the count.
    async fn delete_subscription_shards(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<u64, AwsError> {
        let keys = table::tenant(tenant);
        let mut deleted = 0;
        for shard in 0..self.shard_count(tenant, conversation).await? {
            let pk = keys.subscriptions_pk(conversation, shard);
            deleted += self
                .delete_partition(&pk, |_| true, "Query(subscription shard)")
                .await?;
        }
        Ok(deleted)
    }

    /// Deletes the records of `tenant`'s jobs other than `keep` (an offboarding's last
    /// pass: its own record is the receipt); how many.
    pub async fn delete_other_jobs(
        &self,
        tenant: &TenantId,
        keep: &JobId,
    ) -> Result<u64, AwsError> {
        let kept = table::job(tenant, keep.as_str());
        self.delete_partition(&kept.pk, |sk| sk != kept.sk, "Query(jobs)")
            .await
    }

    /// Deletes the items of partition `pk` whose sort key `doomed` accepts, a Query page
    /// (keys only) at a time; how many.
    async fn delete_partition(
        &self,
        pk: &str,
        doomed: impl Fn(&str) -> bool,
        operation: &str,
    ) -> Result<u64, AwsError> {
        let mut deleted = 0;
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", table::PK)
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("PK, SK")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            let keys: Vec<Key> = output
                .items
                .unwrap_or_default()
                .iter()
                .filter_map(|item| {
                    let sk = item.get(table::SK)?.as_s().ok()?;
                    doomed(sk).then(|| Key {
                        pk: pk.to_owned(),
                        sk: sk.clone(),
                    })
                })
                .collect();
            deleted += keys.len() as u64;
            self.delete_keys(&keys).await?;
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(deleted),
            }
        }
    }

    /// Whether `tenant`'s partition holds no item (a consistent read of one).
    pub async fn partition_is_empty(&self, tenant: &TenantId) -> Result<bool, AwsError> {
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_values(":pk", s(table::tenant(tenant).pk()))
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("Query(partition)", e))?;
        Ok(output.items.unwrap_or_default().is_empty())
    }

    /// Erases `user` from one page of their tenant's partition (`items`, read in key order
    /// after the pages before it). `owned_file` carries the user's file whose children may
    /// continue on the next page.
    pub async fn erase_page(
        &self,
        tenant: &TenantId,
        user: &UserId,
        items: &[WalkedItem],
        owned_file: &mut Option<String>,
    ) -> Result<ChangedPage, AwsError> {
        let keys = table::tenant(tenant);
        let mut page = ChangedPage::default();
        let mut deletes: Vec<Key> = Vec::new();
        let (mut blocks, mut notifications) = (Vec::new(), Vec::new());
        for item in items {
            let Some(key) = item.key() else { continue };
            if !matches!(
                item.kind(),
                ItemKind::Share { .. } | ItemKind::Grant { .. } | ItemKind::Comment { .. }
            ) {
                // Only a file's children follow it.
                if !matches!(item.kind(), ItemKind::File(_)) {
                    *owned_file = None;
                }
            }
            match action(item, user.as_str(), owned_file.as_deref()) {
                Action::Keep => {}
                Action::Delete => deletes.push(key),
                Action::DeleteConnection(connection) => {
                    deletes.push(key);
                    deletes.extend(self.connection_and_subscriptions(&connection).await?);
                }
                Action::Tombstone => {
                    if self.tombstone(&key, user).await? {
                        page.messages_erased += 1;
                    }
                }
                Action::Anonymize(attribute) => {
                    if self.anonymize(&key, attribute, user).await? {
                        page.items_changed += 1;
                    }
                }
                Action::RemoveReactions => {
                    if self.remove_reactions(&key, user).await? {
                        page.items_changed += 1;
                    }
                }
                Action::DeleteFile(file) => {
                    deletes.push(key);
                    if let Ok(file) = FileId::parse(&file) {
                        page.objects.push(file_object_key(tenant, &file));
                        page.objects.push(preview_object_key(tenant, &file));
                        *owned_file = Some(file.to_string());
                    }
                }
                Action::RemoveFromActive => {
                    self.client
                        .update_item()
                        .table_name(&self.name)
                        .set_key(Some(key_map(&key)))
                        .update_expression("DELETE #users :user")
                        .expression_attribute_names("#users", "users")
                        .expression_attribute_values(
                            ":user",
                            AttributeValue::Ss(vec![user.to_string()]),
                        )
                        .send()
                        .await
                        .map_err(|e| classify("UpdateItem(active users)", e))?;
                    page.items_changed += 1;
                }
                Action::SearchBlock => blocks.push(item),
                Action::OthersNotification => notifications.push(item),
            }
        }
        if !deletes.is_empty() {
            page.items_changed += deletes.len() as u64;
            self.delete_keys(&deletes).await?;
        }
        // What the index blocks and others' notifications name: erased messages (tombstones
        // under the erased name, by this job or an earlier one) and files that are gone.
        let mut messages: HashSet<(String, u64)> = HashSet::new();
        let mut files: HashSet<String> = HashSet::new();
        let parsed: Vec<(&WalkedItem, String, Block)> = blocks
            .iter()
            .filter_map(|item| {
                let lines = item.text("lines")?.to_owned();
                let block = Block::decode(&lines).ok()?;
                Some((*item, lines, block))
            })
            .collect();
        for (_, _, block) in &parsed {
            messages.extend(
                block
                    .lines
                    .iter()
                    .map(|l| (l.conversation_id.clone(), l.seq)),
            );
        }
        for item in &notifications {
            let (message, file) = notification_refs(item);
            messages.extend(message);
            files.extend(file);
        }
        let erased = self.erased_among(&keys, &messages).await?;
        let present = self.files_among(&keys, &files).await?;
        for (item, old, block) in parsed {
            let kept: Vec<_> = block
                .lines
                .iter()
                .filter(|l| !erased.contains(&(l.conversation_id.clone(), l.seq)))
                .cloned()
                .collect();
            if kept.len() == block.lines.len() {
                continue;
            }
            let Some(key) = item.key() else { continue };
            let new = (!kept.is_empty()).then(|| Block { lines: kept }.encode());
            if self.rewrite_block(&key, &old, new).await? {
                page.items_changed += 1;
            }
        }
        let mut gone: Vec<Key> = Vec::new();
        for item in notifications {
            let (message, file) = notification_refs(item);
            let about_erased = message.is_some_and(|m| erased.contains(&m))
                || file.is_some_and(|f| !present.contains(&f));
            if about_erased {
                gone.extend(item.key());
            }
        }
        if !gone.is_empty() {
            page.items_changed += gone.len() as u64;
            self.delete_keys(&gone).await?;
        }
        Ok(page)
    }

    /// Turns `user`'s message at `key` into a tombstone under [`UserId::ERASED`]; `false` if
    /// it is not theirs (any more: a second run).
    async fn tombstone(&self, key: &Key, user: &UserId) -> Result<bool, AwsError> {
        let empty = AttributeValue::M(HashMap::from([
            ("text".to_owned(), s("")),
            ("type".to_owned(), s("text")),
            ("attachments".to_owned(), AttributeValue::L(Vec::new())),
        ]));
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .update_expression(
                "SET #sender = :erased, #content = :empty, #deleted = :true, #reactions = :none, \
                 #version = if_not_exists(#version, :zero) + :one \
                 REMOVE #senderName, #clientMessageId, #editedAt",
            )
            .condition_expression("#sender = :user")
            .expression_attribute_names("#sender", "senderId")
            .expression_attribute_names("#content", "content")
            .expression_attribute_names("#deleted", "deleted")
            .expression_attribute_names("#reactions", "reactions")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#senderName", "senderName")
            .expression_attribute_names("#clientMessageId", "clientMessageId")
            .expression_attribute_names("#editedAt", "editedAt")
            .expression_attribute_values(":erased", s(UserId::ERASED))
            .expression_attribute_values(":user", s(user.as_str()))
            .expression_attribute_values(":empty", empty)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":none", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        applied("UpdateItem(erase message)", result)
    }

    /// Replaces `user` in `attribute` of the item at `key` with [`UserId::ERASED`]; `false`
    /// if it does not name them (any more).
    async fn anonymize(&self, key: &Key, attribute: &str, user: &UserId) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .update_expression("SET #a = :erased")
            .condition_expression("#a = :user")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":erased", s(UserId::ERASED))
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        applied("UpdateItem(anonymize)", result)
    }

    /// Takes `user` out of the reactions of the message at `key` (read again and written
    /// conditionally on its version: a reaction added meanwhile is kept).
    async fn remove_reactions(&self, key: &Key, user: &UserId) -> Result<bool, AwsError> {
        for _ in 0..5 {
            let Some(item) = self.read_item(key, "GetItem(message)", true).await? else {
                return Ok(false);
            };
            let version = item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let Some(AttributeValue::M(reactions)) = item.get("reactions") else {
                return Ok(false);
            };
            let mut kept: BTreeMap<String, AttributeValue> = BTreeMap::new();
            let mut changed = false;
            for (emoji, users) in reactions {
                let AttributeValue::L(users) = users else {
                    continue;
                };
                let others: Vec<AttributeValue> = users
                    .iter()
                    .filter(|u| u.as_s().map_or(true, |u| u != user.as_str()))
                    .cloned()
                    .collect();
                changed |= others.len() != users.len();
                if !others.is_empty() {
                    kept.insert(emoji.clone(), AttributeValue::L(others));
                }
            }
            if !changed {
                return Ok(false);
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(key_map(key)))
                .update_expression("SET #reactions = :kept, #version = :next")
                .condition_expression("attribute_exists(PK) AND (#version = :version OR (attribute_not_exists(#version) AND :version = :zero))")
                .expression_attribute_names("#reactions", "reactions")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":kept", AttributeValue::M(kept.into_iter().collect()))
                .expression_attribute_values(":version", n(version))
                .expression_attribute_values(":next", n(version + 1))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            if applied("UpdateItem(reactions)", result)? {
                return Ok(true);
            }
        }
        Err(AwsError::Unavailable(
            "UpdateItem(reactions): the message kept changing".into(),
        ))
    }

    /// Which of `messages` are erased (tombstones under [`UserId::ERASED`]).
    async fn erased_among(
        &self,
        keys: &table::TenantKeys<'_>,
        messages: &HashSet<(String, u64)>,
    ) -> Result<HashSet<(String, u64)>, AwsError> {
        let wanted: Vec<Key> = messages
            .iter()
            .filter_map(|(c, seq)| Some(keys.message(&ConversationId::parse(c).ok()?, *seq)))
            .collect();
        let found = self
            .get_items_projected(&wanted, false, Some("SK, senderId"))
            .await?;
        let mut erased = HashSet::new();
        for item in found {
            let sender = item.get("senderId").and_then(|v| v.as_s().ok());
            let sk = item.get(table::SK).and_then(|v| v.as_s().ok());
            if let (Some(sender), Some(sk)) = (sender, sk) {
                if sender == UserId::ERASED {
                    if let ItemKind::Message { conversation, seq } = table::kind_of(sk) {
                        erased.insert((conversation.to_owned(), seq));
                    }
                }
            }
        }
        Ok(erased)
    }

    /// Which of `files` are there.
    async fn files_among(
        &self,
        keys: &table::TenantKeys<'_>,
        files: &HashSet<String>,
    ) -> Result<HashSet<String>, AwsError> {
        let wanted: Vec<Key> = files
            .iter()
            .filter_map(|f| Some(keys.file(&FileId::parse(f).ok()?)))
            .collect();
        let found = self.get_items_projected(&wanted, false, Some("SK")).await?;
        Ok(found
            .iter()
            .filter_map(
                |item| match table::kind_of(item.get(table::SK)?.as_s().ok()?) {
                    ItemKind::File(file) => Some(file.to_owned()),
                    _ => None,
                },
            )
            .collect())
    }

    /// Replaces a search block's `old` lines with `new` (`None`: deletes it), if the block
    /// still holds `old`.
    async fn rewrite_block(
        &self,
        key: &Key,
        old: &str,
        new: Option<String>,
    ) -> Result<bool, AwsError> {
        match new {
            Some(lines) => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.name)
                    .set_key(Some(key_map(key)))
                    .update_expression("SET #lines = :new")
                    .condition_expression("#lines = :old")
                    .expression_attribute_names("#lines", "lines")
                    .expression_attribute_values(":new", s(lines))
                    .expression_attribute_values(":old", s(old))
                    .send()
                    .await;
                applied("UpdateItem(search block)", result)
            }
            None => {
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.name)
                    .set_key(Some(key_map(key)))
                    .condition_expression("#lines = :old")
                    .expression_attribute_names("#lines", "lines")
                    .expression_attribute_values(":old", s(old))
                    .send()
                    .await;
                applied("DeleteItem(search block)", result)
            }
        }
    }
}

impl MessagingTable {
    /// Sets how many days `tenant` keeps its data (`None`: for ever), on its `METADATA`
    /// item, listed in GSI1 for the daily sweep while set.
    pub async fn set_retention(
        &self,
        tenant: &TenantId,
        days: Option<u32>,
    ) -> Result<(), AwsError> {
        let keys = table::tenant(tenant);
        let update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.metadata())))
            .expression_attribute_names("#days", "retentionDays")
            .expression_attribute_names("#g1pk", table::GSI1PK)
            .expression_attribute_names("#g1sk", table::GSI1SK);
        let update = match days {
            Some(days) => update
                .update_expression(
                    "SET #days = :days, #g1pk = :g1pk, #g1sk = :g1sk, #clientId = :tenant",
                )
                .expression_attribute_names("#clientId", "clientId")
                .expression_attribute_values(":days", n(days))
                .expression_attribute_values(":g1pk", s(table::RETENTION_TENANTS_GSI1PK))
                .expression_attribute_values(":g1sk", s(table::retention_gsi1sk(tenant, days)))
                .expression_attribute_values(":tenant", s(tenant.as_str())),
            None => update.update_expression("REMOVE #days, #g1pk, #g1sk"),
        };
        update
            .send()
            .await
            .map_err(|e| classify("UpdateItem(retention)", e))?;
        Ok(())
    }

    /// Every tenant with a retention, and its days (GSI1 projects keys only: the days are in
    /// the sort key; a 1 MB page holds about 10,000 tenants).
    pub async fn tenants_with_retention(&self) -> Result<Vec<(TenantId, u32)>, AwsError> {
        let items = self
            .query_gsi1(
                table::RETENTION_TENANTS_GSI1PK,
                None,
                "Query(GSI1 retention tenants)",
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| table::retention_from_gsi1sk(item.get(table::GSI1SK)?.as_s().ok()?))
            .collect())
    }

    /// Deletes what of one page of `tenant`'s partition is older than `before` (RFC 3339):
    /// messages (reactions go with them), file comments, notifications, files (with their
    /// shares, grants and comments; their objects are returned for the caller to delete),
    /// and the search lines of swept messages (a block whose every line goes is deleted).
    /// `owned_file` carries a swept file whose children continue on the next page.
    pub async fn sweep_page(
        &self,
        tenant: &TenantId,
        items: &[WalkedItem],
        before: &str,
        owned_file: &mut Option<String>,
    ) -> Result<ChangedPage, AwsError> {
        let mut page = ChangedPage::default();
        let mut deletes: Vec<Key> = Vec::new();
        let older =
            |item: &WalkedItem, attribute: &str| item.text(attribute).is_some_and(|at| at < before);
        for item in items {
            let Some(key) = item.key() else { continue };
            let kind = item.kind();
            let child_of_swept = match kind {
                ItemKind::Share { file, .. }
                | ItemKind::Grant { file, .. }
                | ItemKind::Comment { file } => owned_file.as_deref() == Some(file),
                _ => false,
            };
            if !matches!(kind, ItemKind::File(_)) && !child_of_swept {
                *owned_file = None;
            }
            match kind {
                _ if child_of_swept => deletes.push(key),
                ItemKind::Message { .. } if older(item, "timestamp") => deletes.push(key),
                ItemKind::Comment { .. } if older(item, "timestamp") => deletes.push(key),
                ItemKind::Notification { .. } if older(item, "createdAt") => deletes.push(key),
                ItemKind::File(file) if older(item, "createdAt") => {
                    deletes.push(key);
                    if let Ok(file) = FileId::parse(file) {
                        page.objects.push(file_object_key(tenant, &file));
                        page.objects.push(preview_object_key(tenant, &file));
                        *owned_file = Some(file.to_string());
                    }
                }
                ItemKind::SearchBlock => {
                    let Some(lines) = item.text("lines") else {
                        continue;
                    };
                    let Ok(block) = Block::decode(lines) else {
                        continue;
                    };
                    let kept: Vec<_> = block
                        .lines
                        .iter()
                        .filter(|l| l.timestamp.as_str() >= before)
                        .cloned()
                        .collect();
                    if kept.len() == block.lines.len() {
                        continue;
                    }
                    let new = (!kept.is_empty()).then(|| Block { lines: kept }.encode());
                    if self.rewrite_block(&key, lines, new).await? {
                        page.items_changed += 1;
                    }
                }
                _ => {}
            }
        }
        page.items_changed += deletes.len() as u64;
        self.delete_keys(&deletes).await?;
        Ok(page)
    }
}
