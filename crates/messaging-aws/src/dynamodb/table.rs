//! The single-table layout: every key of the `StackPro-Messaging` table is built here.
//!
//! Tenant data lives under partition `CLIENT#{clientId}` and every builder for it starts from
//! a [`TenantId`] ([`TenantKeys`]), so a key of another tenant cannot be spelled by accident.
//! Ids cannot contain `#` (see `messaging_core::ids`), so a segment never ends early and a
//! `begins_with` prefix ending in `#` matches exactly one entity's children.
//!
//! | PK | SK | item | access pattern it serves |
//! |---|---|---|---|
//! | `CLIENT#t` | `METADATA` | tenant | portal info; created with its first conversation. `retentionDays` when the tenant keeps its messages that long, and then also in GSI1 (`RETENTION#TENANTS` / `DAYS#{days}#CLIENT#t`: the index projects keys only): the daily sweep's list of tenants to sweep (one Query) |
//! | `CLIENT#t` | `USER#u` | tenant member | role, presence, live connection count (presence flips offline when it reaches 0), the email and phone the identity provider verified (where notifications may go); `portalRole` / `portalName` when the portal's backend set them (server API `PUT /users/{u}`: they override the token's at every connection). OWNERs and ADMINs also in GSI1 (`CLIENT#t#STAFF` / `USER#u`): who reads every file |
//! | `CLIENT#t` | `USER#u#CONN#c` | a user's live connection | Query `begins_with USER#u#CONN#`: subscribe all of a user's sockets when they join a conversation |
//! | `CLIENT#t` | `CONVERSATION#v` | conversation | metadata, `lastActivity`; GetItem before join. A send takes its `seq` with one UpdateItem (`lastSeq` + 1, ALL_NEW): never a conflict |
//! | `CLIENT#t` | `CONVERSATION#v#MEMBER#u` | membership | GetItem: access check on every send. GSI1 (`CLIENT#t#USER#u` / `CONVERSATION#v`): a user's conversations, confirmed at `$connect` by one consistent BatchGetItem (the index is eventually consistent: a removed member must not be resubscribed) |
//! | `CLIENT#t#CONVERSATION#v#SUBS#s` | `CONN#c` | fan-out subscription of connection c, in shard `s` of the conversation's `shards` (`messaging_core::shards`: `s` = a hash of `c`, fixed when written and recorded in c's registry) | **one Query per shard** = every socket of that shard to deliver to (1 MB ≈ 8,000 recipients a page); one broadcast job per shard, in parallel. Outside the tenant's partition so that a connect storm writes each conversation's shards, not one key (docs/scale.md) |
//! | `CLIENT#t#CONVERSATION#v#SUBS#0` | `#SHARDS` | the conversation's sizing: `members` (members ever added: only grows) and `shardSize`, fixed by its first write; `shards = ceil(members / shardSize)` | sorts before every `CONN#`, so shard 0's first Query page returns it with the first subscribers (no extra read for a fan-out); BatchGetItem at `$connect` and join (which shard to write). Updated in the transaction that adds a member |
//! | `CLIENT#t` | `CONVERSATION#v#CONN#c` | a subscription written before shards (read by nothing now; expires within 24 h) | erasure and offboarding still delete it |
//! | `CLIENT#t` | `CONVERSATION#v#MSG#{seq:012}` | message, keyed by its sequence number | Query a `seq` range: history pages newest first, catch-up "after S" oldest first. A thread reply is also in GSI1 (`CLIENT#t#CONVERSATION#v#THREAD#{parent}` / `MSG#{seq}`): a thread's replies. A void (a `seq` a send gave up: a tombstone by `stackpro.system`) is written on `attribute_not_exists` by that send or by a history read |
//! | `CLIENT#t` | `CONVERSATION#v#CMID#u#{clientMessageId}` | idempotency key of a send (24 h TTL) | written in the send transaction: a resend with the same id fails its condition and stores nothing |
//! | `CLIENT#t` | `SEARCH#{level:02}#{bucket:02}#{newest timestamp}#{content id:016x}` | search index block: the words of one hash bucket of one indexer batch, one line per message (`messaging_core::search::Block`) | written by the search indexer from the table's stream, never on the message path. Per level (1, 8, 64), Query `begins_with SEARCH#{level}#{bucket of the word}#`, newest first: candidate messages for a word |
//! | `CLIENT#t` | `FILE#f` | file metadata (name, size, type, owner, S3 key) | GetItem on every file action. GSI1 (`CLIENT#t#FILES` / `FILE#f`): every file of the tenant (OWNER/ADMIN) |
//! | `CLIENT#t` | `FILE#f#SHARE#u` | a share: u's read/comment/edit/download | GetItem: the caller's permissions. Query `begins_with FILE#f#SHARE#`: who may read (comment fan-out). GSI1 (`CLIENT#t#USER#u` / `FILE#f`): files shared with u |
//! | `CLIENT#t` | `FILE#f#GRANT#v` | the file posted into conversation v (`read`, and `download` if the poster allowed it): v's members have that while they are members | Query `begins_with FILE#f#GRANT#` (at most 100 a file) then one consistent BatchGetItem of the caller's memberships: a member's permissions. Written by the post, a union that only grows |
//! | `CLIENT#t` | `FILE#f#COMMENT#k` | file comment (k: time-ordered) | Query `begins_with FILE#f#COMMENT#`: a file's comments, oldest first |
//! | `CLIENT#t` | `NOTIFICATION#u#n` | a notification for u (n: time-ordered) | Query `begins_with NOTIFICATION#u#`, newest first: the in-app list. While pending also in GSI1 (`CLIENT#t#NOTIFY#PENDING#{0..7}`, the shard by user / `{createdAt}#CLIENT#t#USER#u#n`): the tenant's work list, oldest first; one tenant's burst never shares a partition with another's, nor all of it one partition |
//! | `CLIENT#t` | `NOTIFY#PENDING` | "this tenant has pending notifications" (`markedAt`) | UpdateItem by broadcast when it stores pending ones; GSI1 (`NOTIFY#TENANTS#{0..15}`, the shard by tenant / `CLIENT#t`): the batch coordinator's list of tenants with work; deleted by the worker that drained the tenant unless marked again since |
//! | `CLIENT#t` | `USER#u#PREFS` | notification preferences | GetItem per user per batch |
//! | `CLIENT#t` | `DIGEST#u#n#{channel}` | one channel's delivery of a batch (7-day TTL) | conditional put before sending: never twice |
//! | `CLIENT#t` | `IDEM#{key}` | a server API POST's `Idempotency-Key`: the request's hash, `pending` while it runs, then its answer (24 h TTL) | conditional PutItem claims it (new, expired, or a pending claim over 60 s old of the same request); a repeat reads it (consistent GetItem) and gets the stored answer |
//! | `CLIENT#t` | `AUDIT#{at:013}#{id}` | an audit entry (`messaging_core::audit`): an administrative action, by whom and through which door (400-day TTL) | PutItem after the action (≈ 0.3 KB: 1 WCU). Query `begins_with AUDIT#`, newest first, `limit` ≤ 100 a page (≤ 100 KB: ≤ 13 RCU eventually consistent): the OWNER's audit log |
//! | `CLIENT#t#JOBS` | `JOB#{jobId}` | a lifecycle job (export, erasure: `messaging_core::lifecycle`): what it is, its counts, and where its walk of `CLIENT#t` stopped (30-day TTL once finished) | GetItem (consistent) and one conditional UpdateItem per step; beside the tenant's partition so the walk never meets it |
//! | `CLIENT#t` | `LIMITS` | the tenant's rate limits, when an operator set them | GetItem per tenant per minute per sandbox (cached) |
//! | `CLIENT#t` | `RATE#TENANT#{window}` / `RATE#USER#u#{window}` | sends counted in one 10 s window, added by each sandbox once per batch (2-minute TTL) | UpdateItem ADD, returning the total: what the other sandboxes admitted |
//! | `CLIENT#t` | `ACTIVE#{day}` | the users connected that UTC day (string set) | GSI1 (`ACTIVE#{day}` / `CLIENT#t`): every tenant's set, for the ActiveUsers metric |
//! | `CONNECTION#c` | `METADATA` | connection registry | GetItem: API Gateway hands us only the connection id; this maps it to tenant, user and role |
//!
//! The registry is the one item outside a tenant partition: its key is the id API Gateway
//! assigned (clients cannot choose it), and it is the source of the caller's tenant.
//!
//! Items that expire (connections, subscriptions) carry `ttl` (epoch seconds). DynamoDB deletes
//! them some time after expiry, so readers also filter on it.

