//! CHAT_MESSAGE: check membership, store as the conversation's next `seq` (at most once per
//! client message id), post it to its recipients (the first `DIRECT_FANOUT` here, the rest
//! through the broadcast queue), acknowledge.
//!
//! Posting here saves a queue hop (three SQS FIFO requests and a broadcast invocation per
//! message, about $1.75 of a million messages' $5) at a price in order: two members sending at
//! the same instant are two route invocations posting at once, so their messages may reach a
//! third member in either order. Every message carries its `seq`; clients place messages by
//! it (docs/protocol.md, "Order and delivery"). `DIRECT_FANOUT = 0` queues every message and
//! keeps transport order per conversation.

use messaging_aws::{BroadcastJob, NewMessage, NotifySpec, Sent};
use messaging_core::files::{effective_permissions, file_not_found, may_share, MAX_FILE_GRANTS};
use messaging_core::notify::mentioned_names;
use messaging_core::protocol::{
    Attachment, ChatMessage, ContentKind, Handle, MessageContent, MessageView, Reply, ServerFrame,
};
use messaging_core::templates::{preview, NotificationData};
use messaging_core::time::now_millis;
use messaging_core::{ConversationId, ErrorCode, ProtocolError};
use tracing::{error, info, warn};

use super::RouteService;
use crate::broadcast::{self, Fanout, JobError};
use crate::metrics::{self, Metric};
use crate::outbox;
use crate::websocket::Call;

/// Posting here starts no post after this long (the function's timeout is 10 s); the
/// recipients left go to the broadcast queue as a continuation.
const DIRECT_BUDGET_MILLIS: i64 = 3_000;

/// A duplicate send (its sender never saw the first ACK) delivers the message again while the
/// first may not have reached everyone, up to 4 minutes after it: the first send may have died
/// between storing and posting. Queued, SQS FIFO drops the second as a duplicate of the first
/// (its deduplication window is 5 minutes); posted here, recipients of the first get it twice
/// and keep one (a message is its `seq`). Later, members see it by reading history.
const REQUEUE_DUPLICATE_WITHIN_MILLIS: i64 = 4 * 60 * 1000;

impl Handle<ChatMessage> for Call<'_, RouteService> {
    async fn handle(&self, chat: ChatMessage) -> Reply {
        send(self, chat).await
    }
}

