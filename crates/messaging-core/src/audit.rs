//! The audit log: the administrative actions taken on a tenant's data, by whom and through
//! which door. It answers a tenant's OWNER asking "who removed this member, who deleted that
//! message, who shared this file and with whom".
//!
//! What is recorded: conversations created and every membership change (ADD_MEMBERS,
//! JOIN_CONVERSATION, REMOVE_MEMBER — a member leaving on their own included — and the
//! server API's), a message deleted by someone other than its sender, file shares and
//! revokes, the portal's changes to a user's role or name, and exports and erasures (asked
//! for, and finished). An
//! entry names ids only — never a message's text, a file's name or an email address — so
//! that the log does not become a second copy of the data it describes.
//!
//! An entry is small and bounded: ids are at most 128 characters each, the signing IAM
//! principal is cut to [`MAX_CALLER_CHARS`] and a detail to [`MAX_DETAIL_CHARS`], well under
//! 1 KB an item. Entries are kept [`AUDIT_RETENTION_DAYS`] days.

use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::ids::{ConversationId, FileId, UserId};
use crate::lifecycle::JobId;
use crate::role::Role;

/// How long an entry is kept (table TTL), in days: thirteen months, so a year's review
/// always has the whole year.
pub const AUDIT_RETENTION_DAYS: i64 = 400;
/// Longest signing principal (an IAM ARN) kept in an entry.
pub const MAX_CALLER_CHARS: usize = 256;
/// Longest detail kept in an entry.
pub const MAX_DETAIL_CHARS: usize = 200;
/// Entries an audit page returns when it names no `limit`, and the most it may name.
pub const DEFAULT_AUDIT_LIMIT: u16 = 50;
pub const MAX_AUDIT_LIMIT: u16 = 100;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    /// `conversationId` was created (`detail`: how many members it started with).
    ConversationCreated,
    /// `userId` was added to (or joined) `conversationId`.
    MemberAdded,
    /// `userId` was removed from (or left) `conversationId`.
    MemberRemoved,
    /// Message `seq` of `conversationId`, sent by `userId`, was deleted by the actor.
    MessageDeleted,
    /// File `fileId` was shared with `userId` (`detail`: the permissions).
    FileShared,
    /// `userId`'s share of file `fileId` was revoked.
    FileShareRevoked,
    /// The portal set `userId`'s role (`detail`) or display name.
    UserUpdated,
    /// An export of the tenant's data (or, with `userId`, of that user's) was asked for
    /// (`jobId`).
    ExportRequested,
    /// Export `jobId` finished (`detail`: records and bytes).
    ExportCompleted,
    /// The erasure of `userId` was asked for (`jobId`).
    ErasureRequested,
    /// Erasure `jobId` of `userId` finished (`detail`: what it changed).
    ErasureCompleted,
    /// The tenant's retention was set (`detail`: the days, or kept for ever).
    RetentionChanged,
    /// A retention sweep (`jobId`) deleted what was older than the tenant's days (`detail`).
    RetentionSwept,
}

impl AuditAction {
    pub const ALL: [AuditAction; 13] = [
        AuditAction::ConversationCreated,
        AuditAction::MemberAdded,
        AuditAction::MemberRemoved,
        AuditAction::MessageDeleted,
        AuditAction::FileShared,
        AuditAction::FileShareRevoked,
        AuditAction::UserUpdated,
        AuditAction::ExportRequested,
        AuditAction::ExportCompleted,
        AuditAction::ErasureRequested,
        AuditAction::ErasureCompleted,
        AuditAction::RetentionChanged,
        AuditAction::RetentionSwept,
    ];
}

/// The door an action came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A user's WebSocket frame.
    Socket,
    /// The portal's backend, through the SigV4-signed server API.
    ServerApi,
    /// A user's bearer token, through the HTTP API.
    Http,
    /// A lifecycle job finishing what its requester (the actor) asked for.
    Job,
}

