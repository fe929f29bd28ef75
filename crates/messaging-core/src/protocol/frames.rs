//! What the server sends: the views of stored things and every server frame.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::channel::ChannelKind;
use crate::error::{ErrorCode, ProtocolError};
use crate::files::{CommentView, FileEntry, FilePermissions, FileView};
use crate::ids::{CommentId, ConversationId, FileId, MessageId, UserId};
use crate::notify::{NotificationKind, Preferences};
use crate::templates::NotificationData;

use super::ContentKind;

/// A stored chat message as clients see it (the seed's message schema, plus `seq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// Position in the conversation: strictly increasing, no gaps between stored messages of
    /// one conversation (a number a send gave up holds a void: a tombstone sent by
    /// [`crate::UserId::SYSTEM`]). Edits, deletes and reactions name a message by it.
    pub seq: u64,
    pub sender_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    pub content: MessageContent,
    /// RFC 3339 UTC.
    pub timestamp: String,
    pub edited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// A deleted message stays as a tombstone (empty content) so `seq` keeps no holes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Emoji → the users who reacted with it (the seed's shape).
    #[serde(default)]
    pub reactions: BTreeMap<String, Vec<UserId>>,
    /// Replies in this message's thread.
    #[serde(default)]
    pub thread_count: u32,
    /// Set on a thread reply: the `seq` of the message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContent {
    pub text: String,
    #[serde(rename = "type")]
    pub kind: ContentKind,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// A file a message carries, as it was when posted (the seed's id, name, size, mimeType).
/// Never a URL: GET_DOWNLOAD_URL gives one, under the file's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub file_id: FileId,
    pub name: String,
    pub size: u64,
    pub mime_type: String,
    /// An image's size, when known as it was posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The image had a preview when posted: GET_DOWNLOAD_URL `variant: "preview"` gives it to
    /// anyone who may read the file. (Absent, it may still come: ask, or GET_FILE.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
}

impl Attachment {
    pub fn of(file: &FileView) -> Self {
        let image = file.image.as_ref();
        Self {
            file_id: file.file_id.clone(),
            name: file.name.clone(),
            size: file.size,
            mime_type: file.mime_type.clone(),
            width: image.and_then(|i| i.width),
            height: image.and_then(|i| i.height),
            preview: image.is_some_and(|i| i.preview == crate::files::PreviewStatus::Ready),
        }
    }
}

/// A conversation as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    pub conversation_id: ConversationId,
    pub channel: String,
    pub kind: ChannelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub created_by: UserId,
    pub created_at: String,
    pub last_activity: String,
    /// The `seq` of the newest message (0: none yet).
    #[serde(default)]
    pub last_seq: u64,
}

/// One entry of "my conversations": the conversation and where the caller stopped reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// The caller's read marker (MARK_READ).
    pub last_read_seq: u64,
    /// Messages after the marker written by others and not deleted, counted up to
    /// [`MAX_UNREAD_COUNTED`] ("99+" territory).
    pub unread_count: u32,
}

/// Unread counts stop at this (a client shows "100+").
pub const MAX_UNREAD_COUNTED: u32 = 100;

/// A conversation member and their presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberPresence {
    pub user_id: UserId,
    pub status: PresenceStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Away,
    Offline,
}

impl PresenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// Which way a page of messages runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PageOrder {
    NewestFirst,
    OldestFirst,
}

