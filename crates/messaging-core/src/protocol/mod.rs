//! The JSON frames of the WebSocket protocol (`docs/protocol.md` is the reference).
//!
//! Inbound frames are parsed in two steps, the envelope (`type`, `requestId`) first and the
//! payload of that type second, so every refusal names exactly what was wrong.
//!
//! # Adding a frame
//!
//! Every frame a client may send is one line of a command table below: [`Command`] for the
//! `route` function (`$default`), [`FileCommand`] for `file-share` (one WebSocket route per
//! frame type). A new frame touches two places:
//!
//! 1. **the table**: `"NEW_THING" => NewThing, checked by validate_new_thing;` here, with the
//!    payload struct `NewThing` (and its validator, if any) in `commands.rs` or
//!    `file_commands.rs`. The line generates the enum variant, the type name, the list of
//!    known types (`KNOWN_TYPES` / `FILE_TYPES`), the parse arm and the dispatch arm;
//! 2. **its handler**: `impl Handle<NewThing> for Call<'_, RouteService>` (or
//!    `FileShareService`) in `messaging-handlers`, next to the handlers of its kind. Until it
//!    exists, the function that dispatches does not compile.
//!
//! A file frame also needs its route in `template.yaml`; a test checks that every
//! `FILE_TYPES` entry has one (and the local gateway serves the template's routes).

mod commands;
mod file_commands;
mod frames;
mod http;
mod service;
mod table;

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use commands::{
    content_ok, AddMembers, AddReaction, AttachmentRef, ChatContent, ChatMessage, ContentKind,
    ConversationRef, CreateConversation, DeleteMessage, EditMessage, GetHistory, GetPreferences,
    GetPresence, GetThread, JoinConversation, ListConversations, ListNotifications,
    MarkNotificationsRead, MarkRead, MessageRef, Ping, Reaction, RemoveMember, RemoveReaction,
    Search, SetPreferences, SetPresence, TypingStart, TypingStop, DEFAULT_HISTORY_LIMIT,
    DEFAULT_MEMBERS_LIMIT, MAX_ADDED_MEMBERS, MAX_ATTACHMENTS, MAX_CLIENT_MESSAGE_ID_CHARS,
    MAX_EMOJI_BYTES, MAX_HISTORY_LIMIT, MAX_INITIAL_MEMBERS, MAX_MEMBERS_LIMIT, MAX_QUERY_CHARS,
    MAX_TITLE_CHARS, MAX_TRANSACTION_ACTIONS,
};
pub use file_commands::{
    DownloadVariant, FileComment, FileRef, GetDownloadUrl, GetFile, GetUploadUrl, ListFileComments,
    ListFiles, RegisterFile, RevokeFileShare, ShareFile, MAX_COMMENT_CHARS, MAX_FILE_BYTES,
    MAX_FILE_NAME_CHARS,
};
pub use frames::{
    Ack, Attachment, ConversationSummary, ConversationView, MemberPresence, MessageContent,
    MessageView, NotificationView, PageOrder, PresenceStatus, PresignedUrl, ServerFrame,
    MAX_UNREAD_COUNTED,
};
pub use http::{parse_http_read, HttpRead, ListAudit, HTTP_QUERY_PARAMETERS};
pub use service::{
    idempotency_key_ok, parse_service_request, request_hash, IdempotencyKey, ServiceAction,
    ServiceRequest, SystemMessage, UserProfile, IDEMPOTENCY_KEY_HEADER, MAX_DISPLAY_NAME_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS, MAX_SERVICE_BODY_BYTES, MAX_SYSTEM_TEXT_CHARS,
};

use crate::error::{ErrorCode, ProtocolError};

/// Largest inbound frame we accept (API Gateway's frame size; one billed 32 KB unit).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Largest message the server may send: API Gateway's WebSocket message limit (128 KB), for a
/// route response and an `@connections` post alike.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// What the list of one answer (messages, results, conversations, files, comments, members)
/// may take: the rest of the frame fits in what is left of [`MAX_MESSAGE_BYTES`].
pub const MAX_LIST_BYTES: usize = 120 * 1024;

