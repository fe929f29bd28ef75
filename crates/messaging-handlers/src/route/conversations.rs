//! CREATE_CONVERSATION and JOIN_CONVERSATION, under the role rules of `messaging_core::access`.

use messaging_core::access::Decision;
use messaging_core::protocol::{ConversationRef, CreateConversation, ServerFrame};
use messaging_core::time::now_millis;
use messaging_core::{ConversationId, ErrorCode, ProtocolError};
use messaging_store::{
    new_event_id, BroadcastJob, ConnectionRecord, JoinOutcome, NewConversation, StoreError,
};
use tracing::{info, warn};

use super::{not_found, store_failure, Reply, RouteService};

fn refused(decision: Decision, what: &str) -> Result<(), ProtocolError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::MissingPermission(permission) => Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!("your role may not {what} (it lacks {})", permission.name()),
        )),
        Decision::MembersOnly => Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!("you may not {what}: it is members-only; ask an OWNER or ADMIN to add you"),
        )),
    }
}

pub(super) async fn create(
    service: &RouteService,
    caller: &ConnectionRecord,
    create: CreateConversation,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    refused(p.may_create_conversation(), "create conversations")?;
    if create.members.iter().any(|m| m != &p.user) {
        refused(p.may_add_members(), "add members")?;
    }
    let new = NewConversation {
        tenant: p.tenant.clone(),
        conversation: create.conversation_id.clone(),
        kind: create.kind,
        title: create.title,
        created_by: p.user.clone(),
        members: create.members,
        now: now_millis(),
    };
    let item = match service.table.create_conversation(&new).await {
        Ok(item) => item,
        Err(StoreError::ConditionFailed(_)) => {
            return Err(ProtocolError::new(
                ErrorCode::ConversationExists,
                format!(
                    "conversation \"{}\" already exists; choose another id or join it",
                    new.conversation
                ),
            ))
        }
        Err(e) => return Err(store_failure(e)),
    };
    let view = item.conversation;
    info!(conversation = %view.conversation_id, kind = %view.kind, "conversation created");
    announce(
        service,
        caller,
        &view.conversation_id,
        ServerFrame::ConversationCreated {
            conversation: view.clone(),
        },
    )
    .await;
    Ok(Some(ack(
        request_id,
        "CREATE_CONVERSATION",
        view.conversation_id,
    )))
}

pub(super) async fn join(
    service: &RouteService,
    caller: &ConnectionRecord,
    target: &ConversationRef,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let conversation = target.resolve(&p.tenant)?;
    let Some(item) = service
        .table
        .conversation(&p.tenant, &conversation)
        .await
        .map_err(store_failure)?
    else {
        return Err(not_found(&conversation));
    };
    if !service
        .table
        .is_member(&p.tenant, &conversation, &p.user)
        .await
        .map_err(store_failure)?
    {
        refused(
            p.may_join(item.conversation.kind),
            &format!(
                "join {} conversation \"{conversation}\"",
                item.conversation.kind
            ),
        )?;
    }
    let outcome = service
        .table
        .add_member(&p.tenant, &conversation, &p.user, &p.user, now_millis())
        .await
        .map_err(store_failure)?;
    if let JoinOutcome::Joined {
        subscribed_connections,
    } = outcome
    {
        info!(conversation = %conversation, subscribed_connections, "joined");
        let frame = ServerFrame::MemberJoined {
            conversation_id: conversation.clone(),
            user_id: p.user.clone(),
        };
        announce(service, caller, &conversation, frame).await;
    }
    Ok(Some(ack(request_id, "JOIN_CONVERSATION", conversation)))
}

fn ack(request_id: Option<String>, action: &str, conversation: ConversationId) -> ServerFrame {
    ServerFrame::Ack {
        request_id,
        action: action.into(),
        conversation_id: conversation,
        message_id: None,
        timestamp: None,
    }
}

/// Tells the conversation's other sockets. Best effort: the change itself is already stored
/// and visible on the next read, so a failed announcement is logged, not refused.
async fn announce(
    service: &RouteService,
    caller: &ConnectionRecord,
    conversation: &ConversationId,
    frame: ServerFrame,
) {
    let mut job = BroadcastJob::new(
        new_event_id(),
        caller.principal.tenant.clone(),
        conversation.clone(),
        frame.to_json(),
    );
    job.exclude = Some(caller.connection_id.clone());
    if let Err(e) = service.queue.send(&job).await {
        warn!(error = %e, conversation = %conversation, "announcement not queued");
    }
}
