//! EDIT_MESSAGE, DELETE_MESSAGE, ADD_REACTION, REMOVE_REACTION: read the message, decide,
//! write it back conditional on its version (a concurrent change makes us read again), then
//! fan the change out as its own event.

use messaging_core::protocol::{EditMessage, MessageRef, MessageView, Reaction, ServerFrame};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ConversationId, ErrorCode, ProtocolError};
use messaging_store::{ConnectionRecord, StoreError, StoredMessage};
use tracing::info;

use super::{announce, refused, require_member, store_failure, Reply, RouteService};

/// Distinct reactions one message may carry.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;
/// Read-decide-write rounds before giving up under contention.
const ATTEMPTS: usize = 5;

pub(super) async fn edit(
    service: &RouteService,
    caller: &ConnectionRecord,
    edit: EditMessage,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let (conversation, seq) = (edit.message.target.resolve(&p.tenant)?, edit.message.seq);
    require_member(service, caller, &conversation).await?;
    let changed = change(service, caller, &conversation, seq, |m| {
        refused(p.may_edit(&m.sender_id), "edit this message")?;
        let mut after = m.clone();
        after.content.text = edit.content.text.clone();
        after.content.kind = edit.content.kind;
        after.edited = true;
        after.edited_at = Some(rfc3339_millis(now_millis()));
        Ok(after)
    })
    .await?;
    info!(seq, "message edited");
    let frame = ServerFrame::MessageEdited { data: changed };
    announce(service, caller, &conversation, frame).await;
    Ok(Some(ack(request_id, "EDIT_MESSAGE", conversation, seq)))
}

pub(super) async fn delete(
    service: &RouteService,
    caller: &ConnectionRecord,
    message: MessageRef,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let (conversation, seq) = (message.target.resolve(&p.tenant)?, message.seq);
    require_member(service, caller, &conversation).await?;
    let deleted = change(service, caller, &conversation, seq, |m| {
        refused(
            p.may_delete(&m.sender_id),
            "delete messages written by others",
        )?;
        let mut after = m.clone();
        after.deleted = true;
        after.content.text = String::new();
        after.content.attachments.clear();
        after.reactions.clear();
        after.edited_at = Some(rfc3339_millis(now_millis()));
        Ok(after)
    })
    .await?;
    info!(seq, "message deleted");
    let frame = ServerFrame::MessageDeleted {
        conversation_id: conversation.clone(),
        seq,
        message_id: deleted.message_id,
        deleted_by: p.user.clone(),
    };
    announce(service, caller, &conversation, frame).await;
    Ok(Some(ack(request_id, "DELETE_MESSAGE", conversation, seq)))
}

pub(super) async fn react(
    service: &RouteService,
    caller: &ConnectionRecord,
    reaction: Reaction,
    add: bool,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let (conversation, seq) = (
        reaction.message.target.resolve(&p.tenant)?,
        reaction.message.seq,
    );
    require_member(service, caller, &conversation).await?;
    let emoji = reaction.emoji;
    let changed = change(service, caller, &conversation, seq, |m| {
        let mut after = m.clone();
        if add {
            if !after.reactions.contains_key(&emoji)
                && after.reactions.len() >= MAX_REACTIONS_PER_MESSAGE
            {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    format!(
                        "a message carries at most {MAX_REACTIONS_PER_MESSAGE} different reactions"
                    ),
                ));
            }
            let users = after.reactions.entry(emoji.clone()).or_default();
            if !users.contains(&p.user) {
                users.push(p.user.clone());
            }
        } else if let Some(users) = after.reactions.get_mut(&emoji) {
            users.retain(|u| *u != p.user);
            if users.is_empty() {
                after.reactions.remove(&emoji);
            }
        }
        Ok(after)
    })
    .await?;
    let frame = ServerFrame::ReactionsChanged {
        conversation_id: conversation.clone(),
        seq,
        message_id: changed.message_id,
        reactions: changed.reactions,
    };
    announce(service, caller, &conversation, frame).await;
    let action = if add {
        "ADD_REACTION"
    } else {
        "REMOVE_REACTION"
    };
    Ok(Some(ack(request_id, action, conversation, seq)))
}

/// Applies `decide` to the current message and stores the result if nobody changed the
/// message meanwhile (else reads again). Deleted messages cannot change. A change that
/// leaves the message as it was writes nothing.
async fn change(
    service: &RouteService,
    caller: &ConnectionRecord,
    conversation: &ConversationId,
    seq: u64,
    decide: impl Fn(&MessageView) -> Result<MessageView, ProtocolError>,
) -> Result<MessageView, ProtocolError> {
    let tenant = &caller.principal.tenant;
    for _ in 0..ATTEMPTS {
        let current: StoredMessage = service
            .table
            .message(tenant, conversation, seq)
            .await
            .map_err(store_failure)?
            .filter(|m| !m.view().deleted)
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::MessageNotFound,
                    format!(
                        "conversation \"{conversation}\" has no message {seq} (or it was deleted)"
                    ),
                )
            })?;
        let after = decide(current.view())?;
        if after == *current.view() {
            return Ok(after);
        }
        match service
            .table
            .replace_message(tenant, &current, after.clone())
            .await
        {
            Ok(()) => return Ok(after),
            Err(StoreError::ConditionFailed(_)) => continue,
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(ProtocolError::new(
        ErrorCode::Unavailable,
        "the message is being changed by others right now; send the same frame again",
    ))
}

fn ack(
    request_id: Option<String>,
    action: &str,
    conversation: ConversationId,
    seq: u64,
) -> ServerFrame {
    let mut frame = ServerFrame::ack(request_id, action, conversation);
    if let ServerFrame::Ack { seq: s, .. } = &mut frame {
        *s = Some(seq);
    }
    frame
}
