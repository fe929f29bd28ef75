//! What the server API (the portal's backend) keeps beyond the shared items: the answers of
//! its POSTs by `Idempotency-Key`, and the portal's record of a user (display name, role) that
//! overrides a token's at every connection.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use messaging_core::protocol::{IdempotencyKey, PresenceStatus};
use messaging_core::{ConnectionId, Permission, Role, TenantId, UserId};

use super::requests::{epoch_seconds, key_map, n, s};
use super::table::{self, GSI1PK, GSI1SK};
use super::MessagingTable;
use crate::error::{applied, classify, AwsError};

/// How long a POST's answer is kept for a repeat with the same key (Stripe's window).
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;
/// A claim older than this belongs to a request that died (the function's timeout is 10 s,
/// API Gateway's 30 s): the same request may take it over.
pub const IDEMPOTENCY_STALE_MILLIS: i64 = 60_000;

/// Connection records updated at once by [`MessagingTable::set_portal_user`].
const CONNECTION_UPDATES_IN_FLIGHT: usize = 16;

const PENDING: &str = "pending";
const DONE: &str = "done";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdempotencyItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    request_hash: String,
    state: String,
    started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    ttl: i64,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody had it (or its holder died): carry the request out, then `complete` or `release`.
    Claimed,
    /// The same request was answered: this is its answer.
    Answered { status: u16, body: String },
    /// The same request is being carried out right now.
    InProgress,
    /// The key answered (or is answering) a different request.
    OtherRequest,
}

