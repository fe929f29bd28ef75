//! FILE_COMMENT and LIST_FILE_COMMENTS: positioned, threaded comments on a file, sent live to
//! everyone who may read it.

use tracing::info;

use messaging_aws::{MessageGroup, NewNotification};
use messaging_core::files::CommentView;
use messaging_core::notify::NotificationKind;
use messaging_core::protocol::{
    fitting, FileComment, Handle, ListFileComments, Reply, ServerFrame, MAX_LIST_BYTES,
};
use messaging_core::templates::{preview, NotificationData};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{CommentId, ErrorCode, ProtocolError, UserId};

use super::{forbidden, FileShareService};
use crate::websocket::Call;

/// Stores a comment and sends it to everyone who may read the file: the users it is shared
/// with (its owner included) and the tenant's OWNERs and ADMINs.
impl Handle<FileComment> for Call<'_, FileShareService> {
    async fn handle(&self, comment: FileComment) -> Reply {
        let (p, table) = (self.principal(), &self.service.table);
        let (stored, permissions) = self.access(&comment.file_id).await?;
        if !permissions.comment {
            return Err(forbidden("comment on this file"));
        }
        if let Some(parent) = &comment.parent_comment_id {
            if !table
                .comment_exists(&p.tenant, &comment.file_id, parent)
                .await?
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
        table.put_comment(&p.tenant, &view).await?;
        let mut readers: Vec<UserId> = table
            .shares_of(&p.tenant, &comment.file_id)
            .await?
            .into_iter()
            .filter(|(_, permissions)| permissions.normalized().read)
            .map(|(user, _)| user)
            .collect();
        readers.push(stored.view.owner.clone());
        readers.extend(table.staff(&p.tenant).await?);
        readers.sort();
        readers.dedup();
        // The file's owner hears about comments on their file while away.
        if stored.view.owner != p.user && !self.is_online(&stored.view.owner).await {
            self.notify_away(NewNotification {
                id: NewNotification::fresh_id(),
                created_at: now_millis(),
                tenant: p.tenant.clone(),
                user: stored.view.owner.clone(),
                kind: NotificationKind::FileComment,
                data: NotificationData {
                    sender_name: Some(p.name.clone().unwrap_or_else(|| p.user.to_string())),
                    file_id: Some(comment.file_id.to_string()),
                    file_name: Some(stored.view.name.clone()),
                    message_preview: Some(preview(&view.content)),
                    ..Default::default()
                },
                actor: Some(p.user.clone()),
                pending: true,
            })
            .await;
        }
        let frame = ServerFrame::FileComment {
            comment: view.clone(),
        };
        self.tell(MessageGroup::File(comment.file_id.clone()), readers, &frame)
            .await;
        info!(file = %view.file_id, comment = %view.comment_id, "file comment stored");
        Ok(Some(
            self.ack()
                .file(view.file_id)
                .comment(view.comment_id)
                .timestamp(view.timestamp)
                .into(),
        ))
    }
}

/// A file's comments, oldest first, through signed cursors.
impl Handle<ListFileComments> for Call<'_, FileShareService> {
    async fn handle(&self, list: ListFileComments) -> Reply {
        let (p, service) = (self.principal(), self.service);
        self.access(&list.file_id).await?;
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
        let (mut comments, mut next) = service
            .table
            .comments_page(
                &p.tenant,
                &list.file_id,
                after.as_ref(),
                usize::from(list.limit),
            )
            .await?;
        let kept = fitting(&comments, MAX_LIST_BYTES);
        if kept < comments.len() {
            comments.truncate(kept);
            next = comments.last().map(|c| c.comment_id.clone());
        }
        Ok(Some(ServerFrame::FileComments {
            request_id: self.request_id(),
            file_id: list.file_id,
            comments,
            next_cursor: next.map(|c| {
                service
                    .cursors
                    .issue(&p.tenant, &p.user, &scope, c.as_str())
            }),
        }))
    }
}
