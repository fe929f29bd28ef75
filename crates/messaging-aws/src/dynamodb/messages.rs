//! Chat messages: the send transaction (sequence number, idempotency key, thread count),
//! pages by sequence, threads, conditional changes, and the search index kept beside them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ReturnValue, Select, TransactWriteItem, Update};
use serde_dynamo::{from_item, to_item};
use tracing::error;

use messaging_core::protocol::{ConversationView, MessageContent, MessageView, MAX_UNREAD_COUNTED};
use messaging_core::time::rfc3339_millis;
use messaging_core::{ConversationId, MessageId, TenantId, UserId};

use super::items::{ClientMessageItem, ConversationItem, MessageItem};
use super::requests::{
    build_error, decode_all, epoch_seconds, gsi1sk_of, key_map, n, s, transact_put, Item,
};
use super::table::{self, Key, CLIENT_MESSAGE_ID_TTL_SECONDS, GSI1, GSI1PK, GSI1SK, PK, SK};
use super::MessagingTable;
use crate::error::{
    cancellation_reasons, classify, classify_transaction, condition_failed_at, corrupt, AwsError,
};

/// Sequence numbers one send may take: a number is only lost to a reader that voided it
/// under a send slower than [`VOID_AFTER_MILLIS`].
const SEND_ATTEMPTS: usize = 3;
/// Writes of one reply into its slot when other replies keep moving the parent on.
const PARENT_ATTEMPTS: usize = 8;

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