impl MessagingTable {
    /// Claims `key` for the request whose hash is `request_hash`, at `now` (epoch ms).
    pub async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_hash: &str,
        now: i64,
    ) -> Result<Claim, AwsError> {
        let k = table::tenant(tenant).idempotency(key);
        let item = IdempotencyItem {
            pk: k.pk.clone(),
            sk: k.sk.clone(),
            request_hash: request_hash.to_owned(),
            state: PENDING.into(),
            started_at: now,
            status: None,
            body: None,
            ttl: epoch_seconds(now) + IDEMPOTENCY_TTL_SECONDS,
        };
        let item: std::collections::HashMap<String, AttributeValue> = serde_dynamo::to_item(&item)
            .map_err(|e| crate::error::corrupt("idempotency key", e))?;
        // A key deleted between our failed claim and our read (its request failed and
        // released it) is claimed again: at most three rounds.
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.name)
                .set_item(Some(item.clone()))
                .condition_expression(
                    "attribute_not_exists(PK) OR #ttl < :nowSeconds \
                     OR (#state = :pending AND startedAt < :stale AND requestHash = :hash)",
                )
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":nowSeconds", n(epoch_seconds(now)))
                .expression_attribute_values(":pending", s(PENDING))
                .expression_attribute_values(":stale", n(now - IDEMPOTENCY_STALE_MILLIS))
                .expression_attribute_values(":hash", s(request_hash))
                .send()
                .await;
            if applied("PutItem(idempotency claim)", put)? {
                return Ok(Claim::Claimed);
            }
            let Some(found) = self
                .get_as::<IdempotencyItem>(&k, "idempotency key")
                .await?
            else {
                continue;
            };
            if found.request_hash != request_hash {
                return Ok(Claim::OtherRequest);
            }
            return Ok(match (found.state.as_str(), found.status, found.body) {
                (DONE, Some(status), Some(body)) => Claim::Answered { status, body },
                _ => Claim::InProgress,
            });
        }
        Ok(Claim::InProgress)
    }

    /// Keeps the answer of the request that claimed `key`, for its repeats.
    pub async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_hash: &str,
        status: u16,
        body: &str,
        now: i64,
    ) -> Result<(), AwsError> {
        let k = table::tenant(tenant).idempotency(key);
        let item = IdempotencyItem {
            pk: k.pk,
            sk: k.sk,
            request_hash: request_hash.to_owned(),
            state: DONE.into(),
            started_at: now,
            status: Some(status),
            body: Some(body.to_owned()),
            ttl: epoch_seconds(now) + IDEMPOTENCY_TTL_SECONDS,
        };
        self.put_item(&item, "idempotency answer").await
    }

    /// Gives `key` up after a failure worth retrying: the same request may run again at once.
    /// Only a pending claim of this request is removed.
    pub async fn release_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> Result<(), AwsError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::tenant(tenant).idempotency(key))))
            .condition_expression("#state = :pending AND requestHash = :hash")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":hash", s(request_hash))
            .send()
            .await;
        applied("DeleteItem(idempotency claim)", deleted).map(|_| ())
    }

    /// The portal's record of `user`: `role` (and `name`, when given) from now on, kept as
    /// `portalRole` / `portalName` so that every later connection takes them over its token's,
    /// and applied to the user's live connections. Creates the user's record if they never
    /// connected. Returns the live connections changed (a user has few: each is a socket).
    pub async fn set_portal_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
        role: Role,
        name: Option<&str>,
    ) -> Result<Vec<ConnectionId>, AwsError> {
        self.write_user_role(tenant, user, role, name, true).await?;
        let connections = self.user_connections(tenant, user).await?;
        // Sixteen at a time: however many sockets a user holds, this stays well inside the
        // function's 10 s.
        // (Owned items: a closure over borrowed ones would not be Send for every lifetime.)
        let updated: Vec<Result<(), AwsError>> =
            futures_util::stream::iter(connections.clone())
                .map(|connection| async move {
                    self.set_connection_identity(&connection, role, name).await
                })
                .buffer_unordered(CONNECTION_UPDATES_IN_FLIGHT)
                .collect()
                .await;
        updated.into_iter().collect::<Result<(), AwsError>>()?;
        Ok(connections)
    }

    /// Sets `user`'s role (and name) on their record, with the staff index (who reads every
    /// file) to match; `portal`: as the portal's own, which later tokens do not override.
    pub(crate) async fn write_user_role(
        &self,
        tenant: &TenantId,
        user: &UserId,
        role: Role,
        name: Option<&str>,
        portal: bool,
    ) -> Result<(), AwsError> {
        let keys = table::tenant(tenant);
        let mut set = vec![
            "#user = :user",
            "clientId = :tenant",
            "#role = :role",
            "presence = if_not_exists(presence, :offline)",
            "lastSeen = if_not_exists(lastSeen, :zero)",
        ];
        if portal {
            set.push("portalRole = :role");
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.user(user))))
            .expression_attribute_names("#user", "user")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":user", s(user.as_str()))
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .expression_attribute_values(":role", s(role.as_str()))
            .expression_attribute_values(":offline", s(PresenceStatus::Offline.as_str()))
            .expression_attribute_values(":zero", n(0));
        if let Some(name) = name {
            set.push("#name = :name");
            if portal {
                set.push("portalName = :name");
            }
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        update = update
            .expression_attribute_names("#g1pk", GSI1PK)
            .expression_attribute_names("#g1sk", GSI1SK);
        let expression = if role.can(Permission::AccessAllFiles) {
            set.extend(["#g1pk = :staff", "#g1sk = :staffUser"]);
            update = update
                .expression_attribute_values(":staff", s(keys.staff_gsi1pk()))
                .expression_attribute_values(":staffUser", s(keys.staff_gsi1sk(user)));
            format!("SET {}", set.join(", "))
        } else {
            format!("SET {} REMOVE #g1pk, #g1sk", set.join(", "))
        };
        update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| classify("UpdateItem(user role)", e))?;
        Ok(())
    }

    /// Gives a live connection's record this role (and name): its next frames act with them
    /// (a sandbox that read the record in the last minute keeps its copy until then).
    pub(crate) async fn set_connection_identity(
        &self,
        connection: &ConnectionId,
        role: Role,
        name: Option<&str>,
    ) -> Result<(), AwsError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&table::connection(connection))))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":role", s(role.as_str()));
        let expression = match name {
            Some(name) => {
                update = update
                    .expression_attribute_names("#name", "name")
                    .expression_attribute_values(":name", AttributeValue::S(name.to_owned()));
                "SET #role = :role, #name = :name"
            }
            None => "SET #role = :role",
        };
        // A connection that closed meanwhile has nothing to change.
        applied(
            "UpdateItem(connection identity)",
            update.update_expression(expression).send().await,
        )
        .map(|_| ())
    }
}