/// How many of `items`, from the first, fit in `budget` bytes of JSON (with their commas);
/// at least one, so a page always moves on.
pub fn fitting<T: Serialize>(items: &[T], budget: usize) -> usize {
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        used += serde_json::to_vec(item)
            .map(|v| v.len())
            .unwrap_or(usize::MAX / 2)
            + 1;
        if used > budget {
            return i.max(1);
        }
    }
    items.len()
}
/// How long a typing indicator lives without a TYPING_STOP.
pub const TYPING_TTL_MILLIS: i64 = 10_000;
/// Longest `requestId` echoed back.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

/// Fields the server fills in from the caller's verified token, never from a frame: a frame (or
/// HTTP query) that carries one is refused, so a client cannot believe it acts as another
/// tenant, user or role, and a forgery attempt is answered loudly instead of ignored.
/// (`userId` is not among them: it names the member or reader an action is about.)
pub const IDENTITY_FIELDS: [&str; 10] = [
    "clientId",
    "tenantId",
    "tenant",
    "role",
    "sender",
    "senderId",
    "senderName",
    "createdBy",
    "ownerId",
    "principal",
];

/// The refusal of a frame or request that names `field`, one of [`IDENTITY_FIELDS`].
pub(crate) fn identity_field_refused(field: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::InvalidField,
        format!("{field} is taken from your access token, never from a request; remove it"),
    )
}

table::command_table! {
    /// Every action the `route` function (`$default`) handles.
    pub enum Command;
    /// The frame types `route` handles, for error messages.
    types KNOWN_TYPES;
    "CHAT_MESSAGE" => ChatMessage, checked by commands::validate_chat;
    "EDIT_MESSAGE" => EditMessage, checked by commands::validate_edit;
    "DELETE_MESSAGE" => DeleteMessage;
    "ADD_REACTION" => AddReaction, checked by commands::validate_add_reaction;
    "REMOVE_REACTION" => RemoveReaction, checked by commands::validate_remove_reaction;
    "TYPING_START" => TypingStart;
    "TYPING_STOP" => TypingStop;
    "CREATE_CONVERSATION" => CreateConversation, checked by commands::validate_create;
    "JOIN_CONVERSATION" => JoinConversation;
    "ADD_MEMBERS" => AddMembers, checked by commands::validate_members;
    "REMOVE_MEMBER" => RemoveMember;
    "LIST_CONVERSATIONS" => ListConversations, checked by commands::validate_list_conversations;
    "GET_HISTORY" => GetHistory, checked by commands::validate_history;
    "GET_THREAD" => GetThread, checked by commands::validate_thread;
    "SEARCH" => Search, checked by commands::validate_search;
    "MARK_READ" => MarkRead;
    "SET_PRESENCE" => SetPresence, checked by commands::validate_presence;
    "GET_PRESENCE" => GetPresence, checked by commands::validate_presence_page;
    "LIST_NOTIFICATIONS" => ListNotifications, checked by commands::validate_list_notifications;
    "MARK_NOTIFICATIONS_READ" => MarkNotificationsRead;
    "GET_PREFERENCES" => GetPreferences;
    "PING" => Ping;
    "SET_PREFERENCES" => SetPreferences, checked by commands::validate_preferences;
}

table::command_table! {
    /// Every action the `file-share` function handles (the WebSocket API routes each of
    /// these types to it).
    pub enum FileCommand;
    /// The frame types `file-share` handles: each is a route of the WebSocket API.
    types FILE_TYPES;
    "REGISTER_FILE" => RegisterFile, checked by file_commands::validate_register;
    "SHARE_FILE" => ShareFile;
    "REVOKE_FILE_SHARE" => RevokeFileShare;
    "LIST_FILES" => ListFiles, checked by file_commands::validate_list_files;
    "GET_FILE" => GetFile;
    "FILE_COMMENT" => FileComment, checked by file_commands::validate_comment;
    "LIST_FILE_COMMENTS" => ListFileComments, checked by file_commands::validate_list_comments;
    "GET_DOWNLOAD_URL" => GetDownloadUrl;
    "GET_UPLOAD_URL" => GetUploadUrl, checked by file_commands::validate_upload;
}