async fn send(call: &Call<'_, RouteService>, chat: ChatMessage) -> Reply {
    let (service, p) = (call.service, call.principal());
    let conversation = chat.target.resolve(&p.tenant)?;
    call.require_member(&conversation).await?;
    // Boxed, like the delivery below: these futures would otherwise be inlined into every frame's.
    let attachments = Box::pin(attachable(call, &conversation, &chat)).await?;
    let new = NewMessage {
        tenant: p.tenant.clone(),
        conversation: conversation.clone(),
        sender: p.user.clone(),
        sender_name: p.name.clone(),
        content: MessageContent {
            text: chat.content.text.clone(),
            kind: chat.content.kind,
            attachments,
        },
        client_message_id: chat.client_message_id.clone(),
        parent_seq: chat.parent_seq,
        now: now_millis(),
    };
    let sent = service.table.send_message(&new).await?;
    let mut title = None;
    let (message, frame, duplicate) = match sent {
        Sent::ParentNotFound => {
            return Err(ProtocolError::new(
                ErrorCode::MessageNotFound,
                format!(
                    "message {} of conversation \"{conversation}\" cannot take replies (it does not exist, was deleted, or is itself a reply)",
                    chat.parent_seq.unwrap_or_default()
                ),
            ))
        }
        Sent::Stored {
            message,
            thread_count,
            conversation_title,
        } => {
            title = conversation_title;
            let frame = fan_out_frame(&message, thread_count);
            (message, frame, false)
        }
        Sent::Duplicate(first) => {
            info!(seq = first.seq, "duplicate send; nothing stored");
            let age = new.now - message_time(&first);
            if age > REQUEUE_DUPLICATE_WITHIN_MILLIS {
                // The first copy may have died before granting its files: grant them now.
                Box::pin(grant(call, &conversation, &chat, first.seq, new.now)).await?;
                return Ok(Some(call.ack().message(&first).duplicate(true).into()));
            }
            // The first send may have been stored without being delivered: deliver it again
            // (queued: under the same deduplication id, which SQS drops if it was).
            let frame = fan_out_frame(&first, None);
            (first, frame, true)
        }
    };

    // The files become readable by the members before anyone is told of the message.
    Box::pin(grant(call, &conversation, &chat, message.seq, new.now)).await?;

    let mut job =
        outbox::message(&p.tenant, &message, &frame, new.now).excluding(&call.caller.connection_id);
    if !duplicate {
        job.notify = Some(NotifySpec {
            sender: p.user.clone(),
            data: NotificationData {
                conversation_id: Some(conversation.to_string()),
                conversation_title: title,
                seq: Some(message.seq),
                sender_name: Some(p.name.clone().unwrap_or_else(|| p.user.to_string())),
                message_preview: Some(preview(&message.content.text)),
                ..Default::default()
            },
            mentioned: mentioned_names(&message.content.text),
        });
    }
    let how = match deliver(service, &job).await {
        Ok(how) => how,
        Err(e) => {
            error!(error = %e, seq = message.seq, "delivery failed; the message is stored but not delivered live");
            let resend = if message.client_message_id.is_some() {
                "send the same frame again (same clientMessageId) to deliver it; it will not be stored twice"
            } else {
                "members see it when they load history; send with a clientMessageId to make resending safe"
            };
            return Err(ProtocolError::new(
                ErrorCode::Unavailable,
                format!(
                    "message stored as seq {} but not delivered live: {resend}",
                    message.seq
                ),
            ));
        }
    };
    info!(conversation = %conversation, seq = message.seq, duplicate, how, "message sent");
    if !duplicate {
        metrics::emit(&p.tenant, &[(Metric::Messages, 1.0)]);
    }
    Ok(Some(
        call.ack().message(&message).duplicate(duplicate).into(),
    ))
}

/// The files a `file` or `image` message carries, as stored now (empty for `text`). Each must
/// be one the sender may share (its owner, or an OWNER/ADMIN): a file only shared with them
/// cannot be passed on to a conversation. One they cannot read at all answers as if it did
/// not exist, as everywhere. An `image` carries images only. A file already posted into
/// [`MAX_FILE_GRANTS`] other conversations is refused.
async fn attachable(
    call: &Call<'_, RouteService>,
    conversation: &ConversationId,
    chat: &ChatMessage,
) -> Result<Vec<Attachment>, ProtocolError> {
    let (table, p) = (&call.service.table, call.principal());
    let mut attachments = Vec::with_capacity(chat.content.attachments.len());
    for wanted in &chat.content.attachments {
        let file = &wanted.file_id;
        let stored = table
            .file(&p.tenant, file)
            .await?
            .ok_or_else(|| file_not_found(file))?;
        if !may_share(p, &stored.view.owner) {
            let share = table.share(&p.tenant, file, &p.user).await?;
            let readable = effective_permissions(p, &stored.view.owner, share).read
                || table
                    .granted_through_conversations(&p.tenant, file, &p.user)
                    .await?
                    .read;
            if !readable {
                return Err(file_not_found(file));
            }
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                format!(
                    "file \"{file}\" was shared with you; only its owner or an OWNER/ADMIN may post it into a conversation"
                ),
            ));
        }
        if chat.content.kind == ContentKind::Image && !stored.view.mime_type.starts_with("image/") {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                format!(
                    "an image message carries images: file \"{file}\" is {}; post it as content.type \"file\"",
                    stored.view.mime_type
                ),
            ));
        }
        let grants = table.grants_of(&p.tenant, file).await?;
        if grants.len() >= MAX_FILE_GRANTS && !grants.iter().any(|(c, _)| c == conversation) {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                format!(
                    "file \"{file}\" was posted into {MAX_FILE_GRANTS} conversations already: share it with people instead (SHARE_FILE)"
                ),
            ));
        }
        attachments.push(Attachment::of(&stored.view));
    }
    Ok(attachments)
}

