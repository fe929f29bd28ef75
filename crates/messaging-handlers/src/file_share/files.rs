//! REGISTER_FILE, SHARE_FILE, REVOKE_FILE_SHARE, LIST_FILES, GET_FILE, GET_DOWNLOAD_URL and
//! GET_UPLOAD_URL: a file's metadata, who may do what with it, and presigned URLs.

use tracing::info;

use messaging_aws::{preview_object_key, AwsError, MessageGroup, NewNotification};
use messaging_core::audit::AuditAction;
use messaging_core::files::{
    is_previewed, may_share, FileEntry, FilePermissions, FileView, PreviewStatus,
};
use messaging_core::notify::NotificationKind;
use messaging_core::protocol::{
    fitting, DownloadVariant, GetDownloadUrl, GetFile, GetUploadUrl, Handle, ListFiles,
    RegisterFile, Reply, RevokeFileShare, ServerFrame, ShareFile, MAX_LIST_BYTES,
};
use messaging_core::templates::NotificationData;
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ErrorCode, FileId, Permission, ProtocolError};

use super::{forbidden, FileShareService};
use crate::websocket::Call;

/// A fresh file id, time-ordered (32 hex digits).
fn new_file_id() -> FileId {
    FileId::parse(uuid::Uuid::now_v7().simple().to_string())
        .unwrap_or_else(|_| unreachable!("32 hex digits"))
}

/// Registers the file's metadata (the caller owns it) and answers with a presigned upload URL.
impl Handle<RegisterFile> for Call<'_, FileShareService> {
    async fn handle(&self, file: RegisterFile) -> Reply {
        let p = self.principal();
        let file_id = file.file_id.unwrap_or_else(new_file_id);
        let view = FileView {
            channel: p.tenant.file_channel(&file_id).to_string(),
            file_id: file_id.clone(),
            name: file.name,
            size: file.size,
            mime_type: file.mime_type,
            owner: p.user.clone(),
            created_at: rfc3339_millis(now_millis()),
            image: None,
        };
        let stored = match self.service.table.register_file(&p.tenant, &view).await {
            Ok(stored) => stored,
            Err(AwsError::ConditionFailed(_)) => {
                return Err(ProtocolError::new(
                    ErrorCode::FileExists,
                    format!("file \"{file_id}\" already exists; register it under another id"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let upload = self
            .service
            .storage
            .upload_url(&stored.s3_key, &view.mime_type, view.size)
            .await?;
        info!(file = %file_id, size = view.size, "file registered");
        Ok(Some(ServerFrame::File {
            request_id: self.request_id(),
            file: view,
            permissions: FilePermissions::ALL,
            upload: Some(upload),
        }))
    }
}

/// Grants (or changes) a user's permissions; they hear FILE_SHARED live, or by email while
/// away.
impl Handle<ShareFile> for Call<'_, FileShareService> {
    async fn handle(&self, share: ShareFile) -> Reply {
        let p = self.principal();
        let (stored, _) = self.access(&share.file_id).await?;
        if !may_share(p, &stored.view.owner) {
            return Err(forbidden(
                "share this file (only its owner, an OWNER or an ADMIN may)",
            ));
        }
        if share.user_id == stored.view.owner {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "the owner already has every permission on their file",
            ));
        }
        if share.permissions.is_none() {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "grant at least one permission; REVOKE_FILE_SHARE removes a share",
            ));
        }
        let permissions = share.permissions.normalized();
        self.service
            .table
            .put_share(
                &p.tenant,
                &share.file_id,
                &share.user_id,
                permissions,
                &p.user,
            )
            .await?;
        self.audit(AuditAction::FileShared, |e| {
            e.file(&share.file_id)
                .user(&share.user_id)
                .detail(&permissions.to_string())
        })
        .await;
        let online = self.is_online(&share.user_id).await;
        if online {
            let frame = ServerFrame::FileShared {
                file: stored.view.clone(),
                shared_by: p.user.clone(),
                permissions,
            };
            let group = MessageGroup::File(share.file_id.clone());
            self.tell(group, vec![share.user_id.clone()], &frame).await;
        } else {
            self.notify_away(NewNotification {
                id: NewNotification::fresh_id(),
                created_at: now_millis(),
                tenant: p.tenant.clone(),
                user: share.user_id.clone(),
                kind: NotificationKind::FileShared,
                data: NotificationData {
                    sender_name: Some(p.name.clone().unwrap_or_else(|| p.user.to_string())),
                    file_id: Some(share.file_id.to_string()),
                    file_name: Some(stored.view.name.clone()),
                    ..Default::default()
                },
                actor: Some(p.user.clone()),
                pending: true,
            })
            .await;
        }
        info!(file = %share.file_id, with = %share.user_id, online, "file shared");
        Ok(Some(self.ack().file(share.file_id).into()))
    }
}

impl Handle<RevokeFileShare> for Call<'_, FileShareService> {
    async fn handle(&self, revoke: RevokeFileShare) -> Reply {
        let p = self.principal();
        let (stored, _) = self.access(&revoke.file_id).await?;
        if !may_share(p, &stored.view.owner) {
            return Err(forbidden(
                "revoke shares of this file (only its owner, an OWNER or an ADMIN may)",
            ));
        }
        if revoke.user_id == stored.view.owner {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "the owner's access to their file cannot be revoked",
            ));
        }
        let revoked = self
            .service
            .table
            .revoke_share(&p.tenant, &revoke.file_id, &revoke.user_id)
            .await?;
        if !revoked {
            return Err(ProtocolError::new(
                ErrorCode::ShareNotFound,
                format!(
                    "file \"{}\" is not shared with \"{}\"",
                    revoke.file_id, revoke.user_id
                ),
            ));
        }
        self.audit(AuditAction::FileShareRevoked, |e| {
            e.file(&revoke.file_id).user(&revoke.user_id)
        })
        .await;
        let frame = ServerFrame::FileShareRevoked {
            file_id: revoke.file_id.clone(),
            user_id: revoke.user_id.clone(),
        };
        let group = MessageGroup::File(revoke.file_id.clone());
        self.tell(group, vec![revoke.user_id], &frame).await;
        Ok(Some(self.ack().file(revoke.file_id).into()))
    }
}