/// Why a message was not written into its slot.
enum Fill {
    /// The slot holds something already: a reader voided it. Take a new number.
    SlotTaken,
    /// The client message id was stored by another invocation.
    SentConcurrently,
    /// The parent changed since it was read.
    ParentChanged,
    Failed(AwsError),
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

/// How long after the newer neighbour of a hole was sent the hole is known dead: the send
/// that took a `seq` takes it after its own start and writes it within its function's life
/// (`route`: 10 s), and the newer neighbour took its number after the hole's. So 2 × 10 s,
/// and margin for clocks that differ between sandboxes.
pub const VOID_AFTER_MILLIS: i64 = 60_000;

/// The `seq`s missing between consecutive messages of `read` (one page, oldest or newest
/// first) whose newer neighbour was sent more than [`VOID_AFTER_MILLIS`] before `now`, in
/// the page's order.
pub fn dead_holes(read: &[MessageView], now: i64) -> impl Iterator<Item = u64> + '_ {
    read.windows(2).flat_map(move |pair| {
        let forward = pair[0].seq < pair[1].seq;
        let (older, newer) = if forward {
            (&pair[0], &pair[1])
        } else {
            (&pair[1], &pair[0])
        };
        let sent = messaging_core::time::parse_rfc3339_millis(&newer.timestamp).unwrap_or(now);
        let dead = now - sent > VOID_AFTER_MILLIS;
        let count = if dead {
            newer.seq.saturating_sub(older.seq + 1)
        } else {
            0
        };
        // Lazily, in the page's direction: a wide hole costs nothing beyond what is taken.
        (0..count).map(move |i| {
            if forward {
                older.seq + 1 + i
            } else {
                newer.seq - 1 - i
            }
        })
    })
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
    /// Stores a message as the conversation's next `seq`, with the idempotency key (if the
    /// client named one) and the parent's thread count (for a reply). (Search indexes it
    /// later, from the table's stream: `MessagingTable::index_tenants`.)
    ///
    /// A message with a client message id and no parent — what clients send — takes three
    /// single-item writes ([`Self::send_once`]): the number, the idempotency key naming it,
    /// then the message: 3 write units, where a transaction of key and message billed 5. A
    /// reply keeps the transaction of message, key and the parent's thread count.
    ///
    /// The `seq` is taken first, by an atomic increment of the conversation's `lastSeq`
    /// ([`Self::reserve_seq`]), so concurrent sends to one conversation never conflict: each
    /// gets its own number at the first try, whatever their count (an optimistic
    /// read-then-conditional-write made N concurrent sends cost O(N²) failed attempts).
    /// The message is then written to that slot on the condition that it is empty. A number
    /// taken but not filled would be a hole in the conversation, so every path that gives up
    /// on its number after taking it fills it with a void ([`Self::void_seq`]): the loser of
    /// two racing copies of one client message id, a reply whose parent was deleted
    /// meanwhile, a write that failed. A send that dies between the two calls leaves its
    /// slot to the readers, who void it once nobody can still be writing it
    /// ([`Self::message_page`]); a slot voided under a slow writer makes that writer take a
    /// new number.
    pub async fn send_message(&self, new: &NewMessage) -> Result<Sent, AwsError> {
        if new.client_message_id.is_some() && new.parent_seq.is_none() {
            // Boxed: its state machine would otherwise sit inside every caller's future.
            return Box::pin(self.send_once(new)).await;
        }
        if let Some(first) = self.sent_before(new).await? {
            return Ok(Sent::Duplicate(first));
        }
        // A reply's parent is checked before a number is taken, so that a bad `parentSeq`
        // costs nothing but this read.
        let mut parent = match new.parent_seq {
            None => None,
            Some(seq) => match self.repliable(new, seq).await? {
                Some(parent) => Some(parent),
                None => return Ok(Sent::ParentNotFound),
            },
        };
        for _ in 0..SEND_ATTEMPTS {
            let reserved = self.reserve_seq(new).await?;
            let seq = reserved.last_seq;
            for _ in 0..PARENT_ATTEMPTS {
                match self.fill_seq(new, seq, parent.as_ref()).await {
                    Ok(message) => {
                        return Ok(Sent::Stored {
                            thread_count: parent.map(|p| p.view().thread_count + 1),
                            message,
                            conversation_title: reserved.title,
                        });
                    }
                    Err(Fill::SlotTaken) => break,
                    Err(Fill::SentConcurrently) => {
                        // Another invocation stored the same client message id first.
                        self.void_or_log(new, seq).await;
                        return match self.sent_before(new).await? {
                            Some(first) => Ok(Sent::Duplicate(first)),
                            None => Err(AwsError::Unavailable(
                                "send: the first copy of this client message id is not readable yet".into(),
                            )),
                        };
                    }
                    Err(Fill::ParentChanged) => {
                        // Another reply (or an edit) moved the parent on: read it again.
                        let Some(seq_of_parent) = new.parent_seq else {
                            break;
                        };
                        parent = match self.repliable(new, seq_of_parent).await {
                            Ok(Some(p)) => Some(p),
                            Ok(None) => {
                                self.void_or_log(new, seq).await;
                                return Ok(Sent::ParentNotFound);
                            }
                            Err(e) => {
                                self.void_or_log(new, seq).await;
                                return Err(e);
                            }
                        };
                    }
                    Err(Fill::Failed(e)) => {
                        // The write may or may not have been applied (a lost answer): the void
                        // is conditional on the slot being empty, so it never hides a message.
                        self.void_or_log(new, seq).await;
                        return Err(e);
                    }
                }
            }
        }
        Err(AwsError::Unavailable(format!(
            "send: {SEND_ATTEMPTS} sequence numbers taken were voided before they could be written"
        )))
    }

