//! The items of the table, as serde types (written and read with serde_dynamo).
//!
//! Attribute names are camelCase like the seed's schema; key attributes are those of
//! [`super::table`]. Plain ids are stored as strings; the tenant-scoped index values
//! (`GSI1PK`, `userId`) are built by [`super::table`] only.

use serde::{Deserialize, Serialize};

use messaging_core::files::{CommentView, FilePermissions, FileView};
use messaging_core::notify::{NotificationStatus, Preferences};
use messaging_core::protocol::NotificationView;
use messaging_core::protocol::{ConversationView, MessageView, PresenceStatus};
use messaging_core::shards::Subscribed;
use messaging_core::{ConnectionId, ConversationId, FileId, Role, TenantId, UserId};

/// `CONNECTION#c | METADATA`: who is behind a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub connection_id: ConnectionId,
    pub client_id: TenantId,
    pub user: UserId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub ttl: i64,
    /// Conversations this connection is subscribed to, each with the shard its subscription
    /// was written to (a DynamoDB string set of `conversation` or `conversation#shard`), so
    /// that disconnecting removes exactly its subscriptions.
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subscriptions: Vec<Subscribed>,
    /// Those of its conversations too large to hear its user's presence changes
    /// (`messaging_core::shards::PRESENCE_MAX_MEMBERS`), as they were when it subscribed.
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub quiet: Vec<ConversationId>,
}

impl ConnectionItem {
    /// The conversations it is subscribed to.
    pub fn conversations(&self) -> Vec<ConversationId> {
        self.subscriptions
            .iter()
            .map(|s| s.conversation.clone())
            .collect()
    }

    /// The conversations its user's presence changes are announced to: its conversations
    /// but the quiet ones.
    pub fn presence_audience(&self) -> Vec<ConversationId> {
        self.subscriptions
            .iter()
            .map(|s| &s.conversation)
            .filter(|c| !self.quiet.contains(c))
            .cloned()
            .collect()
    }
}

/// `CLIENT#t | USER#u#CONN#c`: one live connection of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserConnectionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub connection_id: ConnectionId,
    pub connected_at: i64,
    pub ttl: i64,
}

/// `CLIENT#t | CONVERSATION#v`: the conversation as clients see it, plus its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(flatten)]
    pub conversation: ConversationView,
}

/// `CLIENT#t | CONVERSATION#v#MEMBER#u`, indexed in GSI1 by user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    pub conversation_id: ConversationId,
    pub user: UserId,
    pub added_by: UserId,
    pub joined_at: String,
    /// The read marker (MARK_READ): the member has read every message up to this `seq`.
    #[serde(default)]
    pub last_read_seq: u64,
}

/// `CLIENT#t#CONVERSATION#v#SUBS#s | CONN#c`: deliver this conversation's events to
/// connection c.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub connection_id: ConnectionId,
    pub user: UserId,
    pub ttl: i64,
}

/// `CLIENT#t#CONVERSATION#v#SUBS#0 | #SHARDS`: how many shards the conversation's
/// subscriptions are spread over (`messaging_core::shards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SizingItem {
    /// Members ever added (never decremented: the count of shards only grows).
    #[serde(default)]
    pub members: u64,
    #[serde(default = "default_shard_size")]
    pub shard_size: u32,
}

fn default_shard_size() -> u32 {
    messaging_core::shards::DEFAULT_SHARD_SIZE
}

impl SizingItem {
    pub fn shards(&self) -> u16 {
        messaging_core::shards::shards_for(self.members, self.shard_size)
    }
}

/// `CLIENT#t | CONVERSATION#v#MSG#m`: a stored chat message: the seed's schema, exactly as
/// clients see it, plus its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(flatten)]
    pub message: MessageView,
    /// Bumped by every change: edits, deletes and reactions are conditional on it.
    #[serde(default)]
    pub version: u64,
    /// Set on a thread reply: GSI1 lists a thread's replies.
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

