//! Files: who may do what with one (the seed's read / comment / edit / download shares), and
//! the views clients see.
//!
//! A file's owner may do everything; so may OWNER and ADMIN (`canAccessAllFiles`). Anyone
//! else has exactly what the file was shared with them with, where `comment`, `edit` and
//! `download` each imply `read` (commenting on a file one cannot see makes no sense). Without
//! `read` a user sees nothing of the file: it answers as if it did not exist.

use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::error::{ErrorCode, ProtocolError};
use crate::ids::{CommentId, FileId, UserId};
use crate::role::Permission;

/// Conversations one file may be posted into: a member's access check reads them all (one
/// Query, one BatchGetItem of 100 memberships).
pub const MAX_FILE_GRANTS: usize = 100;

/// The seed's share permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilePermissions {
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub comment: bool,
    #[serde(default)]
    pub edit: bool,
    #[serde(default)]
    pub download: bool,
}

impl FilePermissions {
    pub const ALL: FilePermissions = FilePermissions {
        read: true,
        comment: true,
        edit: true,
        download: true,
    };
    pub const NONE: FilePermissions = FilePermissions {
        read: false,
        comment: false,
        edit: false,
        download: false,
    };

    /// As granted: any of comment / edit / download implies read.
    pub fn normalized(self) -> Self {
        Self {
            read: self.read || self.comment || self.edit || self.download,
            ..self
        }
    }

    pub fn is_none(self) -> bool {
        self.normalized() == Self::NONE
    }
}

/// `read,comment,edit,download`: the granted ones, in that order (`none` for none).
impl std::fmt::Display for FilePermissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let granted: Vec<&str> = [
            (self.read, "read"),
            (self.comment, "comment"),
            (self.edit, "edit"),
            (self.download, "download"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if granted.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&granted.join(","))
        }
    }
}

/// What `principal` may do with a file owned by `owner`, shared with them as `share`.
pub fn effective_permissions(
    principal: &Principal,
    owner: &UserId,
    share: Option<FilePermissions>,
) -> FilePermissions {
    if *owner == principal.user || principal.role.can(Permission::AccessAllFiles) {
        FilePermissions::ALL
    } else {
        share
            .map(FilePermissions::normalized)
            .unwrap_or(FilePermissions::NONE)
    }
}

/// The answer about a file the caller may not read, the same as about one that does not exist
/// (a file id of another tenant, or one not shared, says nothing about whether it is there).
pub fn file_not_found(file: &FileId) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::FileNotFound,
        format!("file \"{file}\" does not exist in your portal or is not shared with you"),
    )
}

/// Sharing and revoking: the file's owner, or OWNER/ADMIN.
pub fn may_share(principal: &Principal, owner: &UserId) -> bool {
    *owner == principal.user || principal.role.can(Permission::AccessAllFiles)
}

/// A file's metadata as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub file_id: FileId,
    pub name: String,
    pub size: u64,
    pub mime_type: String,
    pub owner: UserId,
    pub created_at: String,
    /// The file's comment channel (`client:{clientId}:file:{fileId}`).
    pub channel: String,
    /// An image's size and preview, once its upload was looked at (PNG, JPEG, GIF, WebP;
    /// the `image-preview` function). Absent before that, and for other files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
}

/// What the upload of an image gave: its size and a preview, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    pub preview: PreviewStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Why the image has no preview (`refused`): bad, hostile or too large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The types of file that get a preview when uploaded (`messaging-images` decodes exactly
/// these: its test holds the two lists together).
pub const PREVIEWED_MIME_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/gif",
    "image/webp",
];

/// A MIME type without its parameters, lowercased: `Image/PNG; q=1` is `image/png`.
pub fn mime_essence(mime_type: &str) -> String {
    mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a file of `mime_type` gets a preview (parameters and case ignored).
pub fn is_previewed(mime_type: &str) -> bool {
    PREVIEWED_MIME_TYPES.contains(&mime_essence(mime_type).as_str())
}

/// Whether an image has a preview (GET_DOWNLOAD_URL `variant: "preview"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviewStatus {
    Ready,
    Refused,
}

/// Where on the file a comment points: a page and a point on it, as fractions (0 to 1) of
/// the page's width and height so it survives zoom (the seed's PDF annotation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CommentPosition {
    pub page: u32,
    pub x: f64,
    pub y: f64,
}

impl CommentPosition {
    pub fn is_valid(&self) -> bool {
        self.page >= 1 && (0.0..=1.0).contains(&self.x) && (0.0..=1.0).contains(&self.y)
    }
}

/// A comment on a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentView {
    pub file_id: FileId,
    pub comment_id: CommentId,
    pub author: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<CommentPosition>,
    /// Set on a reply: the comment it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_comment_id: Option<CommentId>,
    pub timestamp: String,
}

/// One file a user can see, with what they may do with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    #[serde(flatten)]
    pub file: FileView,
    pub permissions: FilePermissions,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;
    use crate::role::Role;

    fn who(user: &str, role: Role) -> Principal {
        Principal {
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse(user).unwrap(),
            role,
            name: None,
        }
    }

    #[test]
    fn owners_and_staff_may_do_everything_others_what_was_shared() {
        let owner = UserId::parse("olga").unwrap();
        let comment_only = FilePermissions {
            comment: true,
            ..FilePermissions::NONE
        };
        assert_eq!(
            effective_permissions(&who("olga", Role::User), &owner, None),
            FilePermissions::ALL
        );
        assert_eq!(
            effective_permissions(&who("adam", Role::Admin), &owner, None),
            FilePermissions::ALL
        );
        assert_eq!(
            effective_permissions(&who("bob", Role::User), &owner, None),
            FilePermissions::NONE
        );
        let bob = effective_permissions(&who("bob", Role::User), &owner, Some(comment_only));
        assert!(
            bob.read && bob.comment && !bob.edit && !bob.download,
            "comment implies read"
        );
        assert!(may_share(&who("olga", Role::User), &owner));
        assert!(may_share(&who("adam", Role::Admin), &owner));
        assert!(!may_share(&who("bob", Role::User), &owner));
        assert!(FilePermissions::NONE.is_none());
    }

    #[test]
    fn positions_are_fractions_of_a_page() {
        assert!(CommentPosition {
            page: 1,
            x: 0.5,
            y: 1.0
        }
        .is_valid());
        assert!(!CommentPosition {
            page: 0,
            x: 0.5,
            y: 0.5
        }
        .is_valid());
        assert!(!CommentPosition {
            page: 2,
            x: 1.5,
            y: 0.5
        }
        .is_valid());
        assert!(!CommentPosition {
            page: 2,
            x: f64::NAN,
            y: 0.5
        }
        .is_valid());
    }
}
