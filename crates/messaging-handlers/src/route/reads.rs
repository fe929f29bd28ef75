//! LIST_CONVERSATIONS and GET_HISTORY: what a client loads when it opens.

use messaging_core::protocol::{GetHistory, ServerFrame};
use messaging_store::ConnectionRecord;

use super::{require_member, store_failure, Reply, RouteService};

/// The caller's conversations, most recently active first: one GSI1 Query, one BatchGetItem
/// per 100 conversations.
pub(super) async fn list_conversations(
    service: &RouteService,
    caller: &ConnectionRecord,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let ids = service
        .table
        .user_conversations(&p.tenant, &p.user)
        .await
        .map_err(store_failure)?;
    let conversations = service
        .table
        .conversations_by_id(&p.tenant, &ids)
        .await
        .map_err(store_failure)?;
    Ok(Some(ServerFrame::Conversations {
        request_id,
        conversations,
    }))
}

/// The newest messages (members only) and the members with their presence.
pub(super) async fn history(
    service: &RouteService,
    caller: &ConnectionRecord,
    history: GetHistory,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let conversation = history.target.resolve(&p.tenant)?;
    require_member(service, caller, &conversation).await?;
    let limit = i32::from(history.limit);
    let messages = service
        .table
        .recent_messages(&p.tenant, &conversation, limit)
        .await
        .map_err(store_failure)?;
    let members = service
        .table
        .members_with_presence(&p.tenant, &conversation)
        .await
        .map_err(store_failure)?;
    Ok(Some(ServerFrame::History {
        request_id,
        conversation_id: conversation,
        messages,
        members,
    }))
}
