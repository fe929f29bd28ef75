//! The JSON frames of the WebSocket protocol (`docs/protocol.md` is the reference).
//!
//! Inbound frames are parsed in two steps, the envelope (`type`, `requestId`) first and the
//! payload of that type second, so every refusal names exactly what was wrong. Adding an
//! action means a new [`Command`] variant, a line in [`parse_inbound`] and a handler; the
//! compiler then points at every `match` that must learn it.

mod commands;
mod file_commands;
mod frames;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use commands::{
    AddMembers, EditMessage, GetThread, ListNotifications, MarkNotificationsRead, MessageRef,
    Reaction, RemoveMember, Search, SetPreferences, SetPresence, MAX_EMOJI_BYTES, MAX_QUERY_CHARS,
};
pub use file_commands::{
    parse_file_inbound, CommentOnFile, FileCommand, FileInbound, FileRef, ListFileComments,
    RegisterFile, RevokeShare, ShareFile, FILE_TYPES,
};
pub use frames::{
    ConversationSummary, ConversationView, MemberPresence, MessageContent, MessageView,
    NotificationView, PageOrder, PresenceStatus, PresignedUrl, ServerFrame, MAX_UNREAD_COUNTED,
};

use crate::channel::{ChannelError, ChannelKind, ChannelName};
use crate::error::{ErrorCode, ProtocolError};
use crate::ids::{ConversationId, TenantId, UserId};

/// Largest inbound frame we accept (API Gateway's frame size; one billed 32 KB unit).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// How long a typing indicator lives without a TYPING_STOP.
pub const TYPING_TTL_MILLIS: i64 = 10_000;
/// Longest `requestId` echoed back.
pub const MAX_REQUEST_ID_CHARS: usize = 64;
/// Most members named in one CREATE_CONVERSATION.
pub const MAX_INITIAL_MEMBERS: usize = 100;
/// Longest conversation title.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest client message id (idempotency key chosen by the client).
pub const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 64;

/// A parsed inbound frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// Chosen by the client; echoed in the ACK or ERROR answering this frame.
    pub request_id: Option<String>,
    pub command: Command,
}

/// Every action a client can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    ChatMessage(ChatMessage),
    EditMessage(EditMessage),
    DeleteMessage(MessageRef),
    AddReaction(Reaction),
    RemoveReaction(Reaction),
    TypingStart(ConversationRef),
    TypingStop(ConversationRef),
    CreateConversation(CreateConversation),
    JoinConversation(ConversationRef),
    AddMembers(AddMembers),
    RemoveMember(RemoveMember),
    ListConversations,
    GetHistory(GetHistory),
    GetThread(GetThread),
    Search(Search),
    MarkRead(MessageRef),
    SetPresence(SetPresence),
    GetPresence(ConversationRef),
    ListNotifications(ListNotifications),
    MarkNotificationsRead(MarkNotificationsRead),
    GetPreferences,
    SetPreferences(crate::notify::Preferences),
}

impl Command {
    /// The frame `type` this command came from.
    pub fn type_name(&self) -> &'static str {
        match self {
            Command::ChatMessage(_) => "CHAT_MESSAGE",
            Command::EditMessage(_) => "EDIT_MESSAGE",
            Command::DeleteMessage(_) => "DELETE_MESSAGE",
            Command::AddReaction(_) => "ADD_REACTION",
            Command::RemoveReaction(_) => "REMOVE_REACTION",
            Command::TypingStart(_) => "TYPING_START",
            Command::TypingStop(_) => "TYPING_STOP",
            Command::CreateConversation(_) => "CREATE_CONVERSATION",
            Command::JoinConversation(_) => "JOIN_CONVERSATION",
            Command::AddMembers(_) => "ADD_MEMBERS",
            Command::RemoveMember(_) => "REMOVE_MEMBER",
            Command::ListConversations => "LIST_CONVERSATIONS",
            Command::GetHistory(_) => "GET_HISTORY",
            Command::GetThread(_) => "GET_THREAD",
            Command::Search(_) => "SEARCH",
            Command::MarkRead(_) => "MARK_READ",
            Command::SetPresence(_) => "SET_PRESENCE",
            Command::GetPresence(_) => "GET_PRESENCE",
            Command::ListNotifications(_) => "LIST_NOTIFICATIONS",
            Command::MarkNotificationsRead(_) => "MARK_NOTIFICATIONS_READ",
            Command::GetPreferences => "GET_PREFERENCES",
            Command::SetPreferences(_) => "SET_PREFERENCES",
        }
    }
}

