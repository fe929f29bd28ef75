//! The frames of the `file-share` function (the WebSocket API routes them to it by `type`).

use serde::Deserialize;

use crate::error::{ErrorCode, ProtocolError};
use crate::files::{CommentPosition, FilePermissions};
use crate::ids::{CommentId, FileId, UserId};

use super::{default_history_limit, parse_envelope, payload, Envelope};

/// Longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Largest file: what one presigned PUT may upload (S3's single-request limit).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// The frame types `file-share` handles: each is a route of the WebSocket API.
pub const FILE_TYPES: &[&str] = &[
    "REGISTER_FILE",
    "SHARE_FILE",
    "REVOKE_FILE_SHARE",
    "LIST_FILES",
    "GET_FILE",
    "FILE_COMMENT",
    "LIST_FILE_COMMENTS",
    "GET_DOWNLOAD_URL",
    "GET_UPLOAD_URL",
];

#[derive(Debug, Clone, PartialEq)]
pub struct FileInbound {
    pub request_id: Option<String>,
    pub command: FileCommand,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileCommand {
    RegisterFile(RegisterFile),
    ShareFile(ShareFile),
    RevokeShare(RevokeShare),
    ListFiles,
    GetFile(FileRef),
    Comment(CommentOnFile),
    ListComments(ListFileComments),
    GetDownloadUrl(FileRef),
    GetUploadUrl(FileRef),
}

impl FileCommand {
    pub fn type_name(&self) -> &'static str {
        match self {
            FileCommand::RegisterFile(_) => "REGISTER_FILE",
            FileCommand::ShareFile(_) => "SHARE_FILE",
            FileCommand::RevokeShare(_) => "REVOKE_FILE_SHARE",
            FileCommand::ListFiles => "LIST_FILES",
            FileCommand::GetFile(_) => "GET_FILE",
            FileCommand::Comment(_) => "FILE_COMMENT",
            FileCommand::ListComments(_) => "LIST_FILE_COMMENTS",
            FileCommand::GetDownloadUrl(_) => "GET_DOWNLOAD_URL",
            FileCommand::GetUploadUrl(_) => "GET_UPLOAD_URL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRef {
    pub file_id: FileId,
}

/// `REGISTER_FILE`: metadata of a file the caller is about to upload (they own it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterFile {
    /// Chosen by the client, or assigned.
    #[serde(default)]
    pub file_id: Option<FileId>,
    pub name: String,
    pub size: u64,
    pub mime_type: String,
}

/// `SHARE_FILE`: grant (or change) a user's permissions on a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareFile {
    pub file_id: FileId,
    pub user_id: UserId,
    pub permissions: FilePermissions,
}

/// `REVOKE_FILE_SHARE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeShare {
    pub file_id: FileId,
    pub user_id: UserId,
}

/// `FILE_COMMENT` (the seed's frame): `content` is the comment text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentOnFile {
    pub file_id: FileId,
    pub content: String,
    #[serde(default)]
    pub position: Option<CommentPosition>,
    #[serde(default)]
    pub parent_comment_id: Option<CommentId>,
}

/// `LIST_FILE_COMMENTS`: oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFileComments {
    pub file_id: FileId,
    #[serde(default = "default_history_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidField, message)
}

fn validate_register(file: RegisterFile) -> Result<RegisterFile, ProtocolError> {
    let chars = file.name.chars().count();
    if file.name.trim().is_empty()
        || chars > MAX_FILE_NAME_CHARS
        || file.name.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "name must be 1 to {MAX_FILE_NAME_CHARS} characters without control characters"
        )));
    }
    if file.size > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "size is above the {MAX_FILE_BYTES}-byte limit of one upload"
        )));
    }
    let mime_ok = file.mime_type.len() <= 127
        && file.mime_type.split_once('/').is_some_and(|(kind, sub)| {
            let token = |t: &str| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
            };
            token(kind) && token(sub)
        });
    if !mime_ok {
        return Err(invalid("mimeType must look like \"application/pdf\""));
    }
    Ok(file)
}

fn validate_comment(comment: CommentOnFile) -> Result<CommentOnFile, ProtocolError> {
    if comment.content.trim().is_empty() || comment.content.chars().count() > MAX_COMMENT_CHARS {
        return Err(invalid(format!(
            "content must be 1 to {MAX_COMMENT_CHARS} characters"
        )));
    }
    if comment.position.is_some_and(|p| !p.is_valid()) {
        return Err(invalid(
            "position needs page >= 1 and x, y between 0 and 1 (fractions of the page)",
        ));
    }
    Ok(comment)
}

/// Parses one inbound frame of the `file-share` function.
pub fn parse_file_inbound(body: &str) -> Result<FileInbound, ProtocolError> {
    let Envelope {
        request_id,
        kind,
        value,
    } = parse_envelope(body)?;
    let command = match kind.as_str() {
        "REGISTER_FILE" => FileCommand::RegisterFile(validate_register(payload(&value)?)?),
        "SHARE_FILE" => FileCommand::ShareFile(payload(&value)?),
        "REVOKE_FILE_SHARE" => FileCommand::RevokeShare(payload(&value)?),
        "LIST_FILES" => FileCommand::ListFiles,
        "GET_FILE" => FileCommand::GetFile(payload(&value)?),
        "FILE_COMMENT" => FileCommand::Comment(validate_comment(payload(&value)?)?),
        "LIST_FILE_COMMENTS" => {
            let list: ListFileComments = payload(&value)?;
            super::commands::limit_ok(list.limit)?;
            FileCommand::ListComments(list)
        }
        "GET_DOWNLOAD_URL" => FileCommand::GetDownloadUrl(payload(&value)?),
        "GET_UPLOAD_URL" => FileCommand::GetUploadUrl(payload(&value)?),
        other => {
            return Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!(
                    "{other:?} is not a file action; expected one of {}",
                    FILE_TYPES.join(", ")
                ),
            ))
        }
    };
    Ok(FileInbound {
        request_id,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> ErrorCode {
        parse_file_inbound(body).unwrap_err().code
    }

    #[test]
    fn the_seed_comment_frame_parses() {
        let inbound = parse_file_inbound(
            r#"{"type":"FILE_COMMENT","fileId":"f1","content":"Sign here","position":{"page":2,"x":0.25,"y":0.8}}"#,
        )
        .unwrap();
        let FileCommand::Comment(c) = inbound.command else {
            panic!()
        };
        assert_eq!(c.position.unwrap().page, 2);
    }

    #[test]
    fn bad_file_frames_name_the_field() {
        assert_eq!(
            code(r#"{"type":"REGISTER_FILE","name":"a.pdf","size":1,"mimeType":"pdf"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"REGISTER_FILE","name":"","size":1,"mimeType":"application/pdf"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(
                r#"{"type":"REGISTER_FILE","name":"a","size":6000000000,"mimeType":"application/pdf"}"#
            ),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"FILE_COMMENT","fileId":"f1","content":" "}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(
                r#"{"type":"FILE_COMMENT","fileId":"f1","content":"x","position":{"page":1,"x":2,"y":0}}"#
            ),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"SHARE_FILE","fileId":"f#1","userId":"u","permissions":{}}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(code(r#"{"type":"CHAT_MESSAGE"}"#), ErrorCode::UnknownType);
    }
}