/// Every frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum ServerFrame {
    /// The answer to a successful request.
    Ack(Ack),
    /// The answer to a refused request.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        code: ErrorCode,
        message: String,
        retryable: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    NewMessage {
        data: MessageView,
    },
    /// A reply in a thread; `threadCount` is the parent's count including it.
    ThreadReply {
        data: MessageView,
        thread_count: u32,
    },
    MessageEdited {
        data: MessageView,
    },
    MessageDeleted {
        conversation_id: ConversationId,
        seq: u64,
        message_id: MessageId,
        deleted_by: UserId,
    },
    ReactionsChanged {
        conversation_id: ConversationId,
        seq: u64,
        message_id: MessageId,
        reactions: BTreeMap<String, Vec<UserId>>,
    },
    TypingStart {
        conversation_id: ConversationId,
        user_id: UserId,
        expires_at: i64,
    },
    TypingStop {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    MemberJoined {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    MemberRemoved {
        conversation_id: ConversationId,
        user_id: UserId,
        removed_by: UserId,
    },
    /// A member moved their read marker.
    ReadReceipt {
        conversation_id: ConversationId,
        user_id: UserId,
        seq: u64,
    },
    ConversationCreated {
        conversation: ConversationView,
    },
    /// The answer to LIST_CONVERSATIONS: most recently active first.
    Conversations {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        conversations: Vec<ConversationSummary>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// The answer to GET_HISTORY.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        conversation_id: ConversationId,
        order: PageOrder,
        messages: Vec<MessageView>,
        /// Present when there is more: send it back as `cursor` for the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
        /// The first members (by user id) and their presence; `moreMembers`: GET_PRESENCE
        /// pages through the rest.
        members: Vec<MemberPresence>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more_members: bool,
    },
    /// The answer to GET_THREAD: the parent and its replies, oldest first.
    Thread {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        conversation_id: ConversationId,
        parent: MessageView,
        replies: Vec<MessageView>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// The answer to SEARCH: matching messages the caller may read, newest first.
    SearchResults {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        query: String,
        results: Vec<MessageView>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// The answer to GET_PRESENCE: members (by user id) and their presence.
    PresenceList {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        conversation_id: ConversationId,
        members: Vec<MemberPresence>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// A user's presence changed (first connection, last connection closed, away/back).
    Presence {
        user_id: UserId,
        status: PresenceStatus,
    },
    /// The answer to REGISTER_FILE and GET_FILE: the file and what the caller may do with it
    /// (REGISTER_FILE also carries the presigned upload URL).
    File {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        file: FileView,
        permissions: FilePermissions,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upload: Option<PresignedUrl>,
    },
    /// The answer to LIST_FILES: the files the caller can read, newest first.
    Files {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        files: Vec<FileEntry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// To the user a file was just shared with (the seed's event).
    FileShared {
        file: FileView,
        shared_by: UserId,
        permissions: FilePermissions,
    },
    /// To the user whose share was revoked.
    FileShareRevoked {
        file_id: FileId,
        user_id: UserId,
    },
    /// A new comment, to everyone who may read the file.
    FileComment {
        comment: CommentView,
    },
    /// The answer to LIST_FILE_COMMENTS: oldest first.
    FileComments {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        file_id: FileId,
        comments: Vec<CommentView>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// An in-app notification, pushed live to the user's open connections.
    Notification {
        notification: NotificationView,
    },
    /// The answer to LIST_NOTIFICATIONS: newest first, and how many are unread.
    Notifications {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        notifications: Vec<NotificationView>,
        unread: u32,
    },
    /// The answer to GET_PREFERENCES and SET_PREFERENCES.
    Preferences {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        preferences: Preferences,
    },
    /// The answer to GET_DOWNLOAD_URL / GET_UPLOAD_URL.
    FileUrl {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        file_id: FileId,
        #[serde(flatten)]
        url: PresignedUrl,
    },
}

/// The answer to a successful request: what was done (`action`, the frame `type`), and what
/// it was done to. Built by [`Ack::new`] and the setters of what the action names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The `type` of the frame being acknowledged.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    /// FILE_COMMENT: the stored comment's id (the commenter's own connection is not sent its
    /// FILE_COMMENT, so this is how it learns the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A CHAT_MESSAGE whose `clientMessageId` was already stored: nothing new was stored or
    /// delivered; the ids are those of the first copy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl Ack {
    /// An ACK of `action` that names nothing yet.
    pub fn new(request_id: Option<String>, action: &str) -> Self {
        Self {
            request_id,
            action: action.to_owned(),
            conversation_id: None,
            file_id: None,
            comment_id: None,
            message_id: None,
            seq: None,
            timestamp: None,
            duplicate: false,
        }
    }

    pub fn conversation(mut self, conversation: ConversationId) -> Self {
        self.conversation_id = Some(conversation);
        self
    }

    pub fn file(mut self, file: FileId) -> Self {
        self.file_id = Some(file);
        self
    }

    pub fn comment(mut self, comment: CommentId) -> Self {
        self.comment_id = Some(comment);
        self
    }

    pub fn seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }

    pub fn timestamp(mut self, timestamp: String) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The stored message: its conversation, id, `seq` and timestamp.
    pub fn message(mut self, message: &MessageView) -> Self {
        self.conversation_id = Some(message.conversation_id.clone());
        self.message_id = Some(message.message_id.clone());
        self.seq = Some(message.seq);
        self.timestamp = Some(message.timestamp.clone());
        self
    }

    pub fn duplicate(mut self, duplicate: bool) -> Self {
        self.duplicate = duplicate;
        self
    }
}

impl From<Ack> for ServerFrame {
    fn from(ack: Ack) -> Self {
        ServerFrame::Ack(ack)
    }
}

/// A notification as the in-app list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub notification_id: String,
    pub kind: NotificationKind,
    /// The in-app text (the seed's template, filled).
    pub text: String,
    pub data: NotificationData,
    pub created_at: String,
    #[serde(default)]
    pub read: bool,
}

/// A presigned S3 request: use `method` on `url` (with `headers`) before `expiresAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUrl {
    pub method: String,
    pub url: String,
    /// Headers the request must carry as signed (e.g. `content-type` of an upload).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Epoch milliseconds.
    pub expires_at: i64,
}

impl ServerFrame {
    pub fn error(request_id: Option<String>, error: &ProtocolError) -> Self {
        ServerFrame::Error {
            request_id,
            code: error.code,
            message: error.message.clone(),
            retryable: error.code.is_retryable(),
            retry_after_ms: error.retry_after_ms,
        }
    }

    /// The JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: no maps with non-string keys, no foreign types.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"ERROR\"}"))
    }
}
