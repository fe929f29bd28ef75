//! Conversations, memberships and the fan-out subscriptions that make recipient lookup one
//! Query.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use futures_util::StreamExt;
use serde_dynamo::{from_item, to_item};

use messaging_core::protocol::{
    ConversationSummary, ConversationView, MemberPresence, PresenceStatus,
};
use messaging_core::shards::Subscribed;
use messaging_core::time::rfc3339_millis;
use messaging_core::{ChannelKind, ConnectionId, ConversationId, TenantId, UserId};

use super::items::{
    ConnectionItem, ConversationItem, MemberItem, SizingItem, SubscriptionItem, UserItem,
};
use super::requests::{
    build_error, decode_all, epoch_seconds, expires_in, gsi1sk_of, key_map, n, query_read_units, s,
    transact_put, with_prefix,
};
use super::table::{self, CONNECTION_TTL_SECONDS};
use super::MessagingTable;
use crate::error::{applied, classify, classify_transaction, corrupt, AwsError};

/// Counting Queries of one LIST_CONVERSATIONS page in flight at once.
pub const UNREAD_CONCURRENCY: usize = 8;

/// Where a page of "my conversations" stops: the last one's `lastActivity` and id.
pub type ActivityPosition = (String, ConversationId);

/// A conversation to create, with its initial members (the creator is always one).
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub kind: ChannelKind,
    pub title: Option<String>,
    pub created_by: UserId,
    /// Other initial members; duplicates and the creator are ignored.
    pub members: Vec<UserId>,
    /// Epoch milliseconds.
    pub now: i64,
}

/// The result of adding a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined { subscribed_connections: usize },
    AlreadyMember,
}

/// One page of a shard's subscribers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecipientsPage {
    pub recipients: Recipients,
    /// The connection the next page starts after, when there may be more.
    pub next: Option<ConnectionId>,
    /// How many shards the conversation has: read with shard 0's first page only.
    pub shards: Option<u16>,
}

/// Every live connection subscribed to a conversation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recipients {
    pub connections: Vec<(ConnectionId, UserId)>,
    /// Query requests made (1 per ~1 MB of subscriptions).
    pub pages: usize,
    pub consumed_read_units: f64,
}

