//! Errors a client sees: a stable code and a human sentence.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable error codes of the WebSocket protocol (documented in `docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    InvalidJson,
    /// The frame has no string `type`.
    MissingType,
    /// `type` names no known action.
    UnknownType,
    /// A field is missing, has the wrong type or an invalid value.
    InvalidField,
    /// The frame is larger than the 32 KB the protocol allows.
    MessageTooLarge,
    /// A channel or id names another tenant.
    CrossTenant,
    /// No such conversation in the caller's tenant.
    ConversationNotFound,
    /// A conversation with that id already exists.
    ConversationExists,
    /// No such message in the conversation (or it was deleted, for an edit or reaction).
    MessageNotFound,
    /// No such file in the caller's tenant, or none the caller may read (the two look alike).
    FileNotFound,
    /// A file with that id already exists.
    FileExists,
    /// The file is not shared with that user.
    ShareNotFound,
    /// No such comment on the file (for a reply).
    CommentNotFound,
    /// GET_DOWNLOAD_URL `variant: "preview"` of a file that has none: not an image, not yet
    /// looked at (a second or two after its upload), or refused (the message says why).
    PreviewNotAvailable,
    /// A page cursor that was altered, or issued for another user, conversation or search.
    InvalidCursor,
    /// The caller is not a member of the conversation.
    NotAMember,
    /// The caller's role lacks the permission for this action.
    Forbidden,
    /// The connection is unknown or expired: reconnect with a fresh token.
    UnknownConnection,
    /// HTTP API: no valid bearer token.
    Unauthorized,
    /// HTTP API: no such path (or method).
    NotFound,
    /// Over a rate limit of the connection, the user or the tenant: send again after
    /// `retryAfterMs`.
    Throttled,
    /// Server API: this `Idempotency-Key` already answered a different request (another
    /// method, path or body). Never retryable: use a new key for a new request.
    IdempotencyKeyReused,
    /// Server API: a request with this `Idempotency-Key` is still being carried out; send the
    /// same request again after `retryAfterMs` to get its answer.
    IdempotencyKeyInUse,
    /// A temporary failure on our side: the same frame may be sent again.
    Unavailable,
    /// A bug or misconfiguration on our side.
    Internal,
}

impl ErrorCode {
    /// Whether sending the same frame again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable | ErrorCode::Throttled | ErrorCode::IdempotencyKeyInUse
        )
    }

    /// The HTTP status the handler reports for this error (API Gateway logs it; the client
    /// gets the ERROR frame).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::MissingType
            | ErrorCode::UnknownType
            | ErrorCode::InvalidField
            | ErrorCode::InvalidCursor => 400,
            ErrorCode::MessageTooLarge => 413,
            ErrorCode::CrossTenant | ErrorCode::NotAMember | ErrorCode::Forbidden => 403,
            ErrorCode::ConversationNotFound
            | ErrorCode::MessageNotFound
            | ErrorCode::FileNotFound
            | ErrorCode::ShareNotFound
            | ErrorCode::CommentNotFound
            | ErrorCode::PreviewNotAvailable => 404,
            ErrorCode::ConversationExists
            | ErrorCode::FileExists
            | ErrorCode::IdempotencyKeyInUse => 409,
            ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::UnknownConnection | ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::Throttled => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::MissingType => "MISSING_TYPE",
            ErrorCode::UnknownType => "UNKNOWN_TYPE",
            ErrorCode::InvalidField => "INVALID_FIELD",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::CrossTenant => "CROSS_TENANT",
            ErrorCode::ConversationNotFound => "CONVERSATION_NOT_FOUND",
            ErrorCode::ConversationExists => "CONVERSATION_EXISTS",
            ErrorCode::MessageNotFound => "MESSAGE_NOT_FOUND",
            ErrorCode::InvalidCursor => "INVALID_CURSOR",
            ErrorCode::FileNotFound => "FILE_NOT_FOUND",
            ErrorCode::FileExists => "FILE_EXISTS",
            ErrorCode::ShareNotFound => "SHARE_NOT_FOUND",
            ErrorCode::CommentNotFound => "COMMENT_NOT_FOUND",
            ErrorCode::PreviewNotAvailable => "PREVIEW_NOT_AVAILABLE",
            ErrorCode::NotAMember => "NOT_A_MEMBER",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::UnknownConnection => "UNKNOWN_CONNECTION",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Throttled => "THROTTLED",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to the client as an `ERROR` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// For THROTTLED: how long to wait before sending again.
    pub retry_after_ms: Option<u64>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// Over a rate limit; the frame may be sent again in `retry_after_ms`.
    pub fn throttled(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self {
            code: ErrorCode::Throttled,
            message: message.into(),
            retry_after_ms: Some(retry_after_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_documented_names() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::CrossTenant,
            ErrorCode::UnknownConnection,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn only_unavailable_throttled_and_a_key_in_use_are_retryable() {
        assert!(ErrorCode::Unavailable.is_retryable());
        assert!(ErrorCode::IdempotencyKeyInUse.is_retryable());
        assert!(!ErrorCode::IdempotencyKeyReused.is_retryable());
        assert!(ErrorCode::Throttled.is_retryable());
        assert!(!ErrorCode::Internal.is_retryable());
        assert!(!ErrorCode::NotAMember.is_retryable());
    }
}
