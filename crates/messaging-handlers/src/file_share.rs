//! The `file-share` function: file metadata, shares (the seed's read / comment / edit /
//! download), comments with page positions, and presigned S3 URLs. The WebSocket API routes
//! the frames of [`FILE_TYPES`](messaging_core::protocol::FILE_TYPES) here by `type`.
//!
//! Access follows `messaging_core::files`: a user who may not read a file is told it does not
//! exist, so file ids cannot be probed.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{info, warn};

use messaging_core::cursor::CursorSigner;
use messaging_core::files::{self, CommentView, FileEntry, FilePermissions, FileView};
use messaging_core::notify::NotificationKind;
use messaging_core::protocol::{
    parse_file_inbound, request_id_of, CommentOnFile, FileCommand, ListFileComments,
    PresenceStatus, RegisterFile, RevokeShare, ServerFrame, ShareFile,
};
use messaging_core::templates::NotificationData;
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{
    ChannelKind, CommentId, ConversationId, ErrorCode, FileId, Permission, ProtocolError, UserId,
};
use messaging_store::{
    new_event_id, BroadcastJob, BroadcastQueue, ConnectionRecord, FileStorage, MessagingTable,
    NewNotification, StoreError, StoredFile,
};

use crate::config::{self, ConfigError};
use crate::route::{registered_caller, store_failure};
use crate::{event, response};

pub struct FileShareService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
    pub storage: FileStorage,
    pub cursors: CursorSigner,
}

