//! CHAT_MESSAGE: check membership, store as the conversation's next `seq` (at most once per
//! client message id), hand to the broadcast queue, acknowledge.

use messaging_aws::{NewMessage, NotifySpec, Sent};
use messaging_core::notify::mentioned_names;
use messaging_core::protocol::{
    ChatMessage, Handle, MessageContent, MessageView, Reply, ServerFrame,
};
use messaging_core::templates::{preview, NotificationData};
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, ProtocolError};
use tracing::{error, info};

use super::RouteService;
use crate::metrics::{self, Metric};
use crate::outbox;
use crate::websocket::Call;

/// A duplicate send re-queues its fan-out only while SQS FIFO would still drop it as a
/// duplicate of the first (its deduplication window is 5 minutes): delivered at most once.
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
    let new = NewMessage {
        tenant: p.tenant.clone(),
        conversation: conversation.clone(),
        sender: p.user.clone(),
        sender_name: p.name.clone(),
        content: MessageContent {
            text: chat.content.text,
            kind: chat.content.kind,
            attachments: Vec::new(),
        },
        client_message_id: chat.client_message_id,
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
                return Ok(Some(call.ack().message(&first).duplicate(true).into()));
            }
            // The first send may have been stored without being queued: queue it again
            // under the same deduplication id, which SQS drops if it was.
            let frame = fan_out_frame(&first, None);
            (first, frame, true)
        }
    };

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
    if let Err(e) = service.queue.send(&job).await {
        error!(error = %e, seq = message.seq, "enqueue failed; the message is stored but not delivered live");
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
    info!(conversation = %conversation, seq = message.seq, duplicate, "message queued");
    if !duplicate {
        metrics::emit(&p.tenant, &[(Metric::Messages, 1.0)]);
    }
    Ok(Some(
        call.ack().message(&message).duplicate(duplicate).into(),
    ))
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