use messaging_core::notify::Channel;
use messaging_core::protocol::IdempotencyKey;
use messaging_core::{CommentId, ConnectionId, ConversationId, FileId, TenantId, UserId};

/// Partition key attribute.
pub const PK: &str = "PK";
/// Sort key attribute.
pub const SK: &str = "SK";
/// GSI1 ("a user's conversations") partition key attribute.
pub const GSI1PK: &str = "GSI1PK";
/// GSI1 sort key attribute.
pub const GSI1SK: &str = "GSI1SK";
pub const GSI1: &str = "GSI1";
/// The TTL attribute (epoch seconds).
pub const TTL: &str = "ttl";

/// How long a connection (and what hangs off it) lives without a `$disconnect`: API Gateway's
/// 2-hour connection limit, with margin for a missed disconnect.
pub const CONNECTION_TTL_SECONDS: i64 = 24 * 60 * 60;

/// How long a client message id protects against a resend.
pub const CLIENT_MESSAGE_ID_TTL_SECONDS: i64 = 24 * 60 * 60;

/// Sort key prefix of a subscription in its shard's partition.
pub const SUBSCRIPTION_PREFIX: &str = "CONN#";

/// Sort key of a conversation's sizing item: `#` sorts before `CONN#`.
pub const SIZING_SK: &str = "#SHARDS";

