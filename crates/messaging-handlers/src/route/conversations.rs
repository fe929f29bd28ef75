//! CREATE_CONVERSATION and JOIN_CONVERSATION, under the role rules of `messaging_core::access`.

use messaging_core::protocol::{
    AddMembers, ConversationRef, CreateConversation, RemoveMember, ServerFrame,
};
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, ProtocolError};
use messaging_store::{
    new_event_id, BroadcastJob, ConnectionRecord, JoinOutcome, NewConversation, StoreError,
};
use tracing::{info, warn};

use super::{
    announce, existing_conversation, refused, require_member, store_failure, Reply, RouteService,
};

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
    Ok(Some(ServerFrame::ack(
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
    let item = existing_conversation(&service.table, &p.tenant, &conversation).await?;
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
    Ok(Some(ServerFrame::ack(
        request_id,
        "JOIN_CONVERSATION",
        conversation,
    )))
}

/// ADD_MEMBERS: OWNER/ADMIN add users (whether or not they are members themselves). Each
/// new member's live sockets are subscribed at once; members hear MEMBER_JOINED.
pub(super) async fn add_members(
    service: &RouteService,
    caller: &ConnectionRecord,
    add: AddMembers,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let conversation = add.target.resolve(&p.tenant)?;
    refused(p.may_add_members(), "add members")?;
    existing_conversation(&service.table, &p.tenant, &conversation).await?;
    for user in &add.members {
        let outcome = service
            .table
            .add_member(&p.tenant, &conversation, user, &p.user, now_millis())
            .await
            .map_err(store_failure)?;
        if let JoinOutcome::Joined { .. } = outcome {
            let frame = ServerFrame::MemberJoined {
                conversation_id: conversation.clone(),
                user_id: user.clone(),
            };
            announce(service, caller, &conversation, frame).await;
        }
    }
    info!(conversation = %conversation, added = add.members.len(), "members added");
    Ok(Some(ServerFrame::ack(
        request_id,
        "ADD_MEMBERS",
        conversation,
    )))
}

/// REMOVE_MEMBER: OWNER/ADMIN remove anyone; anyone may remove themself. The removed user's
/// sockets stop receiving the conversation at once and get MEMBER_REMOVED themselves.
pub(super) async fn remove_member(
    service: &RouteService,
    caller: &ConnectionRecord,
    remove: RemoveMember,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let conversation = remove.target.resolve(&p.tenant)?;
    let leaving = remove.user_id == p.user;
    if leaving {
        require_member(service, caller, &conversation).await?;
    } else {
        refused(p.may_remove_member(&remove.user_id), "remove other members")?;
        existing_conversation(&service.table, &p.tenant, &conversation).await?;
    }
    let removed = service
        .table
        .remove_member(&p.tenant, &conversation, &remove.user_id)
        .await
        .map_err(store_failure)?;
    if !removed {
        return Err(ProtocolError::new(
            ErrorCode::NotAMember,
            format!(
                "\"{}\" is not a member of conversation \"{conversation}\"",
                remove.user_id
            ),
        ));
    }
    let frame = ServerFrame::MemberRemoved {
        conversation_id: conversation.clone(),
        user_id: remove.user_id.clone(),
        removed_by: p.user.clone(),
    };
    announce(service, caller, &conversation, frame.clone()).await;
    if !leaving {
        // The removed user is no longer subscribed: tell their sockets directly.
        let mut job = BroadcastJob::new(
            new_event_id(),
            p.tenant.clone(),
            conversation.clone(),
            frame.to_json(),
        );
        job.users = Some(vec![remove.user_id.clone()]);
        if let Err(e) = service.queue.send(&job).await {
            warn!(error = %e, "removal notice not queued");
        }
    }
    info!(conversation = %conversation, member = %remove.user_id, "member removed");
    Ok(Some(ServerFrame::ack(
        request_id,
        "REMOVE_MEMBER",
        conversation,
    )))
}