impl MessagingTable {
    /// Creates a conversation with its members in one transaction (nothing is written if it
    /// already exists: `ConditionFailed`), then subscribes the members' live connections.
    pub async fn create_conversation(
        &self,
        new: &NewConversation,
    ) -> Result<ConversationView, AwsError> {
        let keys = table::tenant(&new.tenant);
        let at = rfc3339_millis(new.now);
        let key = keys.conversation(&new.conversation);
        let item = ConversationItem {
            pk: key.pk,
            sk: key.sk,
            conversation: ConversationView {
                conversation_id: new.conversation.clone(),
                kind: new.kind,
                channel: new.tenant.channel(new.kind, &new.conversation).to_string(),
                title: new.title.clone(),
                created_by: new.created_by.clone(),
                created_at: at.clone(),
                last_activity: at.clone(),
                last_seq: 0,
            },
        };
        // The portal's backend (server API) creates as the system, which is no member.
        let mut members = if new.created_by.is_system() {
            Vec::new()
        } else {
            vec![new.created_by.clone()]
        };
        for member in &new.members {
            if !members.contains(member) {
                members.push(member.clone());
            }
        }
        // The conversation, each membership and the tenant's record: one transaction.
        if members.len() + 2 > messaging_core::protocol::MAX_TRANSACTION_ACTIONS {
            return Err(AwsError::Failed(format!(
                "a conversation with {} members does not fit one transaction",
                members.len()
            )));
        }
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(transact_put(
                &self.name,
                to_item(&item).map_err(|e| corrupt("conversation", e))?,
                Some("attribute_not_exists(PK)"),
            )?);
        for member in &members {
            let member_item =
                self.member_item(&new.tenant, &new.conversation, member, &new.created_by, &at);
            request = request.transact_items(transact_put(
                &self.name,
                to_item(&member_item).map_err(|e| corrupt("member", e))?,
                None,
            )?);
        }
        let tenant_metadata = Update::builder()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.metadata())))
            .update_expression(
                "SET #createdAt = if_not_exists(#createdAt, :at), #clientId = :tenant",
            )
            .expression_attribute_names("#createdAt", "createdAt")
            .expression_attribute_names("#clientId", "clientId")
            .expression_attribute_values(":at", s(&at))
            .expression_attribute_values(":tenant", s(new.tenant.as_str()))
            .build()
            .map_err(build_error)?;
        request
            .transact_items(TransactWriteItem::builder().update(tenant_metadata).build())
            .send()
            .await
            .map_err(|e| classify_transaction("TransactWriteItems(create conversation)", e))?;
        // Its members counted (an atomic counter, as `add_member` counts).
        self.count_members(&new.tenant, &new.conversation, members.len())
            .await?;
        for member in &members {
            self.subscribe_user(&new.tenant, &new.conversation, member)
                .await?;
        }
        Ok(item.conversation)
    }

    /// Counts `added` new members in the conversation's sizing (an atomic counter: adds to
    /// one conversation in parallel never conflict, as a transaction on its sizing item
    /// would), fixing its shard size at its first write. The count only sizes the shards: a
    /// count left short by a failure after the memberships were written sizes them a little
    /// smaller, and every reader and writer still sees the same count.
    async fn count_members(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        added: usize,
    ) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(
                &table::tenant(tenant).subscription_sizing(conversation),
            )))
            .update_expression("ADD #members :added SET #size = if_not_exists(#size, :size)")
            .expression_attribute_names("#members", "members")
            .expression_attribute_names("#size", "shardSize")
            .expression_attribute_values(":added", n(added as i64))
            .expression_attribute_values(":size", n(i64::from(self.shard_size)))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(count members)", e))?;
        Ok(())
    }

    fn member_item(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        added_by: &UserId,
        at: &str,
    ) -> MemberItem {
        let keys = table::tenant(tenant);
        let key = keys.member(conversation, user);
        MemberItem {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: keys.user_conversations_gsi1pk(user),
            gsi1sk: keys.conversation_gsi1sk(conversation),
            conversation_id: conversation.clone(),
            user: user.clone(),
            added_by: added_by.clone(),
            joined_at: at.to_owned(),
            last_read_seq: 0,
        }
    }

    /// The conversation, if it exists in this tenant.
    pub async fn conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationView>, AwsError> {
        let key = table::tenant(tenant).conversation(conversation);
        Ok(self
            .get_as::<ConversationItem>(&key, "conversation")
            .await?
            .map(|item| item.conversation))
    }

    /// Whether `user` is a member of the conversation (one consistent GetItem).
    pub async fn is_member(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<bool, AwsError> {
        let key = table::tenant(tenant).member(conversation, user);
        self.exists(&key, "GetItem(member)").await
    }

    /// Adds `user` to the conversation (idempotent) and subscribes their live connections.
    pub async fn add_member(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        added_by: &UserId,
        now: i64,
    ) -> Result<JoinOutcome, AwsError> {
        let item = self.member_item(tenant, conversation, user, added_by, &rfc3339_millis(now));
        if !self.put_new(&item, "member").await? {
            return Ok(JoinOutcome::AlreadyMember);
        }
        self.count_members(tenant, conversation, 1).await?;
        let subscribed_connections = self.subscribe_user(tenant, conversation, user).await?;
        Ok(JoinOutcome::Joined {
            subscribed_connections,
        })
    }

    /// The conversations `user` belongs to (GSI1, paged).
    pub async fn user_conversations(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<ConversationId>, AwsError> {
        let keys = table::tenant(tenant);
        let entries = self
            .query_gsi1(
                &keys.user_conversations_gsi1pk(user),
                Some(keys.conversations_gsi1_prefix()),
                "Query(GSI1 user conversations)",
            )
            .await?;
        // GSI1 projects keys only: the conversation id is read back from GSI1SK.
        entries
            .iter()
            .map(|item| {
                let sk = gsi1sk_of(item);
                sk.and_then(table::conversation_from_gsi1sk)
                    .ok_or_else(|| corrupt("member index entry", format!("GSI1SK {sk:?}")))
            })
            .collect()
    }

    /// Subscribes every live connection of `user` to the conversation.
    async fn subscribe_user(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<usize, AwsError> {
        let connections = self.user_connections(tenant, user).await?;
        let subscriptions: Vec<_> = connections
            .into_iter()
            .map(|c| (conversation.clone(), c, user.clone()))
            .collect();
        let ttl = expires_in(CONNECTION_TTL_SECONDS);
        self.subscribe(tenant, &subscriptions, ttl).await?;
        Ok(subscriptions.len())
    }

    /// Everyone to deliver a conversation's events to: the sizing, then **one Query per
    /// shard**, each paged by DynamoDB's 1 MB limit. Eventually consistent (half the read
    /// cost); expired subscriptions are skipped.
    pub async fn recipients(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Recipients, AwsError> {
        let keys = table::tenant(tenant);
        let shards = self.shard_count(tenant, conversation).await?;
        let now = epoch_seconds(messaging_core::time::now_millis());
        let mut all = Recipients::default();
        for shard in 0..shards {
            let pk = keys.subscriptions_pk(conversation, shard);
            let pages = self
                .query_all("Query(recipients)", |q| {
                    with_prefix(q, &pk, table::SUBSCRIPTION_PREFIX)
                })
                .await?;
            let subscriptions: Vec<SubscriptionItem> = decode_all(pages.items, "subscription")?;
            all.connections.extend(
                subscriptions
                    .into_iter()
                    .filter(|sub| sub.ttl > now)
                    .map(|sub| (sub.connection_id, sub.user)),
            );
            all.pages += pages.pages;
            all.consumed_read_units += pages.consumed_read_units;
        }
        Ok(all)
    }

    /// Up to `limit` of the recipients in shard `shard` of a conversation after connection
    /// `after` (in key order): one Query (Limit `limit`), and the connection the next page
    /// starts after, if there may be more. Broadcast reads a page per run, so a run's work is
    /// bounded however many sockets a conversation has. Shard 0's first page also returns how
    /// many shards the conversation has (its sizing item sorts first: the same Query).
    pub async fn recipients_page(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        shard: u16,
        after: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<RecipientsPage, AwsError> {
        let keys = table::tenant(tenant);
        let pk = keys.subscriptions_pk(conversation, shard);
        let with_sizing = shard == 0 && after.is_none();
        let query = self.client.query().table_name(&self.name);
        let query = if with_sizing {
            query
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", table::PK)
                .expression_attribute_values(":pk", s(&pk))
        } else {
            with_prefix(query, &pk, table::SUBSCRIPTION_PREFIX)
        };
        let limit = limit.max(1) + usize::from(with_sizing);
        let output = query
            .set_exclusive_start_key(
                after.map(|c| key_map(&keys.subscription(conversation, shard, c))),
            )
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query(recipients page)", e))?;
        // Eventually consistent: a subscription of the last second may be missed (its
        // connection catches up by `seq`).
        let consumed = query_read_units(output.items.as_deref().unwrap_or_default(), false);
        let more = output
            .last_evaluated_key
            .as_ref()
            .is_some_and(|k| !k.is_empty());
        let mut sizing = None;
        let mut items = output.items.unwrap_or_default();
        if with_sizing {
            if let Some(at) = items.iter().position(|item| {
                item.get(table::SK)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(table::SIZING_SK)
            }) {
                let found: SizingItem =
                    from_item(items.remove(at)).map_err(|e| corrupt("sizing", e))?;
                sizing = Some(found);
            }
        }
        let subscriptions: Vec<SubscriptionItem> = decode_all(items, "subscription")?;
        let next = if more {
            subscriptions.last().map(|s| s.connection_id.clone())
        } else {
            None
        };
        let now = epoch_seconds(messaging_core::time::now_millis());
        let connections = subscriptions
            .into_iter()
            .filter(|sub| sub.ttl > now)
            .map(|sub| (sub.connection_id, sub.user))
            .collect();
        Ok(RecipientsPage {
            recipients: Recipients {
                connections,
                pages: 1,
                consumed_read_units: consumed,
            },
            next,
            shards: with_sizing.then(|| sizing.map_or(1, |s| s.shards())),
        })
    }

    /// Which of these connections are still subscribed to the conversation in shard `shard`
    /// (one consistent BatchGetItem per 100): the recipients of a retry, who may have left
    /// since.
    pub async fn subscribed(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        shard: u16,
        connections: &[ConnectionId],
    ) -> Result<Recipients, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = connections
            .iter()
            .map(|c| keys.subscription(conversation, shard, c))
            .collect();
        let now = epoch_seconds(messaging_core::time::now_millis());
        let subscriptions: Vec<SubscriptionItem> =
            decode_all(self.get_items(&wanted, true).await?, "subscription")?;
        Ok(Recipients {
            connections: subscriptions
                .into_iter()
                .filter(|sub| sub.ttl > now)
                .map(|sub| (sub.connection_id, sub.user))
                .collect(),
            pages: wanted.len().div_ceil(100),
            consumed_read_units: 0.0,
        })
    }

    /// Up to `limit` member ids of a conversation, and whether it has more (one Query).
    pub async fn member_ids(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        limit: usize,
    ) -> Result<(Vec<UserId>, bool), AwsError> {
        self.member_ids_after(tenant, conversation, None, limit, "Query(member ids)")
            .await
    }

    /// Up to `limit` member ids after `after` (by user id), and whether there are more: one
    /// Query of `limit + 1` items.
    async fn member_ids_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Option<&UserId>,
        limit: usize,
        operation: &'static str,
    ) -> Result<(Vec<UserId>, bool), AwsError> {
        let keys = table::tenant(tenant);
        let output = with_prefix(
            self.client.query().table_name(&self.name),
            &keys.pk(),
            &keys.members_prefix(conversation),
        )
        .set_exclusive_start_key(after.map(|u| key_map(&keys.member(conversation, u))))
        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| classify(operation, e))?;
        let mut members: Vec<UserId> =
            decode_all::<MemberItem>(output.items.unwrap_or_default(), "member")?
                .into_iter()
                .map(|m| m.user)
                .collect();
        let more = members.len() > limit;
        members.truncate(limit);
        Ok((members, more))
    }

    /// The users among `users` who are members of the conversation (one BatchGetItem per
    /// 100).
    pub async fn members_among(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = users.iter().map(|u| keys.member(conversation, u)).collect();
        Ok(
            decode_all::<MemberItem>(self.get_items(&wanted, false).await?, "member")?
                .into_iter()
                .map(|m| m.user)
                .collect(),
        )
    }

    /// The users among `users` with a live connection now (their user items' presence; one
    /// BatchGetItem per 100).
    pub async fn online_among(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<std::collections::HashSet<UserId>, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = users.iter().map(|u| keys.user(u)).collect();
        let now = messaging_core::time::now_millis();
        Ok(self
            .get_items(&wanted, false)
            .await?
            .into_iter()
            .filter_map(|item| from_item::<_, UserItem>(item).ok())
            .filter(|u| u.presence_at(now) != PresenceStatus::Offline)
            .map(|u| u.user)
            .collect())
    }

    /// The live connections of these users (one Query each): recipients of an event for
    /// named users rather than a conversation's subscribers.
    pub async fn connections_of(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Recipients, AwsError> {
        let mut recipients = Recipients::default();
        for user in users {
            for connection in self.user_connections(tenant, user).await? {
                recipients.connections.push((connection, user.clone()));
            }
            recipients.pages += 1;
        }
        Ok(recipients)
    }

    /// The conversations with these ids (one BatchGetItem per 100), most recently active
    /// first. Ids without a conversation are skipped.
    pub async fn conversations_by_id(
        &self,
        tenant: &TenantId,
        ids: &[ConversationId],
    ) -> Result<Vec<ConversationView>, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = ids.iter().map(|c| keys.conversation(c)).collect();
        let items: Vec<ConversationItem> =
            decode_all(self.get_items(&wanted, false).await?, "conversation")?;
        let mut conversations: Vec<ConversationView> =
            items.into_iter().map(|i| i.conversation).collect();
        conversations.sort_by(|a, b| b.last_activity.cmp(&a.last_activity));
        Ok(conversations)
    }

    /// The members of a conversation (one Query).
    pub async fn members(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Vec<UserId>, AwsError> {
        let keys = table::tenant(tenant);
        let items = self
            .query_prefix(
                &keys.pk(),
                &keys.members_prefix(conversation),
                false,
                "Query(members)",
            )
            .await?;
        Ok(decode_all::<MemberItem>(items, "member")?
            .into_iter()
            .map(|m| m.user)
            .collect())
    }

    /// Up to `limit` members of a conversation after `after` (by user id) and their presence:
    /// one Query page, one BatchGetItem per 100; and the last user id when there may be more.
    pub async fn members_page(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<MemberPresence>, Option<UserId>), AwsError> {
        let keys = table::tenant(tenant);
        let (members, more) = self
            .member_ids_after(tenant, conversation, after, limit, "Query(members page)")
            .await?;
        let users: Vec<_> = members.iter().map(|u| keys.user(u)).collect();
        let now = messaging_core::time::now_millis();
        let present: std::collections::HashMap<UserId, PresenceStatus> = self
            .get_items(&users, false)
            .await?
            .into_iter()
            .filter_map(|item| from_item::<_, UserItem>(item).ok())
            .map(|u| (u.user.clone(), u.presence_at(now)))
            .collect();
        let next = if more { members.last().cloned() } else { None };
        let page = members
            .into_iter()
            .map(|user| MemberPresence {
                status: present
                    .get(&user)
                    .copied()
                    .unwrap_or(PresenceStatus::Offline),
                user_id: user,
            })
            .collect();
        Ok((page, next))
    }

    /// Where `user` stopped reading the conversation (consistent): `None` when they are not
    /// a member.
    pub async fn read_marker(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<Option<u64>, AwsError> {
        let key = table::tenant(tenant).member(conversation, user);
        Ok(self
            .get_as::<MemberItem>(&key, "member")
            .await?
            .map(|m| m.last_read_seq))
    }

    /// Removes `user` from the conversation: the membership, then the subscriptions of the
    /// user's live connections (and their entries in each connection's set). `false` when
    /// the user was not a member (nothing is written).
    pub async fn remove_member(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<bool, AwsError> {
        let keys = table::tenant(tenant);
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.member(conversation, user))))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        if !applied("DeleteItem(member)", deleted)? {
            return Ok(false);
        }
        // Where each live connection's subscription is: its registry says (one consistent
        // BatchGetItem), whatever the conversation's shards are now.
        let connections = self.user_connections(tenant, user).await?;
        let registries: Vec<_> = connections.iter().map(table::connection).collect();
        let registries: Vec<ConnectionItem> =
            decode_all(self.get_items(&registries, true).await?, "connection")?;
        let mine: Vec<(ConnectionId, Subscribed)> = registries
            .into_iter()
            .filter_map(|r| {
                let subscribed = r
                    .subscriptions
                    .into_iter()
                    .find(|s| s.conversation == *conversation)?;
                Some((r.connection_id, subscribed))
            })
            .collect();
        let subscriptions: Vec<_> = mine
            .iter()
            .map(|(c, s)| keys.subscription(conversation, s.shard, c))
            .collect();
        self.delete_keys(&subscriptions).await?;
        for (connection, subscribed) in &mine {
            self.forget_subscription(connection, subscribed).await?;
        }
        Ok(true)
    }

    /// Moves `user`'s read marker forward to `seq` (never back). `false` when it was
    /// already there or beyond.
    pub async fn mark_read(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        seq: u64,
    ) -> Result<bool, AwsError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(
                &table::tenant(tenant).member(conversation, user),
            )))
            .update_expression("SET #read = :seq")
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(#read) OR #read < :seq)",
            )
            .expression_attribute_names("#read", "lastReadSeq")
            .expression_attribute_values(":seq", n(seq))
            .send()
            .await;
        applied("UpdateItem(read marker)", updated)
    }

    /// "My conversations", a page at a time: up to `limit` after `after` (the `(lastActivity,
    /// conversationId)` of the previous page's last), most recently active first, each with
    /// the caller's read marker and unread count; and the position of the last when there are
    /// more. One GSI1 Query, BatchGetItems of the conversations and of the page's memberships,
    /// and a counting Query per conversation of the page with something unread
    /// ([`UNREAD_CONCURRENCY`] at a time).
    pub async fn conversation_summaries(
        &self,
        tenant: &TenantId,
        user: &UserId,
        after: Option<&ActivityPosition>,
        limit: usize,
    ) -> Result<(Vec<ConversationSummary>, Option<ActivityPosition>), AwsError> {
        let ids = self.user_conversations(tenant, user).await?;
        let mut conversations = self.conversations_by_id(tenant, &ids).await?;
        // Most recently active first; the id breaks ties so positions are total.
        conversations.sort_by(|a, b| {
            (&b.last_activity, &b.conversation_id).cmp(&(&a.last_activity, &a.conversation_id))
        });
        let mut page: Vec<ConversationView> = conversations
            .into_iter()
            .filter(|c| {
                after.is_none_or(|(at, id)| (&c.last_activity, &c.conversation_id) < (at, id))
            })
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = page
            .iter()
            .map(|c| keys.member(&c.conversation_id, user))
            .collect();
        let read: std::collections::HashMap<ConversationId, u64> =
            decode_all::<MemberItem>(self.get_items(&wanted, false).await?, "member")?
                .into_iter()
                .map(|m| (m.conversation_id, m.last_read_seq))
                .collect();
        // Owned work items: a closure over borrowed ones would not be Send for every lifetime.
        let work: Vec<(ConversationId, u64, u64)> = page
            .iter()
            .map(|c| {
                let last_read = read.get(&c.conversation_id).copied().unwrap_or(0);
                (c.conversation_id.clone(), last_read, c.last_seq)
            })
            .collect();
        let counts: Vec<Result<u32, AwsError>> = futures_util::stream::iter(work)
            .map(|(conversation, last_read, last_seq)| async move {
                self.unread_count(tenant, &conversation, user, last_read, last_seq)
                    .await
            })
            .buffered(UNREAD_CONCURRENCY)
            .collect()
            .await;
        let next = if more {
            page.last()
                .map(|c| (c.last_activity.clone(), c.conversation_id.clone()))
        } else {
            None
        };
        let summaries = page
            .into_iter()
            .zip(counts)
            .map(|(conversation, unread)| {
                Ok(ConversationSummary {
                    last_read_seq: read
                        .get(&conversation.conversation_id)
                        .copied()
                        .unwrap_or(0),
                    unread_count: unread?,
                    conversation,
                })
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        Ok((summaries, next))
    }

    /// Deletes one subscription, in shard `shard` (a recipient that turned out to be gone).
    pub async fn remove_subscription(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        shard: u16,
        connection: &ConnectionId,
    ) -> Result<(), AwsError> {
        self.delete_keys(&[table::tenant(tenant).subscription(conversation, shard, connection)])
            .await
    }
}