/// Digits of a `seq` inside a key: sorts numerically up to 10^12 - 1 messages.
fn seq_part(seq: u64) -> String {
    format!("{seq:012}")
}

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

/// Key builders for one tenant's partition.
#[derive(Debug, Clone, Copy)]
pub struct TenantKeys<'a>(&'a TenantId);

/// The keys of `tenant`: the only way to build a tenant-scoped key.
pub fn tenant(tenant: &TenantId) -> TenantKeys<'_> {
    TenantKeys(tenant)
}

impl TenantKeys<'_> {
    pub fn pk(&self) -> String {
        format!("CLIENT#{}", self.0)
    }

    fn key(&self, sk: String) -> Key {
        Key { pk: self.pk(), sk }
    }

    pub fn metadata(&self) -> Key {
        self.key("METADATA".into())
    }

    pub fn user(&self, user: &UserId) -> Key {
        self.key(format!("USER#{user}"))
    }

    pub fn idempotency(&self, key: &IdempotencyKey) -> Key {
        self.key(format!("IDEM#{key}"))
    }

    pub fn user_connection(&self, user: &UserId, connection: &ConnectionId) -> Key {
        self.key(format!("USER#{user}#CONN#{connection}"))
    }

    pub fn user_connections_prefix(&self, user: &UserId) -> String {
        format!("USER#{user}#CONN#")
    }

    pub fn conversation(&self, conversation: &ConversationId) -> Key {
        self.key(format!("CONVERSATION#{conversation}"))
    }

    pub fn member(&self, conversation: &ConversationId, user: &UserId) -> Key {
        self.key(format!("CONVERSATION#{conversation}#MEMBER#{user}"))
    }

    pub fn members_prefix(&self, conversation: &ConversationId) -> String {
        format!("CONVERSATION#{conversation}#MEMBER#")
    }

    /// The partition of shard `shard` of a conversation's subscriptions.
    pub fn subscriptions_pk(&self, conversation: &ConversationId, shard: u16) -> String {
        format!("{}#CONVERSATION#{conversation}#SUBS#{shard}", self.pk())
    }

    /// Connection `connection`'s subscription, in shard `shard`.
    pub fn subscription(
        &self,
        conversation: &ConversationId,
        shard: u16,
        connection: &ConnectionId,
    ) -> Key {
        Key {
            pk: self.subscriptions_pk(conversation, shard),
            sk: format!("{SUBSCRIPTION_PREFIX}{connection}"),
        }
    }

    /// The conversation's sizing item (how many shards), first in shard 0's partition.
    pub fn subscription_sizing(&self, conversation: &ConversationId) -> Key {
        Key {
            pk: self.subscriptions_pk(conversation, 0),
            sk: SIZING_SK.into(),
        }
    }

    pub fn message(&self, conversation: &ConversationId, seq: u64) -> Key {
        self.key(format!("CONVERSATION#{conversation}#MSG#{}", seq_part(seq)))
    }

    /// The idempotency item of `user`'s send with this client message id. The id is the last
    /// segment, so whatever characters it holds cannot reach another item's key range.
    pub fn client_message(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        client_message_id: &str,
    ) -> Key {
        self.key(format!(
            "CONVERSATION#{conversation}#CMID#{user}#{client_message_id}"
        ))
    }

    /// GSI1 partition of the replies to message `parent`.
    pub fn thread_gsi1pk(&self, conversation: &ConversationId, parent: u64) -> String {
        format!(
            "CLIENT#{}#CONVERSATION#{conversation}#THREAD#{}",
            self.0,
            seq_part(parent)
        )
    }

    /// GSI1 sort key of a reply.
    pub fn thread_gsi1sk(&self, seq: u64) -> String {
        format!("MSG#{}", seq_part(seq))
    }

    /// A block of the search index: the words of bucket `bucket` (of `level` buckets) of one
    /// indexer batch, placed by its newest message's `timestamp` and its content's `id`.
    pub fn search_block(&self, level: u8, bucket: u8, newest: &str, id: u64) -> Key {
        self.key(format!(
            "{}{newest}#{id:016x}",
            self.search_bucket_prefix(level, bucket)
        ))
    }

    /// Every block of one bucket at one level, newest last.
    pub fn search_bucket_prefix(&self, level: u8, bucket: u8) -> String {
        format!("{}{level:02}#{bucket:02}#", self.search_index_prefix())
    }

    /// Every block of the tenant's search index.
    pub fn search_index_prefix(&self) -> &'static str {
        "SEARCH#"
    }

    pub fn messages_prefix(&self, conversation: &ConversationId) -> String {
        format!("CONVERSATION#{conversation}#MSG#")
    }

    pub fn file(&self, file: &FileId) -> Key {
        self.key(format!("FILE#{file}"))
    }

    pub fn file_share(&self, file: &FileId, user: &UserId) -> Key {
        self.key(format!("FILE#{file}#SHARE#{user}"))
    }

    pub fn file_shares_prefix(&self, file: &FileId) -> String {
        format!("FILE#{file}#SHARE#")
    }

    /// The file posted into a conversation: what its members may do with it.
    pub fn file_grant(&self, file: &FileId, conversation: &ConversationId) -> Key {
        self.key(format!("FILE#{file}#GRANT#{conversation}"))
    }

    pub fn file_grants_prefix(&self, file: &FileId) -> String {
        format!("FILE#{file}#GRANT#")
    }

    /// GSI1 partition of every file of the tenant.
    pub fn files_gsi1pk(&self) -> String {
        format!("CLIENT#{}#FILES", self.0)
    }

    /// GSI1 sort key of a file (under the tenant's files, or a user's shares).
    pub fn file_gsi1sk(&self, file: &FileId) -> String {
        format!("FILE#{file}")
    }

    /// The GSI1 sort-key prefix of the files under [`Self::files_gsi1pk`] or a user's
    /// partition.
    pub fn files_gsi1_prefix(&self) -> &'static str {
        "FILE#"
    }

    /// GSI1 partition of the tenant's OWNERs and ADMINs (who may read every file).
    pub fn staff_gsi1pk(&self) -> String {
        format!("CLIENT#{}#STAFF", self.0)
    }

    /// GSI1 sort key of one of the tenant's staff (on their user item).
    pub fn staff_gsi1sk(&self, user: &UserId) -> String {
        format!("USER#{user}")
    }

    pub fn notification(&self, user: &UserId, id: &str) -> Key {
        self.key(format!("NOTIFICATION#{user}#{id}"))
    }

    pub fn notifications_prefix(&self, user: &UserId) -> String {
        format!("NOTIFICATION#{user}#")
    }

    pub fn preferences(&self, user: &UserId) -> Key {
        self.key(format!("USER#{user}#PREFS"))
    }

    pub fn delivery(&self, user: &UserId, first_notification: &str, channel: Channel) -> Key {
        self.key(format!(
            "DIGEST#{user}#{first_notification}#{}",
            channel.as_str()
        ))
    }

    /// An audit entry at `at` (epoch ms; entries sort by it), `id` telling apart two of
    /// the same millisecond.
    pub fn audit_entry(&self, at: i64, id: &str) -> Key {
        self.key(format!("{}{:013}#{id}", self.audit_prefix(), at.max(0)))
    }

    /// Every entry of the tenant's audit log, oldest first.
    pub fn audit_prefix(&self) -> &'static str {
        "AUDIT#"
    }

    /// The tenant's own rate limits (set by an operator).
    pub fn rate_limits(&self) -> Key {
        self.key("LIMITS".to_owned())
    }

    /// The count of sends in the window starting at `window` (epoch ms): the tenant's, or
    /// `user`'s.
    pub fn rate_counter(&self, user: Option<&UserId>, window: i64) -> Key {
        match user {
            Some(user) => self.key(format!("RATE#USER#{user}#{window}")),
            None => self.key(format!("RATE#TENANT#{window}")),
        }
    }

    pub fn active_users(&self, day: &str) -> Key {
        self.key(format!("ACTIVE#{day}"))
    }

    /// GSI1 sort key of a tenant's active-users set under `ACTIVE#{day}`.
    pub fn active_users_gsi1sk(&self) -> String {
        format!("CLIENT#{}", self.0)
    }

    /// GSI1 sort key of a pending notification in its shard of the tenant's work list
    /// ([`Self::pending_gsi1pk`]): oldest first.
    pub fn pending_notification_gsi1sk(&self, at: &str, user: &UserId, id: &str) -> String {
        format!("{at}#CLIENT#{}#USER#{user}#{id}", self.0)
    }

    /// GSI1 partition of `user`'s pending notifications: one of the tenant's
    /// [`PENDING_SHARDS`] work-list shards.
    pub fn pending_gsi1pk(&self, user: &UserId) -> String {
        self.pending_shard_gsi1pk(shard_of(user.as_str(), PENDING_SHARDS))
    }

    /// GSI1 partition of shard `shard` of the tenant's pending notifications.
    pub fn pending_shard_gsi1pk(&self, shard: usize) -> String {
        format!("CLIENT#{}#NOTIFY#PENDING#{shard}", self.0)
    }

    /// The marker saying the tenant has pending notifications.
    pub fn pending_marker(&self) -> Key {
        self.key("NOTIFY#PENDING".to_owned())
    }

    /// GSI1 partition of the tenant's marker among the tenants with work.
    pub fn pending_marker_gsi1pk(&self) -> String {
        pending_tenants_gsi1pk(shard_of(self.0.as_str(), PENDING_TENANT_SHARDS))
    }

    /// GSI1 sort key of the tenant's marker.
    pub fn pending_marker_gsi1sk(&self) -> String {
        format!("CLIENT#{}", self.0)
    }

    pub fn file_comment(&self, file: &FileId, comment: &CommentId) -> Key {
        self.key(format!("FILE#{file}#COMMENT#{comment}"))
    }

    pub fn file_comments_prefix(&self, file: &FileId) -> String {
        format!("FILE#{file}#COMMENT#")
    }

    /// GSI1 partition of a user's memberships ("my conversations").
    pub fn user_conversations_gsi1pk(&self, user: &UserId) -> String {
        format!("CLIENT#{}#USER#{user}", self.0)
    }

    /// GSI1 sort key of one membership.
    pub fn conversation_gsi1sk(&self, conversation: &ConversationId) -> String {
        format!("CONVERSATION#{conversation}")
    }

    /// The GSI1 sort-key prefix of a user's memberships (their GSI1 partition also holds
    /// other entries, such as files shared with them).
    pub fn conversations_gsi1_prefix(&self) -> &'static str {
        "CONVERSATION#"
    }
}