    /// A message with a client message id, stored at most once without a transaction. The
    /// idempotency key is written first and names the number the message goes into, so
    /// every copy of the send (a resend after a lost ACK, a racing duplicate) finds where the
    /// first one went:
    ///
    /// - no key yet: take a number, write the key naming it (`attribute_not_exists`; a copy
    ///   that got there first makes this one void its number and look again), then the
    ///   message into that slot (`attribute_not_exists`);
    /// - a key whose slot holds a message: that is the first copy (`Duplicate`);
    /// - a key whose slot is empty: the first copy took the number but has not written yet,
    ///   or died; this copy writes the message there (both writes are conditional, one wins,
    ///   and the loser finds the winner's message on its next look);
    /// - a key whose slot holds a void (a reader voided it: the first copy died more than
    ///   [`VOID_AFTER_MILLIS`] ago): take a new number and move the key to it (conditional on
    ///   the old one, so only one copy moves it).
    ///
    /// A copy that dies after writing the key leaves an empty slot that a resend fills, or a
    /// reader voids; never a second message.
    async fn send_once(&self, new: &NewMessage) -> Result<Sent, AwsError> {
        // A number this send took whose key write failed its condition: the key is another
        // copy's — or this send's own, when the write was applied and its answer lost (the
        // SDK's retry then fails the condition). The next look tells which.
        let mut contested: Option<u64> = None;
        let mut title = None;
        for attempt in 0..SEND_ATTEMPTS {
            // The first look may be eventually consistent: a key written in the last second
            // that it misses still fails this send's conditional key write, and every later
            // look (after a contested write) is consistent.
            let marker = self.client_message(new, attempt > 0).await?;
            if let Some(taken) = contested.take() {
                if marker.as_ref().map(|m| m.seq) != Some(taken) {
                    self.void_or_log(new, taken).await;
                }
            }
            let (previous, seq) = match marker {
                None => (None, None),
                Some(marker) => {
                    match self
                        .message(&new.tenant, &new.conversation, marker.seq)
                        .await?
                    {
                        Some(first) if !first.view().sender_id.is_system() => {
                            return Ok(Sent::Duplicate(first.item.message));
                        }
                        // Voided under the first copy: move the key to a new number.
                        Some(_void) => (Some(marker.seq), None),
                        // The first copy took this number but has not written it (or died):
                        // write it. (The conversation's title is not read for this rare
                        // case; notifications then name the conversation by its id.)
                        None => (None, Some(marker.seq)),
                    }
                }
            };
            let seq = match seq {
                Some(seq) => seq,
                None => {
                    let reserved = self.reserve_seq(new).await?;
                    title = reserved.title;
                    let seq = reserved.last_seq;
                    match self.put_client_message(new, seq, previous).await {
                        Ok(()) => seq,
                        Err(AwsError::ConditionFailed(_)) => {
                            contested = Some(seq);
                            continue;
                        }
                        Err(e) => {
                            self.void_or_log(new, seq).await;
                            return Err(e);
                        }
                    }
                }
            };
            let (message, item) = self.message_item(new, seq)?;
            match self.put_into_empty_slot(item).await {
                Ok(_) => {
                    return Ok(Sent::Stored {
                        message,
                        thread_count: None,
                        conversation_title: title,
                    })
                }
                // Another copy wrote it, or a reader voided it: look again.
                Err(AwsError::ConditionFailed(_)) => continue,
                Err(e) => {
                    // The write may have been applied (a lost answer): the void yields to it.
                    self.void_or_log(new, seq).await;
                    return Err(e);
                }
            }
        }
        if let Some(taken) = contested {
            self.void_or_log(new, taken).await;
        }
        Err(AwsError::Unavailable(format!(
            "send: no sequence number could be filled in {SEND_ATTEMPTS} attempts"
        )))
    }

    /// The idempotency key of `new`, if a copy of it wrote one.
    async fn client_message(
        &self,
        new: &NewMessage,
        consistent: bool,
    ) -> Result<Option<ClientMessageItem>, AwsError> {
        let Some(id) = &new.client_message_id else {
            return Ok(None);
        };
        let key = table::tenant(&new.tenant).client_message(&new.conversation, &new.sender, id);
        self.read_as(&key, "client message id", consistent).await
    }

    /// Writes `new`'s idempotency key naming `seq`: a new key (`previous: None`), or one
    /// moved from the voided `previous` slot. `ConditionFailed` when another copy wrote or
    /// moved it first.
    async fn put_client_message(
        &self,
        new: &NewMessage,
        seq: u64,
        previous: Option<u64>,
    ) -> Result<(), AwsError> {
        let id = new.client_message_id.as_ref().ok_or_else(|| {
            AwsError::Failed("a send without a client message id has no key".into())
        })?;
        let key = table::tenant(&new.tenant).client_message(&new.conversation, &new.sender, id);
        let marker = ClientMessageItem {
            pk: key.pk,
            sk: key.sk,
            seq,
            ttl: epoch_seconds(new.now) + CLIENT_MESSAGE_ID_TTL_SECONDS,
        };
        let request = self.client.put_item().table_name(&self.name).set_item(Some(
            to_item(&marker).map_err(|e| corrupt("client message id", e))?,
        ));
        let request = match previous {
            None => request.condition_expression("attribute_not_exists(PK)"),
            Some(old) => request
                .condition_expression("#seq = :old")
                .expression_attribute_names("#seq", "seq")
                .expression_attribute_values(":old", n(old)),
        };
        request
            .send()
            .await
            .map_err(|e| classify("PutItem(client message id)", e))?;
        Ok(())
    }

