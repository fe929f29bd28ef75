//! The payloads of the frames `route` handles, one type per frame `type`, and their checks.
//! Frames that carry the same fields (a conversation, a message) wrap one shared shape.

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelError, ChannelKind, ChannelName};
use crate::error::{ErrorCode, ProtocolError};
use crate::ids::{ConversationId, FileId, TenantId, UserId};
use crate::notify::Preferences;
use crate::search;

use super::PresenceStatus;

/// Messages a GET_HISTORY (or another page) returns when it names no `limit`, and the most it
/// may name.
pub const DEFAULT_HISTORY_LIMIT: u16 = 50;
pub const MAX_HISTORY_LIMIT: u16 = 100;
/// DynamoDB's most actions in one TransactWriteItems.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// Most other members named in one CREATE_CONVERSATION. The conversation is created all or
/// nothing in one transaction: the conversation, its creator's membership and the tenant's
/// record take three of its actions, each member one.
pub const MAX_INITIAL_MEMBERS: usize = MAX_TRANSACTION_ACTIONS - 3;
/// Most members named in one ADD_MEMBERS.
pub const MAX_ADDED_MEMBERS: usize = 100;
/// Longest conversation title.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest client message id (idempotency key chosen by the client).
pub const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 64;
/// Longest emoji (or short reaction name) accepted, in bytes.
pub const MAX_EMOJI_BYTES: usize = 32;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most files one `file` or `image` message carries.
pub const MAX_ATTACHMENTS: usize = 10;

pub(super) fn default_limit() -> u16 {
    DEFAULT_HISTORY_LIMIT
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidField, message)
}

/// Names a conversation either by id or by channel (`client:{clientId}:{kind}:{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRef {
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    #[serde(default)]
    pub channel: Option<String>,
}

impl ConversationRef {
    pub fn id(conversation: ConversationId) -> Self {
        Self {
            conversation_id: Some(conversation),
            channel: None,
        }
    }

    /// The conversation in `tenant` this reference names. A channel of another tenant is
    /// refused before anything is read.
    pub fn resolve(&self, tenant: &TenantId) -> Result<ConversationId, ProtocolError> {
        let from_channel = match &self.channel {
            None => None,
            Some(raw) => {
                let channel = ChannelName::parse(raw).map_err(|e| match e {
                    ChannelError::CrossTenant => cross_tenant(),
                    other => invalid(format!("channel: {other}")),
                })?;
                Some(channel.within(tenant).map_err(|_| cross_tenant())?.clone())
            }
        };
        match (&self.conversation_id, from_channel) {
            (Some(id), None) => Ok(id.clone()),
            (None, Some(id)) => Ok(id),
            (Some(a), Some(b)) if *a == b => Ok(b),
            (Some(_), Some(_)) => Err(invalid(
                "conversationId and channel name different conversations",
            )),
            (None, None) => Err(invalid("missing field `conversationId` (or `channel`)")),
        }
    }
}

fn cross_tenant() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::CrossTenant,
        "cross-client communication is not allowed: that channel belongs to another tenant",
    )
}

/// Names one message: its conversation and `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    #[serde(flatten)]
    pub target: ConversationRef,
    pub seq: u64,
}

/// `CHAT_MESSAGE`: post text into a conversation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    #[serde(flatten)]
    pub target: ConversationRef,
    /// Client-chosen id of this message, echoed in NEW_MESSAGE so senders can match their
    /// optimistic copy.
    #[serde(default)]
    pub client_message_id: Option<String>,
    pub content: ChatContent,
    /// Makes this a reply in the thread of the message with this `seq`.
    #[serde(default)]
    pub parent_seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatContent {
    /// The message; a `file` or `image` message's caption (which may be empty).
    pub text: String,
    #[serde(rename = "type", default)]
    pub kind: ContentKind,
    /// A `file` or `image` message's files: registered files (REGISTER_FILE), by id, 1 to
    /// [`MAX_ATTACHMENTS`]. Never a URL: readers get one through GET_DOWNLOAD_URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

/// A file posted into a conversation. Its members may `read` it from then on (while they are
/// members), and `download` it when the poster says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentRef {
    pub file_id: FileId,
    #[serde(default)]
    pub download: bool,
}

/// The seed's content types. Clients post `text`, `file` and `image`; `system` messages come
/// only from the portal's own backend (the server API), never from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    #[default]
    Text,
    File,
    Image,
    System,
}

impl ContentKind {
    /// Whether messages of this type carry files.
    pub fn has_attachments(self) -> bool {
        matches!(self, ContentKind::File | ContentKind::Image)
    }
}

/// `EDIT_MESSAGE`: replace the text of one's own message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    #[serde(flatten)]
    pub message: MessageRef,
    pub content: ChatContent,
}