/// `CLIENT#t | CONVERSATION#v#CMID#u#{id}`: a send's idempotency key, pointing at the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientMessageItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub seq: u64,
    pub ttl: i64,
}

/// `CLIENT#t | SEARCH#{level}#{bucket}#{newest}#{id}`: a block of the search index
/// (`lines`: `messaging_core::search::Block::encode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBlockItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub lines: String,
}

/// `CLIENT#t | USER#u` as read back (it is only ever written with UpdateItem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserItem {
    pub user: UserId,
    pub role: Role,
    pub presence: PresenceStatus,
    #[serde(default)]
    pub connection_count: i64,
    pub last_seen: i64,
    /// Epoch ms after which `presence` no longer holds (the seed's 5-minute presence TTL):
    /// refreshed at connect and by SET_PRESENCE heartbeats.
    #[serde(default)]
    pub presence_expires_at: i64,
    /// The email address the identity provider verified (`email`, `email_verified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The phone number the identity provider verified (E.164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The role the portal's backend gave the user (server API): it overrides the token's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_role: Option<Role>,
    /// The display name the portal's backend gave the user: it overrides the token's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_name: Option<String>,
    /// The last UTC day (`YYYY-MM-DD`) the user was counted among the tenant's active users
    /// (`MessagingTable::record_active`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_day: Option<String>,
}

impl UserItem {
    /// The presence others see at `now`: offline without a live connection or once the
    /// heartbeat lapsed.
    pub fn presence_at(&self, now: i64) -> PresenceStatus {
        if self.connection_count > 0 && self.presence_expires_at > now {
            self.presence
        } else {
            PresenceStatus::Offline
        }
    }
}

/// `CLIENT#t | FILE#f`: a file's metadata, listed in GSI1 under the tenant's files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    #[serde(flatten)]
    pub file: FileView,
    /// The object's key in the files bucket: `tenants/{clientId}/files/{fileId}`.
    #[serde(rename = "s3Key")]
    pub s3_key: String,
}

/// `CLIENT#t | FILE#f#SHARE#u`: what u may do with f, listed in GSI1 under u.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    pub file_id: FileId,
    pub user: UserId,
    pub permissions: FilePermissions,
    pub shared_by: UserId,
    pub shared_at: String,
}

/// `CLIENT#t | FILE#f#GRANT#v`: f was posted into conversation v; its members may `read` it,
/// and `download` it when a poster allowed that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub file_id: FileId,
    pub conversation_id: ConversationId,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub download: bool,
    pub granted_by: UserId,
    pub granted_at: String,
}

/// `CLIENT#t | FILE#f#COMMENT#k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(flatten)]
    pub comment: CommentView,
}

/// `CLIENT#t | NOTIFICATION#u#n`: something u should hear about (the in-app list), and
/// while it is pending, an entry in the batch job's work list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    /// Present while pending: the batch job's work list.
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    pub client_id: TenantId,
    pub user: UserId,
    #[serde(flatten)]
    pub notification: NotificationView,
    /// Who caused it (`actorId`): a lifecycle erasure of them removes it.
    #[serde(rename = "actorId", default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserId>,
    /// `pending` until the batch settles it (`sent`, `suppressed`, `in_app_only`), or `live`
    /// (pushed to an open socket when written).
    pub status: NotificationStatus,
    pub ttl: i64,
}

/// `CLIENT#t | USER#u#PREFS`: notification preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencesItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(flatten)]
    pub preferences: Preferences,
}

/// `CLIENT#t | DIGEST#u#{first notification}#{channel}`: one channel's delivery of one batch
/// of notifications: written before sending, so a second run never sends it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub state: DeliveryState,
    pub notifications: Vec<String>,
    pub at: String,
    pub ttl: i64,
}

/// Where one channel's delivery of a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Claimed by a run that is sending (or died sending: it may have gone out).
    Sending,
    /// Out.
    Sent,
}

/// `CLIENT#t | LIMITS`: the rate limits an operator set for the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitsItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub limits: messaging_core::limits::RateLimits,
}
