//! CHAT_MESSAGE: check membership, store, hand to the broadcast queue, acknowledge.

use messaging_core::protocol::{ChatMessage, MessageContent, MessageView, ServerFrame};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ErrorCode, ProtocolError};
use messaging_store::{new_message_id, BroadcastJob, ConnectionRecord};
use tracing::{error, info};

use super::{require_member, store_failure, Reply, RouteService};

pub(super) async fn send(
    service: &RouteService,
    caller: &ConnectionRecord,
    chat: ChatMessage,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let conversation = chat.target.resolve(&p.tenant)?;
    require_member(service, caller, &conversation).await?;

    let message = MessageView {
        conversation_id: conversation.clone(),
        message_id: new_message_id(),
        sender_id: p.user.clone(),
        sender_name: p.name.clone(),
        content: MessageContent {
            text: chat.content.text,
            kind: chat.content.kind,
            attachments: Vec::new(),
        },
        timestamp: rfc3339_millis(now_millis()),
        edited: false,
        client_message_id: chat.client_message_id,
    };
    service
        .table
        .put_message(&p.tenant, &message)
        .await
        .map_err(store_failure)?;

    let mut job = BroadcastJob::new(
        message.message_id.to_string(),
        p.tenant.clone(),
        conversation.clone(),
        ServerFrame::NewMessage {
            data: message.clone(),
        }
        .to_json(),
    );
    job.exclude = Some(caller.connection_id.clone());
    if let Err(e) = service.queue.send(&job).await {
        // Undo the write so that sending again cannot leave two copies behind.
        error!(error = %e, message_id = %message.message_id, "enqueue failed; removing the stored message");
        if let Err(undo) = service
            .table
            .delete_message(&p.tenant, &conversation, &message.message_id)
            .await
        {
            error!(error = %undo, message_id = %message.message_id, "could not remove the undelivered message");
        }
        return Err(ProtocolError::new(
            ErrorCode::Unavailable,
            "the message could not be delivered and was not stored; send it again",
        ));
    }
    info!(conversation = %conversation, message_id = %message.message_id, "message stored and queued");
    Ok(Some(ServerFrame::Ack {
        request_id,
        action: "CHAT_MESSAGE".into(),
        conversation_id: conversation,
        message_id: Some(message.message_id),
        timestamp: Some(message.timestamp),
    }))
}
