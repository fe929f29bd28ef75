//! The `file-share` function: file metadata, shares (the seed's read / comment / edit /
//! download), comments with page positions, and presigned S3 URLs: every frame of
//! [`FileCommand`]'s table (the WebSocket API routes each of its types here). The frame's
//! journey is [`crate::websocket`]'s; the handlers are in `files` (REGISTER_FILE, SHARE_FILE,
//! REVOKE_FILE_SHARE, LIST_FILES, GET_FILE, GET_DOWNLOAD_URL, GET_UPLOAD_URL) and `comments`
//! (FILE_COMMENT, LIST_FILE_COMMENTS).
//!
//! Access follows `messaging_core::files`: a user who may not read a file is told it does not
//! exist, so file ids cannot be probed.

mod comments;
mod files;

use crate::throttle::Limiter;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::warn;

use messaging_aws::{BroadcastQueue, FileStorage, MessagingTable, NewNotification, StoredFile};
use messaging_core::files::{effective_permissions, FilePermissions};
use messaging_core::protocol::{FileCommand, PresenceStatus};
use messaging_core::signed::Signer;
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, FileId, ProtocolError, UserId};

use crate::config::{self, ConfigError};
use crate::websocket::{self, Call, Callers, FrameService};

pub struct FileShareService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
    pub storage: FileStorage,
    pub cursors: Signer,
    /// This sandbox's rate limiter (kept across invocations).
    pub limiter: Limiter,
    /// This sandbox's recent callers (kept across invocations).
    pub callers: Callers,
}

impl FileShareService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`, `FILES_BUCKET`,
    /// `CURSOR_SECRET`.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        // The secret's round trip first: the clients below are built while it is in flight.
        let cursors = config::start_signer(sdk);
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            storage: FileStorage::new(sdk, config::required("FILES_BUCKET")?),
            limiter: Limiter::new(config::rate_limits()?),
            callers: Callers::default(),
            cursors: cursors.await?,
        })
    }
}

impl FrameService for FileShareService {
    type Commands = FileCommand;

    fn table(&self) -> &MessagingTable {
        &self.table
    }

    fn queue(&self) -> &BroadcastQueue {
        &self.queue
    }

    fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    fn callers(&self) -> &Callers {
        &self.callers
    }
}

/// Handles one file frame.
pub async fn handle(
    service: &FileShareService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    websocket::handle(service, request).await
}

fn not_found(file: &FileId) -> ProtocolError {
    messaging_core::files::file_not_found(file)
}

fn forbidden(what: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Forbidden,
        format!("you may not {what}: ask the file's owner to share it with that permission"),
    )
}

impl Call<'_, FileShareService> {
    /// The file and the caller's permissions; FILE_NOT_FOUND unless they may at least read
    /// it.
    async fn access(&self, file: &FileId) -> Result<(StoredFile, FilePermissions), ProtocolError> {
        let (p, table) = (self.principal(), &self.service.table);
        let stored = table
            .file(&p.tenant, file)
            .await?
            .ok_or_else(|| not_found(file))?;
        let mut permissions = effective_permissions(p, &stored.view.owner, None);
        if !permissions.read {
            let share = table.share(&p.tenant, file, &p.user).await?;
            permissions = effective_permissions(p, &stored.view.owner, share);
        }
        if !permissions.download {
            // Posted into conversations: their members read it (and download it, if allowed).
            let granted = table
                .granted_through_conversations(&p.tenant, file, &p.user)
                .await?;
            permissions.read |= granted.read;
            permissions.download |= granted.download;
        }
        if !permissions.read {
            return Err(not_found(file));
        }
        Ok((stored, permissions))
    }

    /// Whether `user` has a live connection and current presence (unknown counts as offline).
    async fn is_online(&self, user: &UserId) -> bool {
        self.service
            .table
            .presence(&self.principal().tenant, user, now_millis())
            .await
            .is_ok_and(|status| status != PresenceStatus::Offline)
    }

    /// Stores a notification for a user who is away (sent by the notification batch).
    /// Best effort: the file action itself stands.
    async fn notify_away(&self, notification: NewNotification) {
        if let Err(e) = self.service.table.put_notifications(&[notification]).await {
            warn!(error = %e, "file notification not stored");
        }
    }
}
