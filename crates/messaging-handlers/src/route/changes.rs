//! EDIT_MESSAGE, DELETE_MESSAGE, ADD_REACTION, REMOVE_REACTION: read the message, decide,
//! write it back conditional on its version (a concurrent change makes us read again), then
//! fan the change out as its own event.

use messaging_aws::{AwsError, StoredMessage};
use messaging_core::audit::AuditAction;
use messaging_core::protocol::{
    AddReaction, DeleteMessage, EditMessage, Handle, MessageView, Reaction, RemoveReaction, Reply,
    ServerFrame,
};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ConversationId, ErrorCode, ProtocolError};
use tracing::info;

use super::RouteService;
use crate::websocket::{refused, Call};

/// Distinct reactions one message may carry.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;
/// What a message's reactions (emoji → reactors) may take as JSON: with a 32 KB text, the
/// item stays far below DynamoDB's 400 KB, and REACTIONS_CHANGED below API Gateway's 128 KB.
pub const MAX_REACTIONS_BYTES: usize = 64 * 1024;
/// Read-decide-write rounds before giving up under contention.
const ATTEMPTS: usize = 5;

impl Handle<EditMessage> for Call<'_, RouteService> {
    async fn handle(&self, edit: EditMessage) -> Reply {
        edit_message(self, edit).await
    }
}

impl Handle<DeleteMessage> for Call<'_, RouteService> {
    async fn handle(&self, delete: DeleteMessage) -> Reply {
        delete_message(self, delete).await
    }
}

impl Handle<AddReaction> for Call<'_, RouteService> {
    async fn handle(&self, add: AddReaction) -> Reply {
        react(self, add.reaction, true).await
    }
}

impl Handle<RemoveReaction> for Call<'_, RouteService> {
    async fn handle(&self, remove: RemoveReaction) -> Reply {
        react(self, remove.reaction, false).await
    }
}

async fn edit_message(call: &Call<'_, RouteService>, edit: EditMessage) -> Reply {
    let p = call.principal();
    let (conversation, seq) = (edit.message.target.resolve(&p.tenant)?, edit.message.seq);
    call.require_member(&conversation).await?;
    let changed = change(call, &conversation, seq, |m| {
        refused(p.may_edit(&m.sender_id), "edit this message")?;
        let mut after = m.clone();
        // The text (a file message's caption) only: its type and files stay as posted.
        after.content.text = edit.content.text.clone();
        after.edited = true;
        after.edited_at = Some(rfc3339_millis(now_millis()));
        Ok(after)
    })
    .await?;
    info!(seq, "message edited");
    let frame = ServerFrame::MessageEdited { data: changed };
    call.announce(&conversation, &frame).await;
    Ok(Some(call.ack().conversation(conversation).seq(seq).into()))
}

async fn delete_message(call: &Call<'_, RouteService>, delete: DeleteMessage) -> Reply {
    let p = call.principal();
    let message = delete.message;
    let (conversation, seq) = (message.target.resolve(&p.tenant)?, message.seq);
    call.require_member(&conversation).await?;
    let deleted = change(call, &conversation, seq, |m| {
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
    if deleted.sender_id != p.user {
        call.audit(AuditAction::MessageDeleted, |e| {
            e.conversation(&conversation)
                .seq(seq)
                .user(&deleted.sender_id)
        })
        .await;
    }
    let frame = ServerFrame::MessageDeleted {
        conversation_id: conversation.clone(),
        seq,
        message_id: deleted.message_id,
        deleted_by: p.user.clone(),
    };
    call.announce(&conversation, &frame).await;
    Ok(Some(call.ack().conversation(conversation).seq(seq).into()))
}

async fn react(call: &Call<'_, RouteService>, reaction: Reaction, add: bool) -> Reply {
    let p = call.principal();
    let (conversation, seq) = (
        reaction.message.target.resolve(&p.tenant)?,
        reaction.message.seq,
    );
    call.require_member(&conversation).await?;
    let emoji = reaction.emoji;
    let changed = change(call, &conversation, seq, |m| {
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
            let bytes = serde_json::to_vec(&after.reactions).map_or(usize::MAX, |v| v.len());
            if bytes > MAX_REACTIONS_BYTES {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    "this message holds as many reactions as it can; react to a newer one",
                ));
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
    call.announce(&conversation, &frame).await;
    Ok(Some(call.ack().conversation(conversation).seq(seq).into()))
}

/// Applies `decide` to the current message and stores the result if nobody changed the
/// message meanwhile (else reads again). Deleted messages cannot change. A change that
/// leaves the message as it was writes nothing.
async fn change(
    call: &Call<'_, RouteService>,
    conversation: &ConversationId,
    seq: u64,
    decide: impl Fn(&MessageView) -> Result<MessageView, ProtocolError>,
) -> Result<MessageView, ProtocolError> {
    let (table, tenant) = (&call.service.table, &call.principal().tenant);
    for _ in 0..ATTEMPTS {
        let current: StoredMessage = table
            .message(tenant, conversation, seq)
            .await?
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
        match table.replace_message(&current, after.clone()).await {
            Ok(()) => return Ok(after),
            Err(AwsError::ConditionFailed(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ProtocolError::new(
        ErrorCode::Unavailable,
        "the message is being changed by others right now; send the same frame again",
    ))
}
