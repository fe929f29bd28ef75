//! Chat messages: the send transaction (sequence number, idempotency key, thread count),
//! pages by sequence, threads, conditional changes, and the search index kept beside them.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{Select, TransactWriteItem, Update};
use serde_dynamo::to_item;
use tracing::error;

use messaging_core::protocol::{MessageContent, MessageView, MAX_UNREAD_COUNTED};
use messaging_core::search::{index_words, matches};
use messaging_core::time::rfc3339_millis;
use messaging_core::{ConversationId, MessageId, TenantId, UserId};

use super::items::{ClientMessageItem, MessageItem, SearchEntryItem};
use super::requests::{
    build_error, decode_all, epoch_seconds, gsi1sk_of, key_map, n, s, transact_put, with_prefix,
    Item,
};
use super::table::{self, Key, CLIENT_MESSAGE_ID_TTL_SECONDS, GSI1, GSI1PK, GSI1SK, PK, SK};
use super::MessagingTable;
use crate::error::{
    cancellation_reasons, classify, classify_transaction, condition_failed_at, corrupt, AwsError,
};

/// Sends retried when another send took the same `seq` first.
const SEND_ATTEMPTS: usize = 8;
/// Index entries read per search Query, and Queries per SEARCH request (then a cursor).
const SEARCH_PAGE: i32 = 100;
const SEARCH_PAGES_PER_REQUEST: usize = 5;

/// A time-ordered message id (UUIDv7 as 32 hex digits).
pub fn new_message_id() -> MessageId {
    // 32 lowercase hex digits always pass MessageId's validation.
    MessageId::parse(uuid::Uuid::now_v7().simple().to_string()).unwrap_or_else(|_| unreachable!())
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub sender: UserId,
    pub sender_name: Option<String>,
    pub content: MessageContent,
    pub client_message_id: Option<String>,
    pub parent_seq: Option<u64>,
    /// Epoch milliseconds.
    pub now: i64,
}

/// What `send_message` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Stored with the next `seq`; for a reply, the parent's new thread count.
    Stored {
        message: MessageView,
        thread_count: Option<u32>,
        conversation_title: Option<String>,
    },
    /// The client message id was used before: nothing was written; this is the first copy.
    Duplicate(MessageView),
    /// `parent_seq` names no message that can take replies (missing, deleted, or a reply).
    ParentNotFound,
}

/// A stored message with what a conditional change needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    item: MessageItem,
}

impl StoredMessage {
    pub fn view(&self) -> &MessageView {
        &self.item.message
    }
}

/// Which page of a conversation's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRange {
    /// Newest first, `seq` below the bound (none: from the newest).
    NewestBefore(Option<u64>),
    /// Oldest first, `seq` above this one (catching up).
    OldestAfter(u64),
}

/// One page, and the `seq` to continue from when there is more.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    pub next: Option<u64>,
}

