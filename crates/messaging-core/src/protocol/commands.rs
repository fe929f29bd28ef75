//! The payloads of the client actions added for collaboration, and their validation.

use serde::Deserialize;

use crate::error::{ErrorCode, ProtocolError};
use crate::ids::UserId;
use crate::search;

use super::{default_history_limit, ChatContent, ConversationRef, PresenceStatus};
use super::{MAX_HISTORY_LIMIT, MAX_INITIAL_MEMBERS};

/// Longest emoji (or short reaction name) accepted, in bytes.
pub const MAX_EMOJI_BYTES: usize = 32;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// Names one message: its conversation and `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    #[serde(flatten)]
    pub target: ConversationRef,
    pub seq: u64,
}

/// `EDIT_MESSAGE`: replace the text of one's own message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    #[serde(flatten)]
    pub message: MessageRef,
    pub content: ChatContent,
}

/// `ADD_REACTION` / `REMOVE_REACTION`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    #[serde(flatten)]
    pub message: MessageRef,
    pub emoji: String,
}

/// `GET_THREAD`: a message and its replies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetThread {
    #[serde(flatten)]
    pub message: MessageRef,
    #[serde(default = "default_history_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `SEARCH`: messages containing every word of `query`, in the caller's conversations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    pub query: String,
    #[serde(default = "default_history_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `ADD_MEMBERS`: OWNER/ADMIN add users to a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddMembers {
    #[serde(flatten)]
    pub target: ConversationRef,
    pub members: Vec<UserId>,
}

/// `REMOVE_MEMBER`: OWNER/ADMIN remove a member; any member may remove themself (leave).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveMember {
    #[serde(flatten)]
    pub target: ConversationRef,
    pub user_id: UserId,
}

/// `SET_PRESENCE`: online or away; also the heartbeat that keeps presence alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SetPresence {
    pub status: PresenceStatus,
}

pub(super) fn limit_ok(limit: u16) -> Result<(), ProtocolError> {
    if limit == 0 || limit > MAX_HISTORY_LIMIT {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            format!("limit must be 1 to {MAX_HISTORY_LIMIT}"),
        ));
    }
    Ok(())
}

pub(super) fn validate_reaction(reaction: Reaction) -> Result<Reaction, ProtocolError> {
    let emoji = &reaction.emoji;
    if emoji.is_empty()
        || emoji.len() > MAX_EMOJI_BYTES
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            format!(
                "emoji must be 1 to {MAX_EMOJI_BYTES} bytes without spaces or control characters"
            ),
        ));
    }
    Ok(reaction)
}

pub(super) fn validate_search(search: Search) -> Result<Search, ProtocolError> {
    limit_ok(search.limit)?;
    if search.query.chars().count() > MAX_QUERY_CHARS {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            format!("query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    if search::query_words(&search.query).is_empty() {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            "query has no searchable word (words of 2 or more letters or digits, not a stop word)",
        ));
    }
    Ok(search)
}

pub(super) fn validate_members(add: AddMembers) -> Result<AddMembers, ProtocolError> {
    if add.members.is_empty() || add.members.len() > MAX_INITIAL_MEMBERS {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            format!("members must name 1 to {MAX_INITIAL_MEMBERS} users"),
        ));
    }
    Ok(add)
}

pub(super) fn validate_presence(set: SetPresence) -> Result<SetPresence, ProtocolError> {
    if set.status == PresenceStatus::Offline {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            "status must be \"online\" or \"away\"; offline follows from closing the connection",
        ));
    }
    Ok(set)
}

/// `LIST_NOTIFICATIONS`: the in-app list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNotifications {
    #[serde(default = "default_history_limit")]
    pub limit: u16,
}

/// `MARK_NOTIFICATIONS_READ`: these notifications (at most 100), or all when `all` is true.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkNotificationsRead {
    #[serde(default)]
    pub notification_ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

/// `SET_PREFERENCES`: the whole preferences object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SetPreferences {
    pub preferences: crate::notify::Preferences,
}