/// `DELETE_MESSAGE`: leave a tombstone in the message's place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DeleteMessage {
    pub message: MessageRef,
}

/// What ADD_REACTION and REMOVE_REACTION name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    #[serde(flatten)]
    pub message: MessageRef,
    pub emoji: String,
}

/// `ADD_REACTION`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AddReaction {
    pub reaction: Reaction,
}

/// `REMOVE_REACTION`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RemoveReaction {
    pub reaction: Reaction,
}

/// `TYPING_START`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct TypingStart {
    pub target: ConversationRef,
}

/// `TYPING_STOP`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct TypingStop {
    pub target: ConversationRef,
}

/// `CREATE_CONVERSATION`: OWNER/ADMIN open a conversation with initial members.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateConversation {
    pub conversation_id: ConversationId,
    pub kind: ChannelKind,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub members: Vec<UserId>,
}

/// `JOIN_CONVERSATION`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct JoinConversation {
    pub target: ConversationRef,
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

/// `LIST_CONVERSATIONS`: the caller's conversations with unread counts, most recently active
/// first, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListConversations {
    #[serde(default = "default_limit")]
    pub limit: u16,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET_HISTORY`: the newest messages of a conversation, and who is in it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetHistory {
    #[serde(flatten)]
    pub target: ConversationRef,
    #[serde(default = "default_limit")]
    pub limit: u16,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Catch up: the messages after this `seq`, oldest first (instead of the newest first).
    #[serde(default)]
    pub since_seq: Option<u64>,
}

/// `GET_THREAD`: a message and its replies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetThread {
    #[serde(flatten)]
    pub message: MessageRef,
    #[serde(default = "default_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `SEARCH`: messages containing every word of `query`, in the caller's conversations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    pub query: String,
    #[serde(default = "default_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `MARK_READ`: move the caller's read marker to a message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct MarkRead {
    pub message: MessageRef,
}

/// `SET_PRESENCE`: online or away; also the heartbeat that keeps presence alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SetPresence {
    pub status: PresenceStatus,
}

/// `GET_PRESENCE`: the members of a conversation and their presence, a page at a time (by
/// user id).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPresence {
    #[serde(flatten)]
    pub target: ConversationRef,
    #[serde(default = "default_members_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Members a GET_PRESENCE page holds when it names no `limit`, and the most it may name.
pub const DEFAULT_MEMBERS_LIMIT: u16 = 200;
pub const MAX_MEMBERS_LIMIT: u16 = 1000;

fn default_members_limit() -> u16 {
    DEFAULT_MEMBERS_LIMIT
}

/// `LIST_NOTIFICATIONS`: the in-app list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNotifications {
    #[serde(default = "default_limit")]
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

/// `PING`: a keepalive (API Gateway closes a connection idle for 10 minutes) and a check that
/// the connection is still registered; answered with an ACK, touches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ping {}

/// `GET_PREFERENCES`: the caller's notification preferences.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GetPreferences {}

/// `SET_PREFERENCES`: the whole preferences object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SetPreferences {
    pub preferences: Preferences,
}

pub(super) fn limit_ok(limit: u16) -> Result<(), ProtocolError> {
    if limit == 0 || limit > MAX_HISTORY_LIMIT {
        return Err(invalid(format!("limit must be 1 to {MAX_HISTORY_LIMIT}")));
    }
    Ok(())
}

fn text_ok(content: &ChatContent) -> Result<(), ProtocolError> {
    if content.text.trim().is_empty() {
        return Err(invalid("content.text must not be empty"));
    }
    Ok(())
}

/// A post's content: `text` with words and no files; `file` or `image` with 1 to
/// [`MAX_ATTACHMENTS`] distinct files and any caption; never `system` from a client.
pub fn content_ok(content: &ChatContent) -> Result<(), ProtocolError> {
    match content.kind {
        ContentKind::System => Err(invalid(
            "content.type \"system\" is posted by the portal's backend through the server API, never from a socket: use text, file or image",
        )),
        ContentKind::Text => {
            if !content.attachments.is_empty() {
                return Err(invalid(
                    "a text message carries no attachments: post files with content.type \"file\" or \"image\"",
                ));
            }
            text_ok(content)
        }
        ContentKind::File | ContentKind::Image => {
            let n = content.attachments.len();
            if n == 0 || n > MAX_ATTACHMENTS {
                return Err(invalid(format!(
                    "a {} message carries 1 to {MAX_ATTACHMENTS} attachments ({{\"fileId\": …}} of registered files); this one has {n}",
                    if content.kind == ContentKind::File { "file" } else { "image" }
                )));
            }
            let mut seen = std::collections::HashSet::new();
            for a in &content.attachments {
                if !seen.insert(&a.file_id) {
                    return Err(invalid(format!(
                        "file \"{}\" is attached twice",
                        a.file_id
                    )));
                }
            }
            Ok(())
        }
    }
}

pub(super) fn validate_chat(chat: ChatMessage) -> Result<ChatMessage, ProtocolError> {
    content_ok(&chat.content)?;
    if let Some(id) = &chat.client_message_id {
        if id.is_empty() || id.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS {
            return Err(invalid(format!(
                "clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID_CHARS} characters"
            )));
        }
    }
    Ok(chat)
}

/// An edit replaces the text (a file message's caption); the type and files stay as posted.
pub(super) fn validate_edit(edit: EditMessage) -> Result<EditMessage, ProtocolError> {
    if !edit.content.attachments.is_empty() {
        return Err(invalid(
            "an edit replaces the text only: a message's attachments cannot be changed (delete it and post again)",
        ));
    }
    if edit.content.kind == ContentKind::System {
        return Err(invalid(
            "content.type \"system\" cannot be set from a socket",
        ));
    }
    text_ok(&edit.content)?;
    Ok(edit)
}

fn validate_reaction(reaction: Reaction) -> Result<Reaction, ProtocolError> {
    let emoji = &reaction.emoji;
    if emoji.is_empty()
        || emoji.len() > MAX_EMOJI_BYTES
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "emoji must be 1 to {MAX_EMOJI_BYTES} bytes without spaces or control characters"
        )));
    }
    Ok(reaction)
}

pub(super) fn validate_add_reaction(add: AddReaction) -> Result<AddReaction, ProtocolError> {
    validate_reaction(add.reaction).map(|reaction| AddReaction { reaction })
}

pub(super) fn validate_remove_reaction(
    remove: RemoveReaction,
) -> Result<RemoveReaction, ProtocolError> {
    validate_reaction(remove.reaction).map(|reaction| RemoveReaction { reaction })
}

pub(super) fn validate_create(
    create: CreateConversation,
) -> Result<CreateConversation, ProtocolError> {
    if let Some(title) = &create.title {
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid(format!(
                "title is longer than {MAX_TITLE_CHARS} characters"
            )));
        }
    }
    if create.members.len() > MAX_INITIAL_MEMBERS {
        return Err(invalid(format!(
            "at most {MAX_INITIAL_MEMBERS} members can be named at creation; add more with ADD_MEMBERS"
        )));
    }
    Ok(create)
}

pub(super) fn validate_members(add: AddMembers) -> Result<AddMembers, ProtocolError> {
    if add.members.is_empty() || add.members.len() > MAX_ADDED_MEMBERS {
        return Err(invalid(format!(
            "members must name 1 to {MAX_ADDED_MEMBERS} users"
        )));
    }
    Ok(add)
}

pub(super) fn validate_history(history: GetHistory) -> Result<GetHistory, ProtocolError> {
    limit_ok(history.limit)?;
    Ok(history)
}

pub(super) fn validate_thread(thread: GetThread) -> Result<GetThread, ProtocolError> {
    limit_ok(thread.limit)?;
    Ok(thread)
}

pub(super) fn validate_search(search: Search) -> Result<Search, ProtocolError> {
    limit_ok(search.limit)?;
    if search.query.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    if search::query_words(&search.query).is_empty() {
        return Err(invalid(
            "query has no searchable word (words of 2 or more letters or digits, not a stop word)",
        ));
    }
    Ok(search)
}

pub(super) fn validate_presence(set: SetPresence) -> Result<SetPresence, ProtocolError> {
    if set.status == PresenceStatus::Offline {
        return Err(invalid(
            "status must be \"online\" or \"away\"; offline follows from closing the connection",
        ));
    }
    Ok(set)
}

pub(super) fn validate_list_conversations(
    list: ListConversations,
) -> Result<ListConversations, ProtocolError> {
    limit_ok(list.limit)?;
    Ok(list)
}

pub(super) fn validate_presence_page(get: GetPresence) -> Result<GetPresence, ProtocolError> {
    if get.limit == 0 || get.limit > MAX_MEMBERS_LIMIT {
        return Err(invalid(format!("limit must be 1 to {MAX_MEMBERS_LIMIT}")));
    }
    Ok(get)
}

pub(super) fn validate_list_notifications(
    list: ListNotifications,
) -> Result<ListNotifications, ProtocolError> {
    limit_ok(list.limit)?;
    Ok(list)
}

pub(super) fn validate_preferences(set: SetPreferences) -> Result<SetPreferences, ProtocolError> {
    Ok(SetPreferences {
        preferences: set.preferences.validate()?,
    })
}