/// The action types a client may send, for error messages.
pub const KNOWN_TYPES: &[&str] = &[
    "CHAT_MESSAGE",
    "EDIT_MESSAGE",
    "DELETE_MESSAGE",
    "ADD_REACTION",
    "REMOVE_REACTION",
    "TYPING_START",
    "TYPING_STOP",
    "CREATE_CONVERSATION",
    "JOIN_CONVERSATION",
    "ADD_MEMBERS",
    "REMOVE_MEMBER",
    "LIST_CONVERSATIONS",
    "GET_HISTORY",
    "GET_THREAD",
    "SEARCH",
    "MARK_READ",
    "SET_PRESENCE",
    "GET_PRESENCE",
    "LIST_NOTIFICATIONS",
    "MARK_NOTIFICATIONS_READ",
    "GET_PREFERENCES",
    "SET_PREFERENCES",
];

/// Messages a GET_HISTORY returns when it names no `limit`, and the most it may name.
pub const DEFAULT_HISTORY_LIMIT: u16 = 50;
pub const MAX_HISTORY_LIMIT: u16 = 100;

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
                    other => {
                        ProtocolError::new(ErrorCode::InvalidField, format!("channel: {other}"))
                    }
                })?;
                Some(channel.within(tenant).map_err(|_| cross_tenant())?.clone())
            }
        };
        match (&self.conversation_id, from_channel) {
            (Some(id), None) => Ok(id.clone()),
            (None, Some(id)) => Ok(id),
            (Some(a), Some(b)) if *a == b => Ok(b),
            (Some(_), Some(_)) => Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "conversationId and channel name different conversations",
            )),
            (None, None) => Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "missing field `conversationId` (or `channel`)",
            )),
        }
    }
}

fn cross_tenant() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::CrossTenant,
        "cross-client communication is not allowed: that channel belongs to another tenant",
    )
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
    pub text: String,
    #[serde(rename = "type", default)]
    pub kind: ContentKind,
}

/// Content types a client may post. `file`, `image` and `system` arrive with file sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    #[default]
    Text,
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

/// `GET_HISTORY`: the newest messages of a conversation, and who is in it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetHistory {
    #[serde(flatten)]
    pub target: ConversationRef,
    #[serde(default = "default_history_limit")]
    pub limit: u16,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Catch up: the messages after this `seq`, oldest first (instead of the newest first).
    #[serde(default)]
    pub since_seq: Option<u64>,
}

fn default_history_limit() -> u16 {
    DEFAULT_HISTORY_LIMIT
}

fn validate_history(history: GetHistory) -> Result<GetHistory, ProtocolError> {
    commands::limit_ok(history.limit)?;
    Ok(history)
}

/// The common part of every inbound frame: size, JSON object, `requestId`, `type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub request_id: Option<String>,
    pub kind: String,
    pub value: Value,
}

/// Checks what every frame must be, before its payload is read.
pub fn parse_envelope(body: &str) -> Result<Envelope, ProtocolError> {
    if body.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "frame is {} bytes; the limit is {MAX_FRAME_BYTES}",
                body.len()
            ),
        ));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| {
        ProtocolError::new(
            ErrorCode::InvalidJson,
            format!("frame is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(object) = &value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            "frame must be a JSON object",
        ));
    };
    let request_id = match object.get("requestId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.chars().count() <= MAX_REQUEST_ID_CHARS => Some(id.clone()),
        Some(_) => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                format!("requestId must be a string of at most {MAX_REQUEST_ID_CHARS} characters"),
            ))
        }
    };
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => {
            return Err(ProtocolError::new(
                ErrorCode::MissingType,
                "frame must have a string field `type`",
            ))
        }
    };
    Ok(Envelope {
        request_id,
        kind,
        value,
    })
}