/// Lets the conversation's members read (and, when the poster allowed it, download) the files
/// of the message stored as `seq`. Idempotent: a resend of the frame grants again.
async fn grant(
    call: &Call<'_, RouteService>,
    conversation: &ConversationId,
    chat: &ChatMessage,
    seq: u64,
    now: i64,
) -> Result<(), ProtocolError> {
    let p = call.principal();
    for attachment in &chat.content.attachments {
        let granted = call
            .service
            .table
            .grant_to_conversation(
                &p.tenant,
                &attachment.file_id,
                conversation,
                attachment.download,
                &p.user,
                now,
            )
            .await;
        if let Err(e) = granted {
            error!(error = %e, seq, file = %attachment.file_id, "file not granted to the conversation");
            return Err(ProtocolError::new(
                ErrorCode::Unavailable,
                format!(
                    "message stored as seq {seq} but its files are not yet readable by the conversation: send the same frame again (same clientMessageId)"
                ),
            ));
        }
    }
    Ok(())
}

/// Hands a message's event to its recipients: the first `direct_fanout` subscribers are posted
/// here; the rest (a next page), any recipient whose post failed for a passing reason (a
/// retry) and any not reached within [`DIRECT_BUDGET_MILLIS`] (a continuation) go through the
/// broadcast queue, as the broadcast function's own runs do. The whole job is queued instead
/// when `direct_fanout` is 0 or the recipients cannot be read here. `Err`: some recipients were
/// neither reached nor queued (the caller is told to resend; a resend delivers it again).
async fn deliver(service: &RouteService, job: &BroadcastJob) -> Result<&'static str, String> {
    let queue_all = || async {
        service
            .queue
            .send(job)
            .await
            .map(|()| "queued")
            .map_err(|e| e.to_string())
    };
    if service.direct_fanout == 0 {
        return queue_all().await;
    }
    let fanout = Fanout {
        table: &service.table,
        api: &service.api,
        queue: &service.queue,
        concurrency: service.fanout_concurrency,
        per_run: service.direct_fanout,
        // One read: its next page is queued before its first post, so a route that cannot
        // queue it has posted nothing and the client's resend reaches everyone once.
        first_read: service.direct_fanout,
    };
    // Boxed: the delivery's future is as large as a whole broadcast run, and would otherwise
    // be inlined into every frame's future (a debug build overflows a test thread's stack).
    let delivery = Box::pin(broadcast::deliver(
        &fanout,
        job,
        Some(now_millis() + DIRECT_BUDGET_MILLIS),
    ));
    match delivery.await {
        Ok(report) if report.next_page || report.requeued > 0 || report.continued > 0 => {
            Ok("posted in part, the rest queued")
        }
        Ok(_) => Ok("posted"),
        Err(JobError::Recipients(e)) => {
            warn!(error = %e, "recipients not read here; the broadcast function reads them");
            queue_all().await
        }
        Err(e) => Err(e.to_string()),
    }
}

/// NEW_MESSAGE, or THREAD_REPLY for a reply (with the parent's new count).
fn fan_out_frame(message: &MessageView, thread_count: Option<u32>) -> ServerFrame {
    match (message.parent_seq, thread_count) {
        (Some(_), Some(thread_count)) => ServerFrame::ThreadReply {
            data: message.clone(),
            thread_count,
        },
        _ => ServerFrame::NewMessage {
            data: message.clone(),
        },
    }
}

fn message_time(message: &MessageView) -> i64 {
    messaging_core::time::parse_rfc3339_millis(&message.timestamp).unwrap_or(0)
}