    /// Writes a message item into its slot if the slot is empty (`ConditionFailed` if not).
    async fn put_into_empty_slot(&self, item: Item) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| classify("PutItem(message)", e))?;
        Ok(())
    }

    /// The message `new` would be in slot `seq`, and its item.
    fn message_item(&self, new: &NewMessage, seq: u64) -> Result<(MessageView, Item), AwsError> {
        let keys = table::tenant(&new.tenant);
        let message = MessageView {
            conversation_id: new.conversation.clone(),
            message_id: new_message_id(),
            seq,
            sender_id: new.sender.clone(),
            sender_name: new.sender_name.clone(),
            content: new.content.clone(),
            timestamp: rfc3339_millis(new.now),
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
            version: 0,
            gsi1pk: new
                .parent_seq
                .map(|p| keys.thread_gsi1pk(&new.conversation, p)),
            gsi1sk: new.parent_seq.map(|_| keys.thread_gsi1sk(seq)),
        };
        let item = to_item(&item).map_err(|e| corrupt("message", e))?;
        Ok((message, item))
    }

    /// The message `seq` of the conversation if a reply can answer it: present, not deleted,
    /// not itself a reply.
    async fn repliable(
        &self,
        new: &NewMessage,
        seq: u64,
    ) -> Result<Option<StoredMessage>, AwsError> {
        Ok(self
            .message(&new.tenant, &new.conversation, seq)
            .await?
            .filter(|p| !p.view().deleted && p.view().parent_seq.is_none()))
    }

    /// Takes the conversation's next `seq`: one UpdateItem that adds 1 to `lastSeq` (and sets
    /// `lastActivity` to the sender's clock, which may move it back by the skew between two
    /// sandboxes' clocks) and answers the conversation as it now is. Never conflicts.
    async fn reserve_seq(&self, new: &NewMessage) -> Result<ConversationView, AwsError> {
        let key = table::tenant(&new.tenant).conversation(&new.conversation);
        let output = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&key)))
            // Conversations stored before sequence numbers existed have no lastSeq yet.
            .update_expression("SET #lastSeq = if_not_exists(#lastSeq, :zero) + :one, #last = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#lastSeq", "lastSeq")
            .expression_attribute_names("#last", "lastActivity")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(rfc3339_millis(new.now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem(take seq)", e));
        let attributes = match output {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(AwsError::ConditionFailed(_)) => {
                return Err(AwsError::Failed("the conversation does not exist".into()))
            }
            Err(e) => return Err(e),
        };
        let item: ConversationItem =
            from_item(attributes).map_err(|e| corrupt("conversation", e))?;
        Ok(item.conversation)
    }

    /// Writes the message into slot `seq`, if the slot is empty: one PutItem, or one
    /// transaction with the idempotency key and the parent's thread count when there are any.
    async fn fill_seq(
        &self,
        new: &NewMessage,
        seq: u64,
        parent: Option<&StoredMessage>,
    ) -> Result<MessageView, Fill> {
        let keys = table::tenant(&new.tenant);
        let (message, item) = self.message_item(new, seq).map_err(Fill::Failed)?;
        if new.client_message_id.is_none() && parent.is_none() {
            // Nothing to write beside it: a single conditional PutItem (half a transaction's
            // write units).
            return match self.put_into_empty_slot(item).await {
                Ok(_) => Ok(message),
                Err(AwsError::ConditionFailed(_)) => Err(Fill::SlotTaken),
                Err(e) => Err(Fill::Failed(e)),
            };
        }
        let mut request = self.client.transact_write_items().transact_items(
            transact_put(&self.name, item, Some("attribute_not_exists(PK)"))
                .map_err(Fill::Failed)?,
        );
        let mut marker_at = None;
        if let Some(id) = &new.client_message_id {
            let key = keys.client_message(&new.conversation, &new.sender, id);
            let marker = ClientMessageItem {
                pk: key.pk,
                sk: key.sk,
                seq,
                ttl: epoch_seconds(new.now) + CLIENT_MESSAGE_ID_TTL_SECONDS,
            };
            marker_at = Some(1);
            let marker =
                to_item(&marker).map_err(|e| Fill::Failed(corrupt("client message id", e)))?;
            request = request.transact_items(
                transact_put(&self.name, marker, Some("attribute_not_exists(PK)"))
                    .map_err(Fill::Failed)?,
            );
        }
        let mut parent_at = None;
        if let Some(parent) = parent {
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
                .map_err(|e| Fill::Failed(build_error(e)))?;
            parent_at = Some(marker_at.map_or(1, |m| m + 1));
            request = request.transact_items(TransactWriteItem::builder().update(count).build());
        }
        match request.send().await {
            Ok(_) => Ok(message),
            Err(e) => match cancellation_reasons(&e) {
                // The marker first: a retried transaction whose first try was applied finds
                // both its slot and its marker taken, and is a duplicate of itself.
                Some(codes) if marker_at.is_some_and(|i| condition_failed_at(&codes, i)) => {
                    Err(Fill::SentConcurrently)
                }
                Some(codes) if condition_failed_at(&codes, 0) => Err(Fill::SlotTaken),
                Some(codes) if parent_at.is_some_and(|i| condition_failed_at(&codes, i)) => {
                    Err(Fill::ParentChanged)
                }
                _ => Err(Fill::Failed(classify_transaction(
                    "TransactWriteItems(send)",
                    e,
                ))),
            },
        }
    }

    /// Fills slot `seq` with a void (a tombstone sent by [`UserId::SYSTEM`]) unless a message
    /// is there: `true` if the void was written.
    pub async fn void_seq(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        seq: u64,
        now: i64,
    ) -> Result<bool, AwsError> {
        Ok(self
            .write_void(tenant, conversation, seq, now)
            .await?
            .is_some())
    }

    /// [`Self::void_seq`], answering the void it wrote (`None`: the slot was taken).
    async fn write_void(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        seq: u64,
        now: i64,
    ) -> Result<Option<MessageView>, AwsError> {
        let key = table::tenant(tenant).message(conversation, seq);
        let void = MessageItem {
            pk: key.pk,
            sk: key.sk,
            message: MessageView {
                conversation_id: conversation.clone(),
                message_id: new_message_id(),
                seq,
                sender_id: UserId::system(),
                sender_name: None,
                content: MessageContent {
                    text: String::new(),
                    kind: Default::default(),
                    attachments: Vec::new(),
                },
                timestamp: rfc3339_millis(now),
                edited: false,
                edited_at: None,
                deleted: true,
                reactions: Default::default(),
                thread_count: 0,
                parent_seq: None,
                client_message_id: None,
            },
            version: 0,
            gsi1pk: None,
            gsi1sk: None,
        };
        Ok(self.put_new(&void, "void").await?.then_some(void.message))
    }

    /// [`Self::void_seq`] for a number this send took and gives up; a failure is logged (the
    /// readers void the slot later).
    async fn void_or_log(&self, new: &NewMessage, seq: u64) {
        if let Err(e) = self
            .void_seq(&new.tenant, &new.conversation, seq, new.now)
            .await
        {
            error!(error = %e, seq, "the seq this send gave up was not voided; a reader will");
        }
    }

    /// The message an earlier send with the same client message id stored.
    async fn sent_before(&self, new: &NewMessage) -> Result<Option<MessageView>, AwsError> {
        let Some(marker) = self.client_message(new, true).await? else {
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
    /// (`ConditionFailed` otherwise: read again and retry). A new text reaches the search
    /// index through the table's stream.
    pub async fn replace_message(
        &self,
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
        Ok(())
    }

    /// A page of a conversation's messages, without holes: a `seq` missing between two
    /// stored messages whose upper one is older than [`VOID_AFTER_MILLIS`] was taken by a
    /// send that died before writing it, and is voided here (at most `limit` per page, each
    /// a conditional PutItem that yields to a message written meanwhile). Holes below the
    /// oldest message read are left alone: that is where history begins (or was expired).
    pub async fn message_page(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        range: MessageRange,
        limit: usize,
        now: i64,
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
        let filled = self
            .fill_holes(tenant, conversation, &messages, limit, now)
            .await?;
        if !filled.is_empty() {
            messages.extend(filled);
            if forward {
                messages.sort_by_key(|m| m.seq);
            } else {
                messages.sort_by_key(|m| std::cmp::Reverse(m.seq));
            }
        }
        let more = messages.len() > limit;
        messages.truncate(limit);
        let next = if more {
            messages.last().map(|m| m.seq)
        } else {
            None
        };
        Ok(MessagePage { messages, next })
    }

    /// Voids the holes between `read` (one page, either order) that no send can still fill,
    /// nearest the page's start first, at most `limit`; answers what now fills them (voids,
    /// or messages that landed first).
    async fn fill_holes(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        read: &[MessageView],
        limit: usize,
        now: i64,
    ) -> Result<Vec<MessageView>, AwsError> {
        let holes: Vec<u64> = dead_holes(read, now).take(limit).collect();
        let mut filled = Vec::with_capacity(holes.len());
        for seq in holes {
            let now_there = match self.write_void(tenant, conversation, seq, now).await? {
                Some(void) => Some(void),
                // A message took the slot first: read it.
                None => self
                    .message(tenant, conversation, seq)
                    .await?
                    .map(|m| m.item.message),
            };
            filled.extend(now_there);
        }
        Ok(filled)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64, millis: i64) -> MessageView {
        MessageView {
            conversation_id: ConversationId::parse("c").unwrap(),
            message_id: new_message_id(),
            seq,
            sender_id: UserId::parse("u").unwrap(),
            sender_name: None,
            content: MessageContent {
                text: "x".into(),
                kind: Default::default(),
                attachments: Vec::new(),
            },
            timestamp: rfc3339_millis(millis),
            edited: false,
            edited_at: None,
            deleted: false,
            reactions: Default::default(),
            thread_count: 0,
            parent_seq: None,
            client_message_id: None,
        }
    }

    const NOW: i64 = 1_800_000_000_000;
    const OLD: i64 = NOW - VOID_AFTER_MILLIS - 1;

    #[test]
    fn holes_under_an_old_neighbour_are_dead_in_the_pages_order() {
        let oldest_first = [at(1, OLD), at(4, OLD), at(5, OLD), at(7, OLD)];
        assert_eq!(
            dead_holes(&oldest_first, NOW).collect::<Vec<_>>(),
            [2, 3, 6]
        );
        let newest_first = [at(7, OLD), at(5, OLD), at(4, OLD), at(1, OLD)];
        assert_eq!(
            dead_holes(&newest_first, NOW).collect::<Vec<_>>(),
            [6, 3, 2]
        );
    }

    #[test]
    fn a_hole_under_a_recent_neighbour_may_still_be_written() {
        // seq 2's sender may still be writing: its newer neighbour was sent a moment ago.
        let page = [at(1, OLD), at(3, NOW - 1_000), at(5, OLD)];
        assert_eq!(dead_holes(&page, NOW).collect::<Vec<_>>(), [4]);
        assert_eq!(dead_holes(&[at(1, OLD)], NOW).count(), 0);
        assert_eq!(dead_holes(&[], NOW).count(), 0);
    }

    #[test]
    fn a_wide_hole_is_walked_lazily() {
        let page = [at(1, OLD), at(u64::MAX / 2, OLD)];
        assert_eq!(
            dead_holes(&page, NOW).take(3).collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }
}