/// Parses one inbound frame of the `route` function.
pub fn parse_inbound(body: &str) -> Result<Inbound, ProtocolError> {
    let Envelope {
        request_id,
        kind,
        value,
    } = parse_envelope(body)?;
    let kind = kind.as_str();
    let command = match kind {
        "CHAT_MESSAGE" => Command::ChatMessage(validate_chat(payload(&value)?)?),
        "EDIT_MESSAGE" => Command::EditMessage(validate_edit(payload(&value)?)?),
        "DELETE_MESSAGE" => Command::DeleteMessage(payload(&value)?),
        "ADD_REACTION" => Command::AddReaction(commands::validate_reaction(payload(&value)?)?),
        "REMOVE_REACTION" => {
            Command::RemoveReaction(commands::validate_reaction(payload(&value)?)?)
        }
        "TYPING_START" => Command::TypingStart(payload(&value)?),
        "TYPING_STOP" => Command::TypingStop(payload(&value)?),
        "CREATE_CONVERSATION" => Command::CreateConversation(validate_create(payload(&value)?)?),
        "JOIN_CONVERSATION" => Command::JoinConversation(payload(&value)?),
        "ADD_MEMBERS" => Command::AddMembers(commands::validate_members(payload(&value)?)?),
        "REMOVE_MEMBER" => Command::RemoveMember(payload(&value)?),
        "LIST_CONVERSATIONS" => Command::ListConversations,
        "GET_HISTORY" => Command::GetHistory(validate_history(payload(&value)?)?),
        "GET_THREAD" => {
            let thread: GetThread = payload(&value)?;
            commands::limit_ok(thread.limit)?;
            Command::GetThread(thread)
        }
        "SEARCH" => Command::Search(commands::validate_search(payload(&value)?)?),
        "MARK_READ" => Command::MarkRead(payload(&value)?),
        "SET_PRESENCE" => Command::SetPresence(commands::validate_presence(payload(&value)?)?),
        "GET_PRESENCE" => Command::GetPresence(payload(&value)?),
        "LIST_NOTIFICATIONS" => {
            let list: ListNotifications = payload(&value)?;
            commands::limit_ok(list.limit)?;
            Command::ListNotifications(list)
        }
        "MARK_NOTIFICATIONS_READ" => Command::MarkNotificationsRead(payload(&value)?),
        "GET_PREFERENCES" => Command::GetPreferences,
        "SET_PREFERENCES" => {
            let set: SetPreferences = payload(&value)?;
            Command::SetPreferences(set.preferences.validate()?)
        }
        other => {
            return Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown message type {other:?}; expected one of {}, {}",
                    KNOWN_TYPES.join(", "),
                    FILE_TYPES.join(", ")
                ),
            ))
        }
    };
    Ok(Inbound {
        request_id,
        command,
    })
}

/// Parses the `requestId` of a frame that failed to parse, so the ERROR can still echo it.
pub fn request_id_of(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(rename = "requestId")]
        request_id: Option<String>,
    }
    if body.len() > MAX_FRAME_BYTES {
        return None;
    }
    serde_json::from_str::<Only>(body)
        .ok()
        .and_then(|o| o.request_id)
        .filter(|id| id.chars().count() <= MAX_REQUEST_ID_CHARS)
}

pub(crate) fn payload<T: DeserializeOwned>(value: &Value) -> Result<T, ProtocolError> {
    T::deserialize(value).map_err(|e| ProtocolError::new(ErrorCode::InvalidField, e.to_string()))
}

fn text_ok(content: &ChatContent) -> Result<(), ProtocolError> {
    if content.text.trim().is_empty() {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            "content.text must not be empty",
        ));
    }
    Ok(())
}

fn validate_edit(edit: EditMessage) -> Result<EditMessage, ProtocolError> {
    text_ok(&edit.content)?;
    Ok(edit)
}

fn validate_chat(chat: ChatMessage) -> Result<ChatMessage, ProtocolError> {
    text_ok(&chat.content)?;
    if let Some(id) = &chat.client_message_id {
        if id.is_empty() || id.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                format!("clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID_CHARS} characters"),
            ));
        }
    }
    Ok(chat)
}

