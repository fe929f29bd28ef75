//! Connection lifecycle: register at `$connect`, look up on every frame, remove at
//! `$disconnect` or when API Gateway answers 410 Gone.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use serde_dynamo::{from_item, to_item};

use messaging_core::shards::{shard_of, Subscribed};
use messaging_core::{ConnectionId, ConversationId, Principal, TenantId, UserId};

use messaging_core::protocol::PresenceStatus;
use messaging_core::time::now_millis;
use messaging_core::token::Contacts;
use tracing::warn;

use super::items::{
    ConnectionItem, MemberItem, SizingItem, SubscriptionItem, UserConnectionItem, UserItem,
};
use super::requests::{
    build_error, decode_all, epoch_seconds, expires_in, key_map, n, s, transact_put,
};
use super::table::{self, CONNECTION_TTL_SECONDS, GSI1PK, GSI1SK};
use super::MessagingTable;
use crate::error::{applied, classify, classify_transaction, corrupt, AwsError};

/// How long presence holds without a heartbeat (the seed's 5-minute presence TTL).
pub const PRESENCE_TTL_MILLIS: i64 = 5 * 60 * 1000;

/// A live connection and the caller behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    pub connection_id: ConnectionId,
    pub principal: Principal,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub subscriptions: Vec<ConversationId>,
    /// Those of them its user's presence changes are announced to (the small ones:
    /// `messaging_core::shards::PRESENCE_MAX_MEMBERS`).
    pub presence: Vec<ConversationId>,
}

/// What `register_connection` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The conversations the connection was subscribed to.
    pub conversations: Vec<ConversationId>,
    /// Those of them the user's coming online is announced to (the small ones).
    pub presence: Vec<ConversationId>,
    /// The last UTC day the user was counted active (connect counts a user once a day).
    pub active_day: Option<String>,
    /// It is the user's only connection: the user just came online. (Two connections opened
    /// at the same instant may both see two and neither report it; presence itself is right.)
    pub first_connection: bool,
    /// Who the connection acts as: the token's principal, with the role and name the portal's
    /// backend set for the user in their place (server API).
    pub principal: Principal,
}

/// What `remove_connection` removed.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedConnection {
    pub principal: Principal,
    /// The conversations it was subscribed to (its subscriptions are deleted).
    pub subscriptions: Vec<ConversationId>,
    /// Those of them its user's going offline is announced to (the small ones).
    pub presence: Vec<ConversationId>,
    /// This was the user's last connection: presence is now offline.
    pub went_offline: bool,
}