/// Shards of a tenant's pending notifications (by user).
pub const PENDING_SHARDS: usize = 8;
/// Shards of the list of tenants with pending notifications (by tenant).
pub const PENDING_TENANT_SHARDS: usize = 16;

/// GSI1 partition of one shard of the tenants with pending notifications.
pub fn pending_tenants_gsi1pk(shard: usize) -> String {
    format!("NOTIFY#TENANTS#{shard}")
}

/// A stable shard of `id` among `shards` (FNV-1a: the same on every machine and version, as
/// keys written by one function are read by another).
pub fn shard_of(id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % shards as u64) as usize
}

/// GSI1 partition of the tenants with a retention (the daily sweep's list).
pub const RETENTION_TENANTS_GSI1PK: &str = "RETENTION#TENANTS";

/// GSI1 sort key of a tenant with a retention: its days, then its partition key.
pub fn retention_gsi1sk(tenant: &TenantId, days: u32) -> String {
    format!("DAYS#{days}#CLIENT#{tenant}")
}

/// The tenant and days of a [`retention_gsi1sk`].
pub fn retention_from_gsi1sk(sk: &str) -> Option<(TenantId, u32)> {
    let (days, pk) = sk.strip_prefix("DAYS#")?.split_once('#')?;
    Some((tenant_from_pk(pk)?, days.parse().ok()?))
}