fn validate_create(create: CreateConversation) -> Result<CreateConversation, ProtocolError> {
    if let Some(title) = &create.title {
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                format!("title is longer than {MAX_TITLE_CHARS} characters"),
            ));
        }
    }
    if create.members.len() > MAX_INITIAL_MEMBERS {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            format!("at most {MAX_INITIAL_MEMBERS} members can be named at creation"),
        ));
    }
    Ok(create)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn code(body: &str) -> ErrorCode {
        parse_inbound(body).unwrap_err().code
    }

    #[test]
    fn parses_a_chat_message_with_request_id() {
        let inbound = parse_inbound(
            r#"{"type":"CHAT_MESSAGE","requestId":"r1","conversationId":"456","content":{"text":"Hi","type":"text"}}"#,
        )
        .unwrap();
        assert_eq!(inbound.request_id.as_deref(), Some("r1"));
        let Command::ChatMessage(chat) = inbound.command else {
            panic!("not a chat")
        };
        assert_eq!(chat.content.text, "Hi");
        assert_eq!(chat.target.resolve(&tenant("123")).unwrap().as_str(), "456");
    }

    #[test]
    fn each_malformation_has_its_own_code() {
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"conversationId":"1"}"#), ErrorCode::MissingType);
        assert_eq!(code(r#"{"type":"SUBSCRIBE_ALL"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"CHAT_MESSAGE","conversationId":"1"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"CHAT_MESSAGE","conversationId":"a#b","content":{"text":"x"}}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"CHAT_MESSAGE","conversationId":"1","content":{"text":"  "}}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(
                r#"{"type":"CHAT_MESSAGE","conversationId":"1","content":{"text":"x","type":"html"}}"#
            ),
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn history_limits_are_checked() {
        let inbound = parse_inbound(r#"{"type":"GET_HISTORY","conversationId":"1"}"#).unwrap();
        let Command::GetHistory(history) = inbound.command else {
            panic!()
        };
        assert_eq!(history.limit, DEFAULT_HISTORY_LIMIT);
        assert_eq!(
            code(r#"{"type":"GET_HISTORY","conversationId":"1","limit":0}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"GET_HISTORY","conversationId":"1","limit":101}"#),
            ErrorCode::InvalidField
        );
        assert!(matches!(
            parse_inbound(r#"{"type":"LIST_CONVERSATIONS"}"#)
                .unwrap()
                .command,
            Command::ListConversations
        ));
    }

    #[test]
    fn unknown_type_lists_the_known_ones() {
        let err = parse_inbound(r#"{"type":"DELETE_EVERYTHING"}"#).unwrap_err();
        assert!(err.message.contains("CHAT_MESSAGE"), "{}", err.message);
    }

    #[test]
    fn oversized_frames_are_refused_before_parsing() {
        let text = "x".repeat(MAX_FRAME_BYTES);
        let body = format!(
            r#"{{"type":"CHAT_MESSAGE","conversationId":"1","content":{{"text":"{text}"}}}}"#
        );
        assert_eq!(code(&body), ErrorCode::MessageTooLarge);
    }

    #[test]
    fn a_foreign_channel_is_cross_tenant() {
        let inbound =
            parse_inbound(r#"{"type":"TYPING_START","channel":"client:999:project:456"}"#).unwrap();
        let Command::TypingStart(target) = inbound.command else {
            panic!()
        };
        assert_eq!(
            target.resolve(&tenant("123")).unwrap_err().code,
            ErrorCode::CrossTenant
        );
        assert_eq!(target.resolve(&tenant("999")).unwrap().as_str(), "456");
    }

    #[test]
    fn conversation_id_and_channel_must_agree() {
        let target = ConversationRef {
            conversation_id: Some(ConversationId::parse("1").unwrap()),
            channel: Some("client:123:project:2".into()),
        };
        assert_eq!(
            target.resolve(&tenant("123")).unwrap_err().code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            ConversationRef::default()
                .resolve(&tenant("1"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn request_id_is_recovered_from_a_frame_that_fails_later() {
        assert_eq!(
            request_id_of(r#"{"type":"NOPE","requestId":"abc"}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(request_id_of("garbage"), None);
    }

    #[test]
    fn server_frames_use_the_seed_names() {
        let frame = ServerFrame::TypingStart {
            conversation_id: ConversationId::parse("456").unwrap(),
            user_id: UserId::parse("alice").unwrap(),
            expires_at: 10,
        };
        assert_eq!(
            frame.to_json(),
            r#"{"type":"TYPING_START","conversationId":"456","userId":"alice","expiresAt":10}"#
        );
        let error = ServerFrame::error(
            Some("r".into()),
            &ProtocolError::new(ErrorCode::NotAMember, "no"),
        );
        let json: Value = serde_json::from_str(&error.to_json()).unwrap();
        assert_eq!(json["type"], "ERROR");
        assert_eq!(json["code"], "NOT_A_MEMBER");
        assert_eq!(json["retryable"], false);
    }
}