impl MessagingTable {
    /// Records a new connection, marks the user online and subscribes the connection to every
    /// conversation the user belongs to. Returns how many subscriptions were made.
    ///
    /// The registry, the user's connection item and the presence update are one transaction;
    /// if subscribing fails afterwards the caller must `remove_connection` (the connect
    /// handler does), so a refused connection leaves nothing behind.
    pub async fn register_connection(
        &self,
        principal: &Principal,
        contacts: &Contacts,
        connection: &ConnectionId,
        connected_at: i64,
    ) -> Result<Registered, AwsError> {
        let keys = table::tenant(&principal.tenant);
        // From the time of writing, not of the event: a replayed or delayed event must not
        // write records that are already expired.
        let ttl = expires_in(CONNECTION_TTL_SECONDS);
        let registry = table::connection(connection);
        let registry_item = ConnectionItem {
            pk: registry.pk,
            sk: registry.sk,
            connection_id: connection.clone(),
            client_id: principal.tenant.clone(),
            user: principal.user.clone(),
            role: principal.role,
            name: principal.name.clone(),
            connected_at,
            ttl,
            subscriptions: Vec::new(),
            quiet: Vec::new(),
        };
        let user_connection = keys.user_connection(&principal.user, connection);
        let user_connection_item = UserConnectionItem {
            pk: user_connection.pk,
            sk: user_connection.sk,
            connection_id: connection.clone(),
            connected_at,
            ttl,
        };
        // OWNER and ADMIN are listed in GSI1 as the tenant's staff (who read every file);
        // a user whose role dropped leaves that list at their next connection.
        let mut set = vec![
            "#user = :user",
            "#role = :role",
            "#presence = :online",
            "#lastSeen = :now",
            "#clientId = :tenant",
            "#expires = :expires",
        ];
        let mut presence = Update::builder()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.user(&principal.user))))
            .expression_attribute_names("#user", "user")
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#presence", "presence")
            .expression_attribute_names("#lastSeen", "lastSeen")
            .expression_attribute_names("#clientId", "clientId")
            .expression_attribute_names("#count", "connectionCount")
            .expression_attribute_names("#expires", "presenceExpiresAt")
            .expression_attribute_names("#g1pk", GSI1PK)
            .expression_attribute_names("#g1sk", GSI1SK)
            .expression_attribute_values(":expires", n(now_millis() + PRESENCE_TTL_MILLIS))
            .expression_attribute_values(":user", s(principal.user.as_str()))
            .expression_attribute_values(":role", s(principal.role.as_str()))
            .expression_attribute_values(":online", s(PresenceStatus::Online.as_str()))
            .expression_attribute_values(":now", n(connected_at))
            .expression_attribute_values(":tenant", s(principal.tenant.as_str()))
            .expression_attribute_values(":one", n(1));
        if let Some(name) = &principal.name {
            set.push("#name = :name");
            presence = presence
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        let staff = principal
            .role
            .can(messaging_core::Permission::AccessAllFiles);
        let mut remove = Vec::new();
        if staff {
            set.extend(["#g1pk = :staff", "#g1sk = :staffUser"]);
            presence = presence
                .expression_attribute_values(":staff", s(keys.staff_gsi1pk()))
                .expression_attribute_values(":staffUser", s(keys.staff_gsi1sk(&principal.user)));
        } else {
            remove.extend(["#g1pk", "#g1sk"]);
        }
        // The contact points the identity provider verified, as of this connection: a claim
        // that disappeared stops the notifications it carried.
        presence = presence
            .expression_attribute_names("#email", "email")
            .expression_attribute_names("#phone", "phone");
        for (name, placeholder, value) in [
            ("#email", ":email", &contacts.email),
            ("#phone", ":phone", &contacts.phone),
        ] {
            match value {
                Some(value) => {
                    set.push(match name {
                        "#email" => "#email = :email",
                        _ => "#phone = :phone",
                    });
                    presence = presence.expression_attribute_values(placeholder, s(value));
                }
                None => remove.push(name),
            }
        }
        let remove = if remove.is_empty() {
            String::new()
        } else {
            format!(" REMOVE {}", remove.join(", "))
        };
        let presence =
            presence.update_expression(format!("SET {} ADD #count :one{remove}", set.join(", ")));
        self.client
            .transact_write_items()
            .transact_items(transact_put(
                &self.name,
                to_item(&registry_item).map_err(|e| corrupt("connection", e))?,
                Some("attribute_not_exists(PK)"),
            )?)
            .transact_items(transact_put(
                &self.name,
                to_item(&user_connection_item).map_err(|e| corrupt("user connection", e))?,
                None,
            )?)
            .transact_items(
                TransactWriteItem::builder()
                    .update(presence.build().map_err(build_error)?)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify_transaction("TransactWriteItems(connect)", e))?;

        // The registry is written first, so a conversation joined from now on subscribes this
        // connection itself; the (eventually consistent) GSI1 read below covers the rest.
        let conversations = self
            .user_conversations(&principal.tenant, &principal.user)
            .await?;
        let subscriptions: Vec<(ConversationId, ConnectionId, UserId)> = conversations
            .iter()
            .map(|c| (c.clone(), connection.clone(), principal.user.clone()))
            .collect();
        let (written, quiet) = self
            .subscribe(&principal.tenant, &subscriptions, ttl)
            .await?;
        // The index may still list a membership that was just removed: keep only what the
        // table confirms now. Read after subscribing, so a removal racing this connect is
        // either seen here or finds the subscription and deletes it itself.
        let confirmed = self
            .confirmed_memberships(&principal.tenant, &principal.user, &conversations)
            .await?;
        let stale: Vec<ConversationId> = conversations
            .iter()
            .filter(|c| !confirmed.contains(*c))
            .cloned()
            .collect();
        if !stale.is_empty() {
            warn!(
                count = stale.len(),
                "the index listed memberships the table no longer has; not subscribed"
            );
            let stale: Vec<&Subscribed> = written
                .iter()
                .filter(|(s, _)| stale.contains(&s.conversation))
                .map(|(s, _)| s)
                .collect();
            let keys: Vec<_> = stale
                .iter()
                .map(|s| {
                    table::tenant(&principal.tenant).subscription(
                        &s.conversation,
                        s.shard,
                        connection,
                    )
                })
                .collect();
            self.delete_keys(&keys).await?;
            for subscribed in stale {
                self.forget_subscription(connection, subscribed).await?;
            }
        }
        let user = self.user(&principal.tenant, &principal.user).await?;
        // The portal's backend set this user's role or name (server API): they hold over the
        // token's. The connection cannot send a frame before $connect answers, so nothing acts
        // with the token's in between.
        let mut effective = principal.clone();
        if let Some(u) = &user {
            if let Some(role) = u.portal_role {
                effective.role = role;
            }
            if let Some(name) = &u.portal_name {
                effective.name = Some(name.clone());
            }
        }
        if effective != *principal {
            self.set_connection_identity(connection, effective.role, effective.name.as_deref())
                .await?;
            if effective.role != principal.role {
                // The token's role was written above; the portal's is the user's.
                self.write_user_role(
                    &effective.tenant,
                    &effective.user,
                    effective.role,
                    None,
                    false,
                )
                .await?;
            }
        }
        let presence = confirmed
            .iter()
            .filter(|c| !quiet.contains(c))
            .cloned()
            .collect();
        Ok(Registered {
            active_day: user.as_ref().and_then(|u| u.active_day.clone()),
            presence,
            conversations: confirmed,
            first_connection: user.as_ref().is_some_and(|u| u.connection_count == 1),
            principal: effective,
        })
    }

    /// Which of these conversations `user` is a member of, by consistent reads of the
    /// memberships (BatchGetItem), in the order given.
    async fn confirmed_memberships(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<ConversationId>, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = conversations.iter().map(|c| keys.member(c, user)).collect();
        let found: std::collections::HashSet<ConversationId> =
            decode_all::<MemberItem>(self.get_items(&wanted, true).await?, "member")?
                .into_iter()
                .map(|m| m.conversation_id)
                .collect();
        Ok(conversations
            .iter()
            .filter(|c| found.contains(*c))
            .cloned()
            .collect())
    }

    /// The tenant's record of a user (role, presence, live connection count).
    pub(crate) async fn user(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<UserItem>, AwsError> {
        self.get_as(&table::tenant(tenant).user(user), "user").await
    }

    /// Where `user`'s notifications may go: the contact points their identity provider
    /// verified, as of their last connection (none when they never connected).
    pub async fn contacts(&self, tenant: &TenantId, user: &UserId) -> Result<Contacts, AwsError> {
        Ok(self
            .user(tenant, user)
            .await?
            .map(|u| Contacts {
                email: u.email,
                phone: u.phone,
            })
            .unwrap_or_default())
    }

    /// The presence others see of `user` at `now` (offline when unknown).
    pub async fn presence(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: i64,
    ) -> Result<PresenceStatus, AwsError> {
        Ok(self
            .user(tenant, user)
            .await?
            .map_or(PresenceStatus::Offline, |u| u.presence_at(now)))
    }

    /// The live connection with this id, if any (consistent read).
    pub async fn connection(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<ConnectionRecord>, AwsError> {
        let Some(item) = self.connection_item(connection).await? else {
            return Ok(None);
        };
        if item.ttl <= epoch_seconds(now_millis()) {
            return Ok(None);
        }
        let (subscriptions, presence) = (item.conversations(), item.presence_audience());
        Ok(Some(ConnectionRecord {
            connection_id: item.connection_id,
            principal: Principal {
                tenant: item.client_id,
                user: item.user,
                role: item.role,
                name: item.name,
            },
            connected_at: item.connected_at,
            subscriptions,
            presence,
        }))
    }

    /// Every live connection of a user (one Query).
    pub async fn user_connections(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<ConnectionId>, AwsError> {
        let keys = table::tenant(tenant);
        let now = epoch_seconds(now_millis());
        let items = self
            .query_prefix(
                &keys.pk(),
                &keys.user_connections_prefix(user),
                true,
                "Query(user connections)",
            )
            .await?;
        let connections: Vec<UserConnectionItem> = decode_all(items, "user connection")?;
        Ok(connections
            .into_iter()
            .filter(|c| c.ttl > now)
            .map(|c| c.connection_id)
            .collect())
    }

    /// Removes a connection and everything hanging off it: its subscriptions, the user's
    /// connection item and, with the user's last connection, online presence. Idempotent:
    /// `None` when the connection was already gone (or another remover won the race).
    pub async fn remove_connection(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<RemovedConnection>, AwsError> {
        let Some(item) = self.connection_item(connection).await? else {
            return Ok(None);
        };
        let keys = table::tenant(&item.client_id);
        let mut children = vec![keys.user_connection(&item.user, connection)];
        children.extend(
            item.subscriptions
                .iter()
                .map(|s| keys.subscription(&s.conversation, s.shard, connection)),
        );
        self.delete_keys(&children).await?;

        // Only the remover whose conditional delete succeeds decrements the count, so
        // concurrent disconnect and 410-pruning of one connection count it once.
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::connection(connection))))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        if !applied("DeleteItem(connection)", deleted)? {
            return Ok(None);
        }
        let went_offline = self.decrement_presence(&item.client_id, &item.user).await?;
        let (subscriptions, presence) = (item.conversations(), item.presence_audience());
        Ok(Some(RemovedConnection {
            principal: Principal {
                tenant: item.client_id,
                user: item.user,
                role: item.role,
                name: item.name,
            },
            subscriptions,
            presence,
            went_offline,
        }))
    }

    async fn connection_item(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<ConnectionItem>, AwsError> {
        self.get_as(&table::connection(connection), "connection")
            .await
    }

    /// Sets a connected user's presence (online or away) and extends it for another
    /// [`PRESENCE_TTL_MILLIS`]. Returns the status others saw before, or `None` when the user
    /// has no live connection (nothing is written then).
    pub async fn set_presence(
        &self,
        tenant: &TenantId,
        user: &UserId,
        status: PresenceStatus,
        now: i64,
    ) -> Result<Option<PresenceStatus>, AwsError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::tenant(tenant).user(user))))
            .update_expression("SET #presence = :status, #expires = :expires, #lastSeen = :now")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#presence", "presence")
            .expression_attribute_names("#expires", "presenceExpiresAt")
            .expression_attribute_names("#lastSeen", "lastSeen")
            .expression_attribute_names("#count", "connectionCount")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":expires", n(now + PRESENCE_TTL_MILLIS))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match updated {
            Ok(output) => {
                let before = output
                    .attributes
                    .map(from_item::<_, UserItem>)
                    .transpose()
                    .map_err(|e| corrupt("user", e))?;
                Ok(Some(
                    before.map_or(PresenceStatus::Offline, |u| u.presence_at(now)),
                ))
            }
            Err(e) => match classify("UpdateItem(set presence)", e) {
                AwsError::ConditionFailed(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// One connection fewer; flips presence offline when none are left. Returns whether it did.
    async fn decrement_presence(&self, tenant: &TenantId, user: &UserId) -> Result<bool, AwsError> {
        let now = now_millis();
        let key = key_map(&table::tenant(tenant).user(user));
        let output = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key.clone()))
            .update_expression("SET #lastSeen = :now ADD #count :minus")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#lastSeen", "lastSeen")
            .expression_attribute_names("#count", "connectionCount")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":minus", n(-1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem(presence)", e))?;
        let remaining = output
            .attributes
            .as_ref()
            .and_then(|a| a.get("connectionCount"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if remaining > 0 {
            return Ok(false);
        }
        // Conditional: a connect that raced in between keeps the user online.
        let offline = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .update_expression("SET #presence = :offline")
            .condition_expression("#count <= :zero")
            .expression_attribute_names("#presence", "presence")
            .expression_attribute_names("#count", "connectionCount")
            .expression_attribute_values(":offline", s(PresenceStatus::Offline.as_str()))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        applied("UpdateItem(presence offline)", offline)
    }

    /// Subscribes connections to conversations: one subscription item each (batched), in the
    /// shard of the conversation its connection hashes to, and each connection's registry
    /// item learns its conversations and shards (so removal finds them exactly). Returns what
    /// was written, and which of the conversations are too large to hear presence changes
    /// (recorded in each registry as `quiet`). A registry that is already gone is not
    /// updated: its connection closed meanwhile, and its subscription expires unread.
    pub(crate) async fn subscribe(
        &self,
        tenant: &TenantId,
        subscriptions: &[(ConversationId, ConnectionId, UserId)],
        ttl: i64,
    ) -> Result<(Vec<(Subscribed, ConnectionId)>, Vec<ConversationId>), AwsError> {
        let keys = table::tenant(tenant);
        let mut conversations: Vec<ConversationId> =
            subscriptions.iter().map(|(c, _, _)| c.clone()).collect();
        conversations.sort();
        conversations.dedup();
        // Which shard each subscription goes to: its connection's hash among the
        // conversation's shards as read now (eventually consistent: a count read just before
        // it grew is still below it, and readers read every shard below the current count).
        let sizing = self.sizing(tenant, &conversations).await?;
        let quiet: Vec<ConversationId> = conversations
            .iter()
            .filter(|c| {
                sizing
                    .get(*c)
                    .is_some_and(|s| !messaging_core::shards::announces_presence(s.members))
            })
            .cloned()
            .collect();
        let shard = |conversation: &ConversationId, connection: &ConnectionId| {
            let shards = sizing.get(conversation).map_or(1, SizingItem::shards);
            shard_of(connection, shards)
        };
        let mut by_connection: HashMap<&ConnectionId, Vec<Subscribed>> = HashMap::new();
        for (conversation, connection, _) in subscriptions {
            by_connection
                .entry(connection)
                .or_default()
                .push(Subscribed {
                    conversation: conversation.clone(),
                    shard: shard(conversation, connection),
                });
        }
        for (connection, subscribed) in &by_connection {
            let set = subscribed.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let quiet_here: Vec<String> = subscribed
                .iter()
                .filter(|s| quiet.contains(&s.conversation))
                .map(|s| s.conversation.to_string())
                .collect();
            let update = self
                .client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(key_map(&table::connection(connection))))
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_names("#subs", "subscriptions")
                .expression_attribute_values(":subs", AttributeValue::Ss(set));
            // A string set cannot be empty: `quiet` is added only when there is one.
            let update = if quiet_here.is_empty() {
                update.update_expression("ADD #subs :subs")
            } else {
                update
                    .update_expression("ADD #subs :subs, #quiet :quiet")
                    .expression_attribute_names("#quiet", "quiet")
                    .expression_attribute_values(":quiet", AttributeValue::Ss(quiet_here))
            };
            let result = update.send().await;
            // A registry that is already gone (its connection closed) is skipped; its
            // subscription expires unread (a 410 prunes it first).
            applied("UpdateItem(subscriptions)", result)?;
        }
        let mut written = Vec::new();
        let mut items = Vec::new();
        for (conversation, connection, user) in subscriptions {
            let shard = shard(conversation, connection);
            let key = keys.subscription(conversation, shard, connection);
            items.push(
                to_item(SubscriptionItem {
                    pk: key.pk,
                    sk: key.sk,
                    connection_id: connection.clone(),
                    user: user.clone(),
                    ttl,
                })
                .map_err(|e| corrupt("subscription", e))?,
            );
            written.push((
                Subscribed {
                    conversation: conversation.clone(),
                    shard,
                },
                connection.clone(),
            ));
        }
        self.put_items(items).await?;
        Ok((written, quiet))
    }

    /// How many shards a conversation's subscriptions are spread over (its sizing, read
    /// eventually consistent; 1 without one).
    pub(crate) async fn shard_count(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<u16, AwsError> {
        Ok(self
            .sizing(tenant, std::slice::from_ref(conversation))
            .await?
            .get(conversation)
            .map_or(1, SizingItem::shards))
    }

    /// The sizing of these conversations' subscriptions (one eventually consistent
    /// BatchGetItem per 100); a conversation without one has a single shard.
    pub async fn sizing(
        &self,
        tenant: &TenantId,
        conversations: &[ConversationId],
    ) -> Result<HashMap<ConversationId, SizingItem>, AwsError> {
        let keys = table::tenant(tenant);
        let wanted: Vec<_> = conversations
            .iter()
            .map(|c| keys.subscription_sizing(c))
            .collect();
        let mut sizing = HashMap::new();
        for item in self.get_items(&wanted, false).await? {
            let pk = item
                .get(table::PK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let Some(conversation) = conversations
                .iter()
                .find(|c| keys.subscriptions_pk(c, 0) == pk)
            else {
                continue;
            };
            let found: SizingItem = from_item(item).map_err(|e| corrupt("sizing", e))?;
            sizing.insert(conversation.clone(), found);
        }
        Ok(sizing)
    }

    /// Removes `conversation` from a connection's subscription set (a closed registry is
    /// skipped).
    pub(crate) async fn forget_subscription(
        &self,
        connection: &ConnectionId,
        subscribed: &Subscribed,
    ) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::connection(connection))))
            .update_expression("DELETE #subs :subs, #quiet :quiet")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#subs", "subscriptions")
            .expression_attribute_names("#quiet", "quiet")
            .expression_attribute_values(":subs", AttributeValue::Ss(vec![subscribed.to_string()]))
            .expression_attribute_values(
                ":quiet",
                AttributeValue::Ss(vec![subscribed.conversation.to_string()]),
            )
            .send()
            .await;
        applied("UpdateItem(forget subscription)", result).map(|_| ())
    }
}