/// One entry of the audit log, as stored and as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// RFC 3339 UTC, milliseconds.
    pub at: String,
    pub action: AuditAction,
    /// Who did it: a user, or [`UserId::SYSTEM`] for the portal's backend.
    pub actor_id: UserId,
    /// The actor's role when they did it (a user's only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_role: Option<Role>,
    pub via: Via,
    /// The IAM principal that signed a server API request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The user the action was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    /// The lifecycle job (export, erasure) the entry is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// What else tells the action apart: a share's permissions, a user's new role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// At most `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl AuditEntry {
    /// An action by the user `p`, through their socket, at `at` (RFC 3339).
    pub fn by_user(p: &Principal, action: AuditAction, at: String) -> Self {
        Self::new(action, p.user.clone(), Some(p.role), Via::Socket, None, at)
    }

    /// An action by the portal's backend, signed by the IAM principal `caller`.
    pub fn by_service(caller: &str, action: AuditAction, at: String) -> Self {
        Self::new(
            action,
            UserId::system(),
            None,
            Via::ServerApi,
            Some(cut(caller, MAX_CALLER_CHARS)),
            at,
        )
    }

    /// The end of a job asked for by `requested_by` (a user, or the system user for the
    /// portal's backend).
    pub fn by_job(requested_by: &UserId, action: AuditAction, at: String) -> Self {
        Self::new(action, requested_by.clone(), None, Via::Job, None, at)
    }

    fn new(
        action: AuditAction,
        actor_id: UserId,
        actor_role: Option<Role>,
        via: Via,
        caller: Option<String>,
        at: String,
    ) -> Self {
        Self {
            at,
            action,
            actor_id,
            actor_role,
            via,
            caller,
            user_id: None,
            conversation_id: None,
            seq: None,
            file_id: None,
            job_id: None,
            detail: None,
        }
    }

    /// The same action, through `via` instead.
    pub fn via(mut self, via: Via) -> Self {
        self.via = via;
        self
    }

    pub fn user(mut self, user: &UserId) -> Self {
        self.user_id = Some(user.clone());
        self
    }

    pub fn conversation(mut self, conversation: &ConversationId) -> Self {
        self.conversation_id = Some(conversation.clone());
        self
    }

    pub fn seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }

    pub fn file(mut self, file: &FileId) -> Self {
        self.file_id = Some(file.clone());
        self
    }

    pub fn job(mut self, job: &JobId) -> Self {
        self.job_id = Some(job.clone());
        self
    }

    /// A detail, cut to [`MAX_DETAIL_CHARS`].
    pub fn detail(mut self, detail: &str) -> Self {
        self.detail = Some(cut(detail, MAX_DETAIL_CHARS));
        self
    }
}

/// Whether `role` may read the tenant's audit log: its OWNER only (an ADMIN's own actions
/// are among those it records).
pub fn may_read_audit(role: Role) -> bool {
    role == Role::Owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TenantId;

    fn alice() -> Principal {
        Principal {
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse("alice").unwrap(),
            role: Role::Admin,
            name: Some("Alice".into()),
        }
    }

    #[test]
    fn an_entry_names_ids_and_reads_back_as_it_was_written() {
        let entry = AuditEntry::by_user(
            &alice(),
            AuditAction::MessageDeleted,
            "2026-12-03T10:00:00.000Z".into(),
        )
        .conversation(&ConversationId::parse("general").unwrap())
        .seq(42)
        .user(&UserId::parse("bob").unwrap());
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "at": "2026-12-03T10:00:00.000Z",
                "action": "MESSAGE_DELETED",
                "actorId": "alice",
                "actorRole": "ADMIN",
                "via": "socket",
                "userId": "bob",
                "conversationId": "general",
                "seq": 42
            })
        );
        let back: AuditEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn a_service_entry_is_the_system_user_with_its_signer_cut_to_bound() {
        let arn = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(1_000));
        let entry = AuditEntry::by_service(&arn, AuditAction::UserUpdated, "t".into())
            .detail(&"é".repeat(1_000));
        assert!(entry.actor_id.is_system());
        assert_eq!(entry.via, Via::ServerApi);
        assert_eq!(entry.caller.unwrap().chars().count(), MAX_CALLER_CHARS);
        assert_eq!(entry.detail.unwrap().chars().count(), MAX_DETAIL_CHARS);
    }

    #[test]
    fn only_the_owner_reads_the_log() {
        assert!(may_read_audit(Role::Owner));
        assert!(!may_read_audit(Role::Admin));
        assert!(!may_read_audit(Role::User));
    }

    #[test]
    fn every_action_has_a_stable_name() {
        let names: Vec<String> = AuditAction::ALL
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "CONVERSATION_CREATED",
                "MEMBER_ADDED",
                "MEMBER_REMOVED",
                "MESSAGE_DELETED",
                "FILE_SHARED",
                "FILE_SHARE_REVOKED",
                "USER_UPDATED",
                "EXPORT_REQUESTED",
                "EXPORT_COMPLETED",
                "ERASURE_REQUESTED",
                "ERASURE_COMPLETED",
                "RETENTION_CHANGED",
                "RETENTION_SWEPT",
            ]
        );
    }
}