/// What handling a command answers: the frame for the caller (an ACK or the data asked for),
/// nothing (typing indicators are not acknowledged), or a refusal.
pub type Reply = Result<Option<ServerFrame>, ProtocolError>;

/// Handles commands of type `C`. Each function's call context implements it once per payload
/// type of its table; the table then makes the whole enum dispatchable.
pub trait Handle<C> {
    fn handle(&self, command: C) -> impl Future<Output = Reply> + Send;
}

/// A parsed inbound frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound<C = Command> {
    /// Chosen by the client; echoed in the ACK or ERROR answering this frame.
    pub request_id: Option<String>,
    pub command: C,
}

/// The commands of one function, parsed from its frames.
pub trait Commands: Sized {
    fn parse(body: &str) -> Result<Inbound<Self>, ProtocolError>;
    fn type_name(&self) -> &'static str;
}

impl Commands for Command {
    fn parse(body: &str) -> Result<Inbound<Self>, ProtocolError> {
        parse_inbound(body)
    }

    fn type_name(&self) -> &'static str {
        Command::type_name(self)
    }
}

impl Commands for FileCommand {
    fn parse(body: &str) -> Result<Inbound<Self>, ProtocolError> {
        parse_file_inbound(body)
    }

    fn type_name(&self) -> &'static str {
        FileCommand::type_name(self)
    }
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
    if let Some(field) = IDENTITY_FIELDS.iter().find(|f| object.contains_key(**f)) {
        return Err(identity_field_refused(field));
    }
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
    let command = Command::from_frame(&kind, &value).unwrap_or_else(|| {
        Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown message type {kind:?}; expected one of {}, {}",
                KNOWN_TYPES.join(", "),
                FILE_TYPES.join(", ")
            ),
        ))
    })?;
    Ok(Inbound {
        request_id,
        command,
    })
}

/// Parses one inbound frame of the `file-share` function.
pub fn parse_file_inbound(body: &str) -> Result<Inbound<FileCommand>, ProtocolError> {
    let Envelope {
        request_id,
        kind,
        value,
    } = parse_envelope(body)?;
    let command = FileCommand::from_frame(&kind, &value).unwrap_or_else(|| {
        Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!(
                "{kind:?} is not a file action; expected one of {}",
                FILE_TYPES.join(", ")
            ),
        ))
    })?;
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