impl MessagingTable {
    /// Stores a message as the conversation's next `seq`, in one transaction with the
    /// conversation's `lastSeq`/`lastActivity`, the idempotency key (if the client named one)
    /// and the parent's thread count (for a reply): all of it or nothing. Then indexes its
    /// words for search.
    pub async fn send_message(&self, new: &NewMessage) -> Result<Sent, AwsError> {
        let keys = table::tenant(&new.tenant);
        if let Some(first) = self.sent_before(new).await? {
            return Ok(Sent::Duplicate(first));
        }
        for _ in 0..SEND_ATTEMPTS {
            let conversation = self
                .conversation(&new.tenant, &new.conversation)
                .await?
                .ok_or_else(|| AwsError::Failed("the conversation does not exist".into()))?;
            let parent = match new.parent_seq {
                None => None,
                Some(seq) => match self.message(&new.tenant, &new.conversation, seq).await? {
                    Some(p) if !p.view().deleted && p.view().parent_seq.is_none() => Some(p),
                    _ => return Ok(Sent::ParentNotFound),
                },
            };
            let seq = conversation.last_seq + 1;
            let timestamp = rfc3339_millis(new.now);
            let last_activity = timestamp.clone().max(conversation.last_activity.clone());
            let message = MessageView {
                conversation_id: new.conversation.clone(),
                message_id: new_message_id(),
                seq,
                sender_id: new.sender.clone(),
                sender_name: new.sender_name.clone(),
                content: new.content.clone(),
                timestamp,
                edited: false,
                edited_at: None,
                deleted: false,
                reactions: Default::default(),
                thread_count: 0,
                parent_seq: new.parent_seq,
                client_message_id: new.client_message_id.clone(),
            };
            let key = keys.message(&new.conversation, seq);
            let item = MessageItem {
                pk: key.pk,
                sk: key.sk,
                message: message.clone(),
                user_index_pk: keys.user_index_pk(&new.sender),
                version: 0,
                gsi1pk: new
                    .parent_seq
                    .map(|p| keys.thread_gsi1pk(&new.conversation, p)),
                gsi1sk: new.parent_seq.map(|_| keys.thread_gsi1sk(seq)),
            };
            let advance = Update::builder()
                .table_name(&self.name)
                .set_key(Some(key_map(&keys.conversation(&new.conversation))))
                .update_expression("SET #lastSeq = :seq, #last = :at")
                // Conversations stored before sequence numbers existed have no lastSeq yet.
                .condition_expression(if conversation.last_seq == 0 {
                    "attribute_exists(PK) AND (attribute_not_exists(#lastSeq) OR #lastSeq = :prev)"
                } else {
                    "#lastSeq = :prev"
                })
                .expression_attribute_names("#lastSeq", "lastSeq")
                .expression_attribute_names("#last", "lastActivity")
                .expression_attribute_values(":seq", n(seq))
                .expression_attribute_values(":prev", n(conversation.last_seq))
                .expression_attribute_values(":at", s(last_activity))
                .build()
                .map_err(build_error)?;
            let mut request = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(advance).build())
                .transact_items(transact_put(
                    &self.name,
                    to_item(&item).map_err(|e| corrupt("message", e))?,
                    Some("attribute_not_exists(PK)"),
                )?);
            let mut idempotency_index = None;
            if let Some(id) = &new.client_message_id {
                let key = keys.client_message(&new.conversation, &new.sender, id);
                let marker = ClientMessageItem {
                    pk: key.pk,
                    sk: key.sk,
                    seq,
                    ttl: epoch_seconds(new.now) + CLIENT_MESSAGE_ID_TTL_SECONDS,
                };
                idempotency_index = Some(2);
                request = request.transact_items(transact_put(
                    &self.name,
                    to_item(&marker).map_err(|e| corrupt("client message id", e))?,
                    Some("attribute_not_exists(PK)"),
                )?);
            }
            if let Some(parent) = &parent {
                let count = Update::builder()
                    .table_name(&self.name)
                    .set_key(Some(key_map(
                        &keys.message(&new.conversation, parent.view().seq),
                    )))
                    .update_expression("ADD #threadCount :one, #version :one")
                    .condition_expression("#version = :version")
                    .expression_attribute_names("#threadCount", "threadCount")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":version", n(parent.item.version))
                    .build()
                    .map_err(build_error)?;
                request =
                    request.transact_items(TransactWriteItem::builder().update(count).build());
            }
            match request.send().await {
                Ok(_) => {
                    self.reindex(&new.tenant, None, Some(&message)).await;
                    return Ok(Sent::Stored {
                        message,
                        thread_count: parent.map(|p| p.view().thread_count + 1),
                        conversation_title: conversation.title.clone(),
                    });
                }
                Err(e) => {
                    let codes = cancellation_reasons(&e);
                    match (codes, idempotency_index) {
                        (Some(codes), Some(i)) if condition_failed_at(&codes, i) => {
                            // Sent at the same moment by another invocation: that copy wins.
                            if let Some(first) = self.sent_before(new).await? {
                                return Ok(Sent::Duplicate(first));
                            }
                        }
                        (Some(codes), _)
                            if codes
                                .iter()
                                .any(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
                        {
                            // Another message took this seq (or the parent changed): again.
                        }
                        _ => return Err(classify_transaction("TransactWriteItems(send)", e)),
                    }
                }
            }
        }
        Err(AwsError::Unavailable(format!(
            "send: {SEND_ATTEMPTS} attempts lost the race for the next sequence number"
        )))
    }

    /// The message an earlier send with the same client message id stored.
    async fn sent_before(&self, new: &NewMessage) -> Result<Option<MessageView>, AwsError> {
        let Some(id) = &new.client_message_id else {
            return Ok(None);
        };
        let key = table::tenant(&new.tenant).client_message(&new.conversation, &new.sender, id);
        let Some(marker) = self
            .get_as::<ClientMessageItem>(&key, "client message id")
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .message(&new.tenant, &new.conversation, marker.seq)
            .await?
            .map(|m| m.item.message))
    }

    /// One message (consistent read), tombstones included.
    pub async fn message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        seq: u64,
    ) -> Result<Option<StoredMessage>, AwsError> {
        let key = table::tenant(tenant).message(conversation, seq);
        Ok(self
            .get_as::<MessageItem>(&key, "message")
            .await?
            .map(|item| StoredMessage { item }))
    }

    /// These messages of the tenant as they are now (one BatchGetItem per 100, eventually
    /// consistent), by conversation and `seq`; missing ones are absent.
    pub async fn messages(
        &self,
        tenant: &TenantId,
        wanted: &[(ConversationId, u64)],
    ) -> Result<HashMap<(ConversationId, u64), MessageView>, AwsError> {
        let keys = table::tenant(tenant);
        let mut unique: Vec<Key> = wanted
            .iter()
            .map(|(c, seq)| keys.message(c, *seq))
            .collect();
        unique.sort_by(|a, b| a.sk.cmp(&b.sk));
        unique.dedup();
        Ok(
            decode_all::<MessageItem>(self.get_items(&unique, false).await?, "message")?
                .into_iter()
                .map(|m| {
                    (
                        (m.message.conversation_id.clone(), m.message.seq),
                        m.message,
                    )
                })
                .collect(),
        )
    }

    /// Replaces a message with `after` if nobody changed it since `before` was read
    /// (`ConditionFailed` otherwise: read again and retry), then brings the search index up
    /// to date with the new text.
    pub async fn replace_message(
        &self,
        tenant: &TenantId,
        before: &StoredMessage,
        after: MessageView,
    ) -> Result<(), AwsError> {
        let mut item = before.item.clone();
        item.message = after;
        item.version = before.item.version + 1;
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_item(&item).map_err(|e| corrupt("message", e))?))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(before.item.version))
            .send()
            .await
            .map_err(|e| classify("PutItem(message change)", e))?;
        if item.message.content.text != before.item.message.content.text
            || item.message.deleted != before.item.message.deleted
        {
            self.reindex(tenant, Some(before.view()), Some(&item.message))
                .await;
        }
        Ok(())
    }

    /// Moves the search index from `before`'s words to `after`'s. A failure is logged, not
    /// returned: the message change stands, and search re-checks every hit against the
    /// current text, so a stale entry can never return a wrong result (a missing one can
    /// miss a message).
    async fn reindex(
        &self,
        tenant: &TenantId,
        before: Option<&MessageView>,
        after: Option<&MessageView>,
    ) {
        let words = |m: Option<&MessageView>| -> HashSet<String> {
            m.filter(|m| !m.deleted)
                .map(|m| index_words(&m.content.text).into_iter().collect())
                .unwrap_or_default()
        };
        let (old, new) = (words(before), words(after));
        let keys = table::tenant(tenant);
        let entry_key = |m: &MessageView, word: &str| {
            keys.search_entry(word, &m.timestamp, &m.conversation_id, m.seq)
        };
        if let Some(m) = before {
            let gone: Vec<Key> = old.difference(&new).map(|w| entry_key(m, w)).collect();
            if let Err(e) = self.delete_keys(&gone).await {
                error!(error = %e, seq = m.seq, "search index entries not removed");
            }
        }
        if let Some(m) = after {
            let added: Result<Vec<Item>, AwsError> = new
                .difference(&old)
                .map(|w| {
                    let key = entry_key(m, w);
                    to_item(&SearchEntryItem {
                        pk: key.pk,
                        sk: key.sk,
                        conversation_id: m.conversation_id.clone(),
                        seq: m.seq,
                    })
                    .map_err(|e| corrupt("search entry", e))
                })
                .collect();
            if let Err(e) = async { self.put_items(added?).await }.await {
                error!(error = %e, seq = m.seq, "search index entries not written");
            }
        }
    }

    /// A page of a conversation's messages.
    pub async fn message_page(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        range: MessageRange,
        limit: usize,
    ) -> Result<MessagePage, AwsError> {
        let keys = table::tenant(tenant);
        let prefix = keys.messages_prefix(conversation);
        let after_all = format!("{prefix}~");
        let (low, high, forward) = match range {
            MessageRange::NewestBefore(Some(0 | 1)) => {
                return Ok(MessagePage {
                    messages: Vec::new(),
                    next: None,
                })
            }
            MessageRange::NewestBefore(Some(before)) => (
                prefix.clone(),
                keys.message(conversation, before - 1).sk,
                false,
            ),
            MessageRange::NewestBefore(None) => (prefix.clone(), after_all, false),
            MessageRange::OldestAfter(after) => {
                (keys.message(conversation, after + 1).sk, after_all, true)
            }
        };
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys.pk()))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .scan_index_forward(forward)
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(|e| classify("Query(message page)", e))?;
        let stored: Vec<MessageItem> = decode_all(output.items.unwrap_or_default(), "message")?;
        let mut messages: Vec<MessageView> = stored.into_iter().map(|m| m.message).collect();
        let more = messages.len() > limit;
        messages.truncate(limit);
        let next = if more {
            messages.last().map(|m| m.seq)
        } else {
            None
        };
        Ok(MessagePage { messages, next })
    }

    /// Replies to message `parent`, oldest first, after reply `after` (GSI1, then one
    /// BatchGetItem).
    pub async fn thread_replies(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        parent: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<MessagePage, AwsError> {
        let keys = table::tenant(tenant);
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND #sk > :after")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_names("#sk", GSI1SK)
            .expression_attribute_values(":pk", s(keys.thread_gsi1pk(conversation, parent)))
            .expression_attribute_values(":after", s(keys.thread_gsi1sk(after.unwrap_or(0))))
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(|e| classify("Query(GSI1 thread)", e))?;
        let mut seqs: Vec<u64> = output
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| gsi1sk_of(i).and_then(table::seq_from_key))
            .collect();
        let more = seqs.len() > limit;
        seqs.truncate(limit);
        let wanted: Vec<Key> = seqs
            .iter()
            .map(|&q| keys.message(conversation, q))
            .collect();
        let stored: Vec<MessageItem> =
            decode_all(self.get_items(&wanted, false).await?, "message")?;
        let mut messages: Vec<MessageView> = stored.into_iter().map(|m| m.message).collect();
        messages.sort_by_key(|m| m.seq);
        let next = if more { seqs.last().copied() } else { None };
        Ok(MessagePage { messages, next })
    }

    /// Messages containing every word of `words` in the `readable` conversations, newest
    /// first: reads the index entries of the longest word (newest first), keeps those in a
    /// readable conversation, fetches those messages and checks their current text. Returns
    /// the results, each with its index position (a page trimmed after it continues from
    /// there), and the position to continue from when there may be more.
    pub async fn search_messages(
        &self,
        tenant: &TenantId,
        readable: &HashSet<ConversationId>,
        words: &[String],
        start_after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<(MessageView, String)>, Option<String>), AwsError> {
        let keys = table::tenant(tenant);
        let Some(word) = words.iter().max_by_key(|w| w.chars().count()) else {
            return Ok((Vec::new(), None));
        };
        let prefix = keys.search_prefix(word);
        let mut start = start_after;
        let mut results = Vec::new();
        for _ in 0..SEARCH_PAGES_PER_REQUEST {
            let exclusive = start.as_ref().map(|sk| {
                key_map(&Key {
                    pk: keys.pk(),
                    sk: sk.clone(),
                })
            });
            let page = with_prefix(
                self.client.query().table_name(&self.name),
                &keys.pk(),
                &prefix,
            )
            .scan_index_forward(false)
            .limit(SEARCH_PAGE)
            .set_exclusive_start_key(exclusive)
            .send()
            .await
            .map_err(|e| classify("Query(search index)", e))?;
            let entries: Vec<SearchEntryItem> =
                decode_all(page.items.unwrap_or_default(), "search entry")?;
            let wanted: Vec<Key> = entries
                .iter()
                .filter(|e| readable.contains(&e.conversation_id))
                .map(|e| keys.message(&e.conversation_id, e.seq))
                .collect();
            let found: HashMap<(ConversationId, u64), MessageView> =
                decode_all::<MessageItem>(self.get_items(&wanted, false).await?, "message")?
                    .into_iter()
                    .map(|m| {
                        (
                            (m.message.conversation_id.clone(), m.message.seq),
                            m.message,
                        )
                    })
                    .collect();
            for entry in &entries {
                let hit = found
                    .get(&(entry.conversation_id.clone(), entry.seq))
                    .filter(|m| !m.deleted && matches(&m.content.text, words));
                if let Some(message) = hit {
                    results.push((message.clone(), entry.sk.clone()));
                    if results.len() == limit {
                        return Ok((results, Some(entry.sk.clone())));
                    }
                }
            }
            match (page.last_evaluated_key.is_some(), entries.last()) {
                (true, Some(last)) => start = Some(last.sk.clone()),
                _ => return Ok((results, None)),
            }
        }
        Ok((results, start))
    }

    /// Messages of others after `after` up to `last`, not deleted, counted up to
    /// [`MAX_UNREAD_COUNTED`].
    pub async fn unread_count(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        reader: &UserId,
        after: u64,
        last: u64,
    ) -> Result<u32, AwsError> {
        if last <= after {
            return Ok(0);
        }
        let keys = table::tenant(tenant);
        let mut count = 0u32;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .filter_expression("#sender <> :me AND attribute_not_exists(#deleted)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#sender", "senderId")
                .expression_attribute_names("#deleted", "deleted")
                .expression_attribute_values(":pk", s(keys.pk()))
                .expression_attribute_values(":low", s(keys.message(conversation, after + 1).sk))
                .expression_attribute_values(":high", s(keys.message(conversation, last).sk))
                .expression_attribute_values(":me", s(reader.as_str()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query(unread count)", e))?;
            count += page.count.max(0) as u32;
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() && count < MAX_UNREAD_COUNTED => start = Some(key),
                _ => return Ok(count.min(MAX_UNREAD_COUNTED)),
            }
        }
    }
}