/// The files the caller can read, newest first, a page at a time: all of the tenant's for
/// OWNER / ADMIN, else those shared with them (their own included).
impl Handle<ListFiles> for Call<'_, FileShareService> {
    async fn handle(&self, list: ListFiles) -> Reply {
        let (p, table) = (self.principal(), &self.service.table);
        let scope = "files";
        let after = match &list.cursor {
            Some(cursor) => {
                let position = self
                    .service
                    .cursors
                    .open(cursor, &p.tenant, &p.user, scope)?;
                let (at, id) = position.split_once('|').ok_or_else(bad_position)?;
                Some((
                    at.to_owned(),
                    FileId::parse(id).map_err(|_| bad_position())?,
                ))
            }
            None => None,
        };
        let mut files: Vec<FileEntry> = if p.role.can(Permission::AccessAllFiles) {
            table
                .all_files(&p.tenant)
                .await?
                .into_iter()
                .map(|file| FileEntry {
                    file,
                    permissions: FilePermissions::ALL,
                })
                .collect()
        } else {
            table.files_shared_with(&p.tenant, &p.user).await?
        };
        // Newest first; the id breaks ties so positions are total.
        let position = |e: &FileEntry| (e.file.created_at.clone(), e.file.file_id.clone());
        files.sort_by_key(|e| std::cmp::Reverse(position(e)));
        files.retain(|e| after.as_ref().is_none_or(|after| position(e) < *after));
        let limit = usize::from(list.limit).min(fitting(&files, MAX_LIST_BYTES));
        let next = (files.len() > limit).then(|| position(&files[limit - 1]));
        files.truncate(limit);
        Ok(Some(ServerFrame::Files {
            request_id: self.request_id(),
            files,
            next_cursor: next.map(|(at, id)| {
                self.service
                    .cursors
                    .issue(&p.tenant, &p.user, scope, &format!("{at}|{id}"))
            }),
        }))
    }
}

fn bad_position() -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidCursor, "cursor refused: bad position")
}

impl Handle<GetFile> for Call<'_, FileShareService> {
    async fn handle(&self, get: GetFile) -> Reply {
        let (stored, permissions) = self.access(&get.file.file_id).await?;
        Ok(Some(ServerFrame::File {
            request_id: self.request_id(),
            file: stored.view,
            permissions,
            upload: None,
        }))
    }
}

/// A presigned download; needs `download`.
impl Handle<GetDownloadUrl> for Call<'_, FileShareService> {
    async fn handle(&self, get: GetDownloadUrl) -> Reply {
        let file = get.file.file_id;
        let (stored, permissions) = self.access(&file).await?;
        let url = match get.variant {
            DownloadVariant::Original => {
                if !permissions.download {
                    return Err(forbidden("download this file"));
                }
                self.service
                    .storage
                    .download_url(&stored.s3_key, &stored.view.name)
                    .await?
            }
            // A preview is for looking at: whoever may read the file (access checked it).
            DownloadVariant::Preview => {
                let image = stored.view.image.as_ref();
                match image.map(|i| (i.preview, i.reason.as_deref())) {
                    Some((PreviewStatus::Ready, _)) => {
                        self.service
                            .storage
                            .preview_url(&preview_object_key(&self.principal().tenant, &file))
                            .await?
                    }
                    Some((PreviewStatus::Refused, reason)) => {
                        return Err(ProtocolError::new(
                            ErrorCode::PreviewNotAvailable,
                            format!(
                                "file \"{file}\" has no preview: {}",
                                reason.unwrap_or("it could not be made")
                            ),
                        ))
                    }
                    None if is_previewed(&stored.view.mime_type) => {
                        return Err(ProtocolError::new(
                            ErrorCode::PreviewNotAvailable,
                            format!("file \"{file}\" has no preview yet: it is made a second or two after the upload lands; ask again shortly"),
                        ))
                    }
                    None => {
                        return Err(ProtocolError::new(
                            ErrorCode::PreviewNotAvailable,
                            format!("file \"{file}\" ({}) gets no preview: PNG, JPEG, GIF and WebP images do", stored.view.mime_type),
                        ))
                    }
                }
            }
        };
        Ok(Some(ServerFrame::FileUrl {
            request_id: self.request_id(),
            file_id: file,
            url,
        }))
    }
}

/// A presigned upload of a new version; needs `edit`. The URL signs the version's exact size
/// (the registered one, or the `size` named, which becomes the file's size).
impl Handle<GetUploadUrl> for Call<'_, FileShareService> {
    async fn handle(&self, get: GetUploadUrl) -> Reply {
        let file = get.file.file_id;
        let (stored, permissions) = self.access(&file).await?;
        if !permissions.edit {
            return Err(forbidden(
                "upload a new version of this file (it needs edit)",
            ));
        }
        let size = get.size.unwrap_or(stored.view.size);
        if size != stored.view.size
            && !self
                .service
                .table
                .set_file_size(&self.principal().tenant, &file, size)
                .await?
        {
            return Err(super::not_found(&file));
        }
        let url = self
            .service
            .storage
            .upload_url(&stored.s3_key, &stored.view.mime_type, size)
            .await?;
        Ok(Some(ServerFrame::FileUrl {
            request_id: self.request_id(),
            file_id: file,
            url,
        }))
    }
}
