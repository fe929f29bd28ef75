//! The payloads of the frames `file-share` handles (the WebSocket API routes them to it by
//! `type`), one type per frame `type`, and their checks.

use serde::Deserialize;

use crate::error::{ErrorCode, ProtocolError};
use crate::files::{CommentPosition, FilePermissions};
use crate::ids::{CommentId, FileId, UserId};

use super::commands::{default_limit, limit_ok};

/// Longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Largest file: what one presigned PUT may upload (S3's single-request limit).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// Names a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRef {
    pub file_id: FileId,
}

/// `LIST_FILES`: the files the caller can read, newest first, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFiles {
    #[serde(default = "default_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET_FILE`: a file and what the caller may do with it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct GetFile {
    pub file: FileRef,
}

/// `GET_DOWNLOAD_URL`: a presigned GET of the file (needs `download`), or of its preview
/// (`variant: "preview"`, an image's small JPEG: needs `read`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrl {
    #[serde(flatten)]
    pub file: FileRef,
    #[serde(default)]
    pub variant: DownloadVariant,
}

/// Which object GET_DOWNLOAD_URL presigns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadVariant {
    #[default]
    Original,
    Preview,
}

/// `GET_UPLOAD_URL`: a presigned PUT of a new version (needs `edit`), of `size` bytes (the
/// registered size when absent).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetUploadUrl {
    #[serde(flatten)]
    pub file: FileRef,
    #[serde(default)]
    pub size: Option<u64>,
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
pub struct RevokeFileShare {
    pub file_id: FileId,
    pub user_id: UserId,
}

/// `FILE_COMMENT` (the seed's frame): `content` is the comment text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileComment {
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
    #[serde(default = "default_limit")]
    pub limit: u16,
    #[serde(default)]
    pub cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidField, message)
}

pub(super) fn validate_register(file: RegisterFile) -> Result<RegisterFile, ProtocolError> {
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

pub(super) fn validate_comment(comment: FileComment) -> Result<FileComment, ProtocolError> {
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

pub(super) fn validate_upload(get: GetUploadUrl) -> Result<GetUploadUrl, ProtocolError> {
    if get.size.is_some_and(|s| s > MAX_FILE_BYTES) {
        return Err(invalid(format!(
            "size is above the {MAX_FILE_BYTES}-byte limit of one upload"
        )));
    }
    Ok(get)
}

pub(super) fn validate_list_files(list: ListFiles) -> Result<ListFiles, ProtocolError> {
    limit_ok(list.limit)?;
    Ok(list)
}

pub(super) fn validate_list_comments(
    list: ListFileComments,
) -> Result<ListFileComments, ProtocolError> {
    limit_ok(list.limit)?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse_file_inbound, FileCommand};

    fn code(body: &str) -> ErrorCode {
        parse_file_inbound(body).unwrap_err().code
    }

    #[test]
    fn the_seed_comment_frame_parses() {
        let inbound = parse_file_inbound(
            r#"{"type":"FILE_COMMENT","fileId":"f1","content":"Sign here","position":{"page":2,"x":0.25,"y":0.8}}"#,
        )
        .unwrap();
        let FileCommand::FileComment(c) = inbound.command else {
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