/// GSI1 partition of every tenant's active-users set of a UTC day (`YYYY-MM-DD`).
pub fn active_users_gsi1pk(day: &str) -> String {
    format!("ACTIVE#{day}")
}

/// What an item of a tenant's partition is, read from its sort key alone: how the lifecycle
/// jobs (export, erasure) walk a partition without reading anything else first. Each
/// variant is one row of the layout table above, with the ids its key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind<'a> {
    Tenant,
    User(&'a str),
    Preferences(&'a str),
    UserConnection {
        user: &'a str,
        connection: &'a str,
    },
    Conversation(&'a str),
    Member {
        conversation: &'a str,
        user: &'a str,
    },
    Subscription {
        conversation: &'a str,
        connection: &'a str,
    },
    Message {
        conversation: &'a str,
        seq: u64,
    },
    ClientMessage {
        conversation: &'a str,
        user: &'a str,
    },
    SearchBlock,
    File(&'a str),
    Share {
        file: &'a str,
        user: &'a str,
    },
    Grant {
        file: &'a str,
        conversation: &'a str,
    },
    Comment {
        file: &'a str,
    },
    Notification {
        user: &'a str,
    },
    PendingMarker,
    Delivery {
        user: &'a str,
    },
    Idempotency,
    Limits,
    Rate {
        user: Option<&'a str>,
    },
    Active,
    Audit,
    /// A key this version does not know (written by a newer one): left as it is.
    Unknown,
}

/// The kind of the item with sort key `sk` in a tenant partition.
pub fn kind_of(sk: &str) -> ItemKind<'_> {
    let parts: Vec<&str> = sk.splitn(5, '#').collect();
    match parts.as_slice() {
        ["METADATA"] => ItemKind::Tenant,
        ["LIMITS"] => ItemKind::Limits,
        ["NOTIFY", "PENDING"] => ItemKind::PendingMarker,
        ["USER", user] => ItemKind::User(user),
        ["USER", user, "PREFS"] => ItemKind::Preferences(user),
        ["USER", user, "CONN", connection] => ItemKind::UserConnection { user, connection },
        ["CONVERSATION", conversation] => ItemKind::Conversation(conversation),
        ["CONVERSATION", conversation, "MEMBER", user] => ItemKind::Member { conversation, user },
        ["CONVERSATION", conversation, "CONN", connection] => ItemKind::Subscription {
            conversation,
            connection,
        },
        ["CONVERSATION", conversation, "MSG", seq] => match seq.parse() {
            Ok(seq) => ItemKind::Message { conversation, seq },
            Err(_) => ItemKind::Unknown,
        },
        // The client's id is the last segment and may hold anything, `#` included.
        ["CONVERSATION", conversation, "CMID", user, _] => {
            ItemKind::ClientMessage { conversation, user }
        }
        ["SEARCH", ..] => ItemKind::SearchBlock,
        ["FILE", file] => ItemKind::File(file),
        ["FILE", file, "SHARE", user] => ItemKind::Share { file, user },
        ["FILE", file, "GRANT", conversation] => ItemKind::Grant { file, conversation },
        ["FILE", file, "COMMENT", _] => ItemKind::Comment { file },
        ["NOTIFICATION", user, _] => ItemKind::Notification { user },
        ["DIGEST", user, ..] => ItemKind::Delivery { user },
        ["IDEM", _] => ItemKind::Idempotency,
        ["RATE", "TENANT", _] => ItemKind::Rate { user: None },
        ["RATE", "USER", user, _] => ItemKind::Rate { user: Some(user) },
        ["ACTIVE", _] => ItemKind::Active,
        ["AUDIT", ..] => ItemKind::Audit,
        _ => ItemKind::Unknown,
    }
}

/// The partition of a tenant's lifecycle jobs (exports, erasures): beside the tenant's own,
/// not in it, so a job walking the tenant's partition never meets its own record.
pub fn jobs_pk(tenant: &TenantId) -> String {
    format!("CLIENT#{tenant}#JOBS")
}

/// A lifecycle job's record.
pub fn job(tenant: &TenantId, job: &str) -> Key {
    Key {
        pk: jobs_pk(tenant),
        sk: format!("JOB#{job}"),
    }
}

/// The connection registry key. Not tenant-scoped: see the module documentation.
pub fn connection(connection: &ConnectionId) -> Key {
    Key {
        pk: format!("CONNECTION#{connection}"),
        sk: "METADATA".into(),
    }
}

/// Parses the tenant back out of a tenant partition key.
pub fn tenant_from_pk(pk: &str) -> Option<TenantId> {
    TenantId::parse(pk.strip_prefix("CLIENT#")?).ok()
}

/// Parses the user back out of a staff GSI1 sort key.
pub fn staff_from_gsi1sk(sk: &str) -> Option<UserId> {
    UserId::parse(sk.strip_prefix("USER#")?).ok()
}

/// Parses the file id back out of a GSI1 sort key.
pub fn file_from_gsi1sk(sk: &str) -> Option<FileId> {
    FileId::parse(sk.strip_prefix("FILE#")?).ok()
}

/// Parses the `seq` back out of a message sort key or a thread GSI1 sort key.
pub fn seq_from_key(sk: &str) -> Option<u64> {
    let (_, digits) = sk.rsplit_once("MSG#")?;
    digits.parse().ok()
}

/// Parses the conversation id back out of a GSI1 sort key.
pub fn conversation_from_gsi1sk(sk: &str) -> Option<ConversationId> {
    ConversationId::parse(sk.strip_prefix("CONVERSATION#")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::MessageId;
    use proptest::prelude::*;

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._-]{1,12}"
    }

    /// Every tenant-scoped key and index value a tenant can produce for the given ids.
    fn all_keys(
        t: &TenantId,
        u: &UserId,
        c: &ConversationId,
        n: &ConnectionId,
        m: &MessageId,
    ) -> Vec<String> {
        let seq = m.as_str().len() as u64;
        let k = tenant(t);
        let f = FileId::parse(c.as_str()).unwrap();
        let cm = CommentId::parse(m.as_str()).unwrap();
        let keys = [
            k.metadata(),
            k.user(u),
            k.user_connection(u, n),
            k.conversation(c),
            k.member(c, u),
            k.subscription(c, 0, n),
            k.subscription(c, 63, n),
            k.subscription_sizing(c),
            k.message(c, seq),
            k.client_message(c, u, m.as_str()),
            k.search_block(64, 63, "2026-01-01T00:00:00.000Z", u64::MAX),
            k.file(&f),
            k.file_share(&f, u),
            k.notification(u, m.as_str()),
            k.preferences(u),
            k.delivery(u, m.as_str(), Channel::Email),
            k.active_users(m.as_str()),
            k.file_comment(&f, &cm),
            k.file_grant(&f, c),
            k.idempotency(&IdempotencyKey::parse(m.as_str()).unwrap()),
            k.audit_entry(seq as i64, m.as_str()),
            job(t, m.as_str()),
        ];
        keys.iter()
            .map(|key| format!("{}|{}", key.pk, key.sk))
            .chain([
                k.user_conversations_gsi1pk(u),
                k.thread_gsi1pk(c, seq),
                k.files_gsi1pk(),
                k.staff_gsi1pk(),
            ])
            .collect()
    }

    #[test]
    fn keys_match_the_documented_layout() {
        let t = TenantId::parse("123").unwrap();
        let c = ConversationId::parse("456").unwrap();
        assert_eq!(
            tenant(&t).message(&c, 789),
            Key {
                pk: "CLIENT#123".into(),
                sk: "CONVERSATION#456#MSG#000000000789".into()
            }
        );
        assert_eq!(seq_from_key(&tenant(&t).message(&c, 789).sk), Some(789));
        assert_eq!(seq_from_key(&tenant(&t).thread_gsi1sk(12)), Some(12));
        // Sequence keys sort as numbers.
        assert!(tenant(&t).message(&c, 9).sk < tenant(&t).message(&c, 10).sk);
        assert_eq!(tenant(&t).metadata().sk, "METADATA");
        let n = ConnectionId::parse("TWegAcC4EowCHnA=").unwrap();
        assert_eq!(connection(&n).pk, "CONNECTION#TWegAcC4EowCHnA=");
        let g = tenant(&t).conversation_gsi1sk(&c);
        assert_eq!(conversation_from_gsi1sk(&g), Some(c));
        assert_eq!(tenant_from_pk(&tenant(&t).pk()), Some(t.clone()));
        let u = UserId::parse("alice").unwrap();
        assert_eq!(staff_from_gsi1sk(&tenant(&t).staff_gsi1sk(&u)), Some(u));
        let f = FileId::parse("f1").unwrap();
        assert_eq!(
            file_from_gsi1sk(&tenant(&t).file_gsi1sk(&f)),
            Some(f.clone())
        );
        assert!(tenant(&t)
            .file_gsi1sk(&f)
            .starts_with(tenant(&t).files_gsi1_prefix()));
        assert_eq!(
            retention_from_gsi1sk(&retention_gsi1sk(&t, 30)),
            Some((t.clone(), 30))
        );
        assert_eq!(retention_from_gsi1sk("DAYS#x#CLIENT#123"), None);
    }

    proptest! {
        #[test]
        fn every_key_reads_back_as_its_own_kind_with_its_ids(
            t in id(), u in id(), c in id(), n in id(), m in id(), cmid in "[ -~]{1,64}", seq in 0u64..1_000_000_000_000
        ) {
            let t = TenantId::parse(t).unwrap();
            let k = tenant(&t);
            let (u, c) = (UserId::parse(&u).unwrap(), ConversationId::parse(&c).unwrap());
            let n = ConnectionId::parse(n).unwrap();
            let f = FileId::parse(c.as_str()).unwrap();
            let cm = CommentId::parse(&m).unwrap();
            let (us, cs, ns) = (u.as_str(), c.as_str(), n.as_str());
            let expected = [
                (k.metadata(), ItemKind::Tenant),
                (k.user(&u), ItemKind::User(us)),
                (k.preferences(&u), ItemKind::Preferences(us)),
                (k.user_connection(&u, &n), ItemKind::UserConnection { user: us, connection: ns }),
                (k.conversation(&c), ItemKind::Conversation(cs)),
                (k.member(&c, &u), ItemKind::Member { conversation: cs, user: us }),
                (Key { pk: k.pk(), sk: format!("CONVERSATION#{cs}#CONN#{ns}") }, ItemKind::Subscription { conversation: cs, connection: ns }),
                (k.message(&c, seq), ItemKind::Message { conversation: cs, seq }),
                (k.client_message(&c, &u, &cmid), ItemKind::ClientMessage { conversation: cs, user: us }),
                (k.search_block(8, 3, "2026-01-01T00:00:00.000Z", seq), ItemKind::SearchBlock),
                (k.file(&f), ItemKind::File(cs)),
                (k.file_share(&f, &u), ItemKind::Share { file: cs, user: us }),
                (k.file_grant(&f, &c), ItemKind::Grant { file: cs, conversation: cs }),
                (k.file_comment(&f, &cm), ItemKind::Comment { file: cs }),
                (k.notification(&u, &m), ItemKind::Notification { user: us }),
                (k.pending_marker(), ItemKind::PendingMarker),
                (k.delivery(&u, &m, Channel::Sms), ItemKind::Delivery { user: us }),
                (k.idempotency(&IdempotencyKey::parse(&m).unwrap()), ItemKind::Idempotency),
                (k.rate_limits(), ItemKind::Limits),
                (k.rate_counter(None, seq as i64), ItemKind::Rate { user: None }),
                (k.rate_counter(Some(&u), seq as i64), ItemKind::Rate { user: Some(us) }),
                (k.active_users("2026-12-03"), ItemKind::Active),
                (k.audit_entry(seq as i64, &m), ItemKind::Audit),
            ];
            for (key, kind) in expected {
                prop_assert_eq!(&key.pk, &k.pk());
                prop_assert_eq!(kind_of(&key.sk), kind, "{}", key.sk);
            }
            // A job's record and the subscription shards are outside the tenant's partition,
            // and in no other tenant's.
            let within = format!("{}#", k.pk());
            for pk in [
                job(&t, "j").pk,
                k.subscription(&c, 0, &n).pk,
                k.subscription(&c, 7, &n).pk,
                k.subscription_sizing(&c).pk,
            ] {
                prop_assert_ne!(&pk, &k.pk());
                prop_assert!(pk.starts_with(&within));
                prop_assert!(tenant_from_pk(&pk).is_none(), "{} reads as a tenant", pk);
            }
            // The sizing item sorts before every subscription of its shard.
            prop_assert!(k.subscription_sizing(&c).sk < k.subscription(&c, 0, &n).sk);
        }

        #[test]
        fn nothing_built_for_tenant_a_addresses_tenant_b(
            a in id(), b in id(), u in id(), u2 in id(), c in id(), c2 in id(), n in id(), m in id()
        ) {
            prop_assume!(a != b);
            let (ta, tb) = (TenantId::parse(a).unwrap(), TenantId::parse(b).unwrap());
            let (u, u2) = (UserId::parse(u).unwrap(), UserId::parse(u2).unwrap());
            let (c, c2) = (ConversationId::parse(c).unwrap(), ConversationId::parse(c2).unwrap());
            let n = ConnectionId::parse(n).unwrap();
            let m = MessageId::parse(m).unwrap();
            // Even with every other id free to differ, no key or index value of A equals one of B.
            let of_a = all_keys(&ta, &u, &c, &n, &m);
            let of_b = all_keys(&tb, &u2, &c2, &n, &m);
            for key in &of_a {
                prop_assert!(!of_b.contains(key), "{key} is shared by both tenants");
            }
            // And every tenant-scoped key of A lives in A's partition only.
            prop_assert_ne!(tenant(&ta).pk(), tenant(&tb).pk());
        }

        #[test]
        fn a_server_api_key_is_its_own_item_and_no_query_prefix_reaches_it(
            t in id(), key in "[A-Za-z0-9._:-]{1,64}", u in id(), c in id()
        ) {
            let t = TenantId::parse(t).unwrap();
            let k = tenant(&t);
            let idem = k.idempotency(&IdempotencyKey::parse(&key).unwrap()).sk;
            let (u, c) = (UserId::parse(u).unwrap(), ConversationId::parse(c).unwrap());
            let f = FileId::parse(c.as_str()).unwrap();
            for prefix in [
                k.user_connections_prefix(&u),
                SUBSCRIPTION_PREFIX.to_owned(),
                k.members_prefix(&c),
                k.messages_prefix(&c),
                k.file_shares_prefix(&f),
                k.file_grants_prefix(&f),
                k.file_comments_prefix(&f),
                k.notifications_prefix(&u),
                k.search_index_prefix().to_owned(),
                k.audit_prefix().to_owned(),
            ] {
                prop_assert!(!idem.starts_with(&prefix), "{idem} matched {prefix}");
            }
            prop_assert!(idem.starts_with("IDEM#") && idem.len() == 5 + key.len());
        }

        #[test]
        fn a_conversation_prefix_matches_only_its_own_children(
            t in id(), c in id(), c2 in id(), u in id(), m in id()
        ) {
            prop_assume!(c != c2);
            let t = TenantId::parse(t).unwrap();
            let k = tenant(&t);
            let (c, c2) = (ConversationId::parse(c).unwrap(), ConversationId::parse(c2).unwrap());
            let other = [
                k.member(&c2, &UserId::parse(u).unwrap()).sk,
                k.message(&c2, m.len() as u64).sk,
            ];
            for prefix in [k.members_prefix(&c), k.messages_prefix(&c)] {
                for sk in &other {
                    prop_assert!(!sk.starts_with(&prefix), "{sk} matched {prefix}");
                }
            }
            // Another conversation's subscriptions are in partitions of their own, shard by shard.
            for (s, s2) in [(0, 0), (1, 1), (0, 1)] {
                prop_assert_ne!(k.subscriptions_pk(&c, s), k.subscriptions_pk(&c2, s2));
            }
            prop_assert_ne!(k.subscriptions_pk(&c, 1), k.subscriptions_pk(&c, 10));
        }
    }
}