/// The payload of a frame as a `T` (the whole frame object; unknown fields are ignored).
pub(crate) fn payload<T: DeserializeOwned>(value: &Value) -> Result<T, ProtocolError> {
    T::deserialize(value).map_err(|e| ProtocolError::new(ErrorCode::InvalidField, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, TenantId, UserId};

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn code(body: &str) -> ErrorCode {
        parse_inbound(body).unwrap_err().code
    }

    #[test]
    fn a_frame_naming_an_identity_field_is_refused_whatever_its_value() {
        for field in IDENTITY_FIELDS {
            let body = format!(
                r#"{{"type":"CHAT_MESSAGE","conversationId":"c","content":{{"text":"x"}},"{field}":"globex"}}"#
            );
            let e = parse_inbound(&body).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField, "{field}");
            assert!(e.message.starts_with(field), "{}", e.message);
            assert!(parse_file_inbound(&body).is_err());
        }
        // `userId` names whom an action is about.
        assert!(
            parse_inbound(r#"{"type":"REMOVE_MEMBER","conversationId":"c","userId":"bob"}"#)
                .is_ok()
        );
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
    fn file_and_image_messages_carry_registered_files_and_nothing_else_does() {
        let chat = |content: &str| {
            parse_inbound(&format!(
                r#"{{"type":"CHAT_MESSAGE","conversationId":"456","content":{content}}}"#
            ))
        };
        let Command::ChatMessage(file) = chat(
            r#"{"type":"file","text":"","attachments":[{"fileId":"contract","download":true},{"fileId":"annex"}]}"#,
        )
        .unwrap()
        .command
        else {
            panic!("not a chat")
        };
        assert_eq!(file.content.kind, ContentKind::File);
        assert_eq!(
            file.content
                .attachments
                .iter()
                .map(|a| (a.file_id.as_str(), a.download))
                .collect::<Vec<_>>(),
            [("contract", true), ("annex", false)],
            "a caption may be empty; download is the poster's choice"
        );
        let refused = |content: &str, says: &str| {
            let e = chat(content).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField, "{content}");
            assert!(e.message.contains(says), "{content}: {}", e.message);
        };
        refused(r#"{"type":"system","text":"Invoice paid"}"#, "server API");
        refused(r#"{"type":"file","text":"x"}"#, "1 to 10 attachments");
        let eleven = (0..11)
            .map(|i| format!(r#"{{"fileId":"f{i}"}}"#))
            .collect::<Vec<_>>()
            .join(",");
        refused(
            &format!(r#"{{"type":"image","text":"","attachments":[{eleven}]}}"#),
            "this one has 11",
        );
        refused(
            r#"{"type":"file","text":"","attachments":[{"fileId":"a"},{"fileId":"a"}]}"#,
            "attached twice",
        );
        refused(
            r#"{"type":"text","text":"x","attachments":[{"fileId":"a"}]}"#,
            "carries no attachments",
        );
        // Never a URL or another tenant's key: only an id, and nothing beside it.
        assert_eq!(
            code(
                r#"{"type":"CHAT_MESSAGE","conversationId":"1","content":{"type":"file","text":"","attachments":[{"fileId":"a","url":"https://evil.test/x"}]}}"#
            ),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(
                r#"{"type":"CHAT_MESSAGE","conversationId":"1","content":{"type":"file","text":"","attachments":[{"fileId":"a#FILE#b"}]}}"#
            ),
            ErrorCode::InvalidField
        );
        // An edit changes the text only.
        assert_eq!(
            code(
                r#"{"type":"EDIT_MESSAGE","conversationId":"1","seq":3,"content":{"type":"file","text":"x","attachments":[{"fileId":"a"}]}}"#
            ),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(
                r#"{"type":"EDIT_MESSAGE","conversationId":"1","seq":3,"content":{"type":"system","text":"x"}}"#
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
            Command::ListConversations(_)
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
        let Command::TypingStart(TypingStart { target }) = inbound.command else {
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

    #[test]
    fn every_table_line_parses_to_its_own_variant_and_names_its_type() {
        // A frame of each type with every field any payload needs; the table must send each
        // type to the variant that reports the same type back.
        let fields = r#""conversationId":"c","seq":1,"content":{"text":"x"},"emoji":"+1","kind":"general","members":["u"],"userId":"u","query":"hello","status":"online","preferences":{}"#;
        for kind in KNOWN_TYPES {
            let inbound = parse_inbound(&format!(r#"{{"type":"{kind}",{fields}}}"#))
                .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            assert_eq!(inbound.command.type_name(), *kind);
        }
        let fields = r#""fileId":"f","userId":"u","content":"x","name":"a.pdf","size":1,"mimeType":"application/pdf","permissions":{"read":true}"#;
        for kind in FILE_TYPES {
            let inbound = parse_file_inbound(&format!(r#"{{"type":"{kind}",{fields}}}"#))
                .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            assert_eq!(inbound.command.type_name(), *kind);
            // File frames are not route frames (the gateway routes them elsewhere).
            assert_eq!(
                parse_inbound(&format!(r#"{{"type":"{kind}"}}"#))
                    .unwrap_err()
                    .code,
                ErrorCode::UnknownType
            );
        }
        let mut all: Vec<_> = KNOWN_TYPES.iter().chain(FILE_TYPES).collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            KNOWN_TYPES.len() + FILE_TYPES.len(),
            "a type is listed twice"
        );
    }

    #[test]
    fn an_ack_names_only_what_it_was_given() {
        let ack: ServerFrame = Ack::new(Some("r".into()), "MARK_READ")
            .conversation(ConversationId::parse("c").unwrap())
            .seq(3)
            .into();
        assert_eq!(
            ack.to_json(),
            r#"{"type":"ACK","requestId":"r","action":"MARK_READ","conversationId":"c","seq":3}"#
        );
        let back: ServerFrame = serde_json::from_str(&ack.to_json()).unwrap();
        assert_eq!(back, ack);
    }
}