impl FileShareService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`, `FILES_BUCKET`,
    /// `CURSOR_SECRET`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            storage: FileStorage::new(sdk, config::required("FILES_BUCKET")?),
            cursors: config::cursor_signer()?,
        })
    }
}

type Reply = Result<ServerFrame, ProtocolError>;

#[tracing::instrument(skip_all, fields(connection_id, tenant, user, action))]
pub async fn handle(
    service: &FileShareService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(connection) = event::connection_id(request) else {
        return response::status(400);
    };
    let body = request.body.as_deref().unwrap_or_default();
    let inbound = match parse_file_inbound(body) {
        Ok(inbound) => inbound,
        Err(e) => return response::error(request_id_of(body), &e),
    };
    let request_id = inbound.request_id;
    tracing::Span::current().record("action", inbound.command.type_name());
    let caller = match registered_caller(&service.table, &connection).await {
        Ok(caller) => caller,
        Err(e) => return response::error(request_id, &e),
    };
    let span = tracing::Span::current();
    span.record("tenant", caller.principal.tenant.as_str());
    span.record("user", caller.principal.user.as_str());
    let r = request_id.clone();
    let reply = match inbound.command {
        FileCommand::RegisterFile(file) => register(service, &caller, file, r).await,
        FileCommand::ShareFile(share) => share_file(service, &caller, share, r).await,
        FileCommand::RevokeShare(revoke) => revoke_share(service, &caller, revoke, r).await,
        FileCommand::ListFiles => list(service, &caller, r).await,
        FileCommand::GetFile(file) => get(service, &caller, &file.file_id, r).await,
        FileCommand::Comment(comment) => comment_on(service, &caller, comment).await.map(|c| {
            let mut ack = ServerFrame::file_ack(r, "FILE_COMMENT", c.file_id);
            if let ServerFrame::Ack { timestamp, .. } = &mut ack {
                *timestamp = Some(c.timestamp);
            }
            ack
        }),
        FileCommand::ListComments(list) => comments(service, &caller, list, r).await,
        FileCommand::GetDownloadUrl(file) => url(service, &caller, &file.file_id, false, r).await,
        FileCommand::GetUploadUrl(file) => url(service, &caller, &file.file_id, true, r).await,
    };
    match reply {
        Ok(frame) => response::frame(200, &frame),
        Err(e) => {
            info!(code = %e.code, "file request refused");
            response::error(request_id, &e)
        }
    }
}

fn not_found(file: &FileId) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::FileNotFound,
        format!("file \"{file}\" does not exist in your portal or is not shared with you"),
    )
}

fn forbidden(what: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Forbidden,
        format!("you may not {what}: ask the file's owner to share it with that permission"),
    )
}

/// The file and the caller's permissions; FILE_NOT_FOUND unless they may at least read it.
async fn access(
    service: &FileShareService,
    caller: &ConnectionRecord,
    file: &FileId,
) -> Result<(StoredFile, FilePermissions), ProtocolError> {
    let p = &caller.principal;
    let stored = service
        .table
        .file(&p.tenant, file)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| not_found(file))?;
    let mut permissions = files::effective_permissions(p, &stored.view.owner, None);
    if !permissions.read {
        let share = service
            .table
            .share(&p.tenant, file, &p.user)
            .await
            .map_err(store_failure)?;
        permissions = files::effective_permissions(p, &stored.view.owner, share);
    }
    if !permissions.read {
        return Err(not_found(file));
    }
    Ok((stored, permissions))
}

/// The FIFO group of a file's events (conversation and file ids share one alphabet).
fn file_group(file: &FileId) -> ConversationId {
    ConversationId::parse(file.as_str()).unwrap_or_else(|_| unreachable!("same id alphabet"))
}

/// Whether `user` has a live connection and current presence (unknown counts as offline).
async fn is_online(
    service: &FileShareService,
    tenant: &messaging_core::TenantId,
    user: &UserId,
) -> bool {
    service
        .table
        .user(tenant, user)
        .await
        .ok()
        .flatten()
        .is_some_and(|u| u.presence_at(now_millis()) != PresenceStatus::Offline)
}

/// Sends `frame` to these users' live sockets (not the caller's own).
async fn tell(
    service: &FileShareService,
    caller: &ConnectionRecord,
    file: &FileId,
    users: Vec<UserId>,
    frame: &ServerFrame,
) {
    if users.is_empty() {
        return;
    }
    let mut job = BroadcastJob::new(
        new_event_id(),
        caller.principal.tenant.clone(),
        file_group(file),
        frame.to_json(),
    );
    job.users = Some(users);
    job.exclude = Some(caller.connection_id.clone());
    if let Err(e) = service.queue.send(&job).await {
        warn!(error = %e, file = %file, "file event not queued");
    }
}

async fn register(
    service: &FileShareService,
    caller: &ConnectionRecord,
    file: RegisterFile,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let file_id = match file.file_id {
        Some(id) => id,
        None => FileId::parse(uuid::Uuid::now_v7().simple().to_string())
            .unwrap_or_else(|_| unreachable!("32 hex digits")),
    };
    let view = FileView {
        channel: p
            .tenant
            .channel(ChannelKind::File, &file_group(&file_id))
            .to_string(),
        file_id: file_id.clone(),
        name: file.name,
        size: file.size,
        mime_type: file.mime_type,
        owner: p.user.clone(),
        created_at: rfc3339_millis(now_millis()),
    };
    let stored = match service.table.register_file(&p.tenant, &view).await {
        Ok(stored) => stored,
        Err(StoreError::ConditionFailed(_)) => {
            return Err(ProtocolError::new(
                ErrorCode::FileExists,
                format!("file \"{file_id}\" already exists; register it under another id"),
            ))
        }
        Err(e) => return Err(store_failure(e)),
    };
    let upload = service
        .storage
        .upload_url(&stored.s3_key, &view.mime_type)
        .await
        .map_err(store_failure)?;
    info!(file = %file_id, size = view.size, "file registered");
    Ok(ServerFrame::File {
        request_id,
        file: view,
        permissions: FilePermissions::ALL,
        upload: Some(upload),
    })
}

async fn share_file(
    service: &FileShareService,
    caller: &ConnectionRecord,
    share: ShareFile,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let (stored, _) = access(service, caller, &share.file_id).await?;
    if !files::may_share(p, &stored.view.owner) {
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
    service
        .table
        .put_share(
            &p.tenant,
            &share.file_id,
            &share.user_id,
            permissions,
            &p.user,
        )
        .await
        .map_err(store_failure)?;
    let online = is_online(service, &p.tenant, &share.user_id).await;
    if online {
        let frame = ServerFrame::FileShared {
            file: stored.view.clone(),
            shared_by: p.user.clone(),
            permissions,
        };
        tell(
            service,
            caller,
            &share.file_id,
            vec![share.user_id.clone()],
            &frame,
        )
        .await;
    } else {
        // Offline: an email, sent by the notification batch.
        let notification = NewNotification {
            tenant: p.tenant.clone(),
            user: share.user_id.clone(),
            kind: NotificationKind::FileShared,
            data: NotificationData {
                sender_name: Some(p.name.clone().unwrap_or_else(|| p.user.to_string())),
                file_id: Some(share.file_id.to_string()),
                file_name: Some(stored.view.name.clone()),
                ..Default::default()
            },
            pending: true,
        };
        if let Err(e) = service.table.put_notifications(&[notification]).await {
            warn!(error = %e, "file-shared notification not stored");
        }
    }
    info!(file = %share.file_id, with = %share.user_id, online, "file shared");
    Ok(ServerFrame::file_ack(
        request_id,
        "SHARE_FILE",
        share.file_id,
    ))
}

async fn revoke_share(
    service: &FileShareService,
    caller: &ConnectionRecord,
    revoke: RevokeShare,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let (stored, _) = access(service, caller, &revoke.file_id).await?;
    if !files::may_share(p, &stored.view.owner) {
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
    let revoked = service
        .table
        .revoke_share(&p.tenant, &revoke.file_id, &revoke.user_id)
        .await
        .map_err(store_failure)?;
    if !revoked {
        return Err(ProtocolError::new(
            ErrorCode::ShareNotFound,
            format!(
                "file \"{}\" is not shared with \"{}\"",
                revoke.file_id, revoke.user_id
            ),
        ));
    }
    let frame = ServerFrame::FileShareRevoked {
        file_id: revoke.file_id.clone(),
        user_id: revoke.user_id.clone(),
    };
    tell(
        service,
        caller,
        &revoke.file_id,
        vec![revoke.user_id.clone()],
        &frame,
    )
    .await;
    Ok(ServerFrame::file_ack(
        request_id,
        "REVOKE_FILE_SHARE",
        revoke.file_id,
    ))
}

async fn list(
    service: &FileShareService,
    caller: &ConnectionRecord,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let files = if p.role.can(Permission::AccessAllFiles) {
        // OWNER / ADMIN: every file of the tenant.
        service
            .table
            .all_files(&p.tenant)
            .await
            .map_err(store_failure)?
            .into_iter()
            .map(|file| FileEntry {
                file,
                permissions: FilePermissions::ALL,
            })
            .collect()
    } else {
        service
            .table
            .files_shared_with(&p.tenant, &p.user)
            .await
            .map_err(store_failure)?
    };
    Ok(ServerFrame::Files { request_id, files })
}

async fn get(
    service: &FileShareService,
    caller: &ConnectionRecord,
    file: &FileId,
    request_id: Option<String>,
) -> Reply {
    let (stored, permissions) = access(service, caller, file).await?;
    Ok(ServerFrame::File {
        request_id,
        file: stored.view,
        permissions,
        upload: None,
    })
}

/// Stores a comment and sends it to everyone who may read the file: the users it is shared
/// with (its owner included) and the tenant's OWNERs and ADMINs.
async fn comment_on(
    service: &FileShareService,
    caller: &ConnectionRecord,
    comment: CommentOnFile,
) -> Result<CommentView, ProtocolError> {
    let p = &caller.principal;
    let (stored, permissions) = access(service, caller, &comment.file_id).await?;
    if !permissions.comment {
        return Err(forbidden("comment on this file"));
    }
    if let Some(parent) = &comment.parent_comment_id {
        if !service
            .table
            .comment_exists(&p.tenant, &comment.file_id, parent)
            .await
            .map_err(store_failure)?
        {
            return Err(ProtocolError::new(
                ErrorCode::CommentNotFound,
                format!(
                    "file \"{}\" has no comment \"{parent}\" to reply to",
                    comment.file_id
                ),
            ));
        }
    }
    let view = CommentView {
        file_id: comment.file_id.clone(),
        comment_id: CommentId::parse(uuid::Uuid::now_v7().simple().to_string())
            .unwrap_or_else(|_| unreachable!("32 hex digits")),
        author: p.user.clone(),
        author_name: p.name.clone(),
        content: comment.content,
        position: comment.position,
        parent_comment_id: comment.parent_comment_id,
        timestamp: rfc3339_millis(now_millis()),
    };
    service
        .table
        .put_comment(&p.tenant, &view)
        .await
        .map_err(store_failure)?;
    let mut readers: Vec<UserId> = service
        .table
        .shares_of(&p.tenant, &comment.file_id)
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|(_, permissions)| permissions.normalized().read)
        .map(|(user, _)| user)
        .collect();
    readers.push(stored.view.owner.clone());
    readers.extend(
        service
            .table
            .staff(&p.tenant)
            .await
            .map_err(store_failure)?,
    );
    readers.sort();
    readers.dedup();
    // The file's owner hears about comments on their file while away.
    if stored.view.owner != p.user && !is_online(service, &p.tenant, &stored.view.owner).await {
        let notification = NewNotification {
            tenant: p.tenant.clone(),
            user: stored.view.owner.clone(),
            kind: NotificationKind::FileComment,
            data: NotificationData {
                sender_name: Some(p.name.clone().unwrap_or_else(|| p.user.to_string())),
                file_id: Some(comment.file_id.to_string()),
                file_name: Some(stored.view.name.clone()),
                message_preview: Some(messaging_core::templates::preview(&view.content)),
                ..Default::default()
            },
            pending: true,
        };
        if let Err(e) = service.table.put_notifications(&[notification]).await {
            warn!(error = %e, "file-comment notification not stored");
        }
    }
    let frame = ServerFrame::FileComment {
        comment: view.clone(),
    };
    tell(service, caller, &comment.file_id, readers, &frame).await;
    info!(file = %view.file_id, comment = %view.comment_id, "file comment stored");
    Ok(view)
}

async fn comments(
    service: &FileShareService,
    caller: &ConnectionRecord,
    list: ListFileComments,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    access(service, caller, &list.file_id).await?;
    let scope = format!("comments:{}", list.file_id);
    let after = match &list.cursor {
        Some(cursor) => {
            let position = service.cursors.open(cursor, &p.tenant, &p.user, &scope)?;
            Some(CommentId::parse(position).map_err(|_| {
                ProtocolError::new(ErrorCode::InvalidCursor, "cursor refused: bad position")
            })?)
        }
        None => None,
    };
    let (comments, next) = service
        .table
        .comments_page(
            &p.tenant,
            &list.file_id,
            after.as_ref(),
            usize::from(list.limit),
        )
        .await
        .map_err(store_failure)?;
    Ok(ServerFrame::FileComments {
        request_id,
        file_id: list.file_id,
        comments,
        next_cursor: next.map(|c| {
            service
                .cursors
                .issue(&p.tenant, &p.user, &scope, c.as_str())
        }),
    })
}

/// A presigned download (needs `download`) or upload (needs `edit`) URL.
async fn url(
    service: &FileShareService,
    caller: &ConnectionRecord,
    file: &FileId,
    upload: bool,
    request_id: Option<String>,
) -> Reply {
    let (stored, permissions) = access(service, caller, file).await?;
    let url = if upload {
        if !permissions.edit {
            return Err(forbidden(
                "upload a new version of this file (it needs edit)",
            ));
        }
        service
            .storage
            .upload_url(&stored.s3_key, &stored.view.mime_type)
            .await
    } else {
        if !permissions.download {
            return Err(forbidden("download this file"));
        }
        service
            .storage
            .download_url(&stored.s3_key, &stored.view.name)
            .await
    }
    .map_err(store_failure)?;
    Ok(ServerFrame::FileUrl {
        request_id,
        file_id: file.clone(),
        url,
    })
}
