//! MARK_READ (read receipts) and SET_PRESENCE (away/online, and the presence heartbeat).

use messaging_core::protocol::{MessageRef, PresenceStatus, ServerFrame, SetPresence};
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, ProtocolError};
use messaging_store::ConnectionRecord;
use tracing::info;

use super::{announce, existing_conversation, require_member, store_failure, Reply, RouteService};
use crate::presence;

/// Moves the caller's read marker to `seq` (never back; `seq` must exist) and tells the
/// other members with READ_RECEIPT.
pub(super) async fn mark_read(
    service: &RouteService,
    caller: &ConnectionRecord,
    marker: MessageRef,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let conversation = marker.target.resolve(&p.tenant)?;
    require_member(service, caller, &conversation).await?;
    let last = existing_conversation(&service.table, &p.tenant, &conversation)
        .await?
        .conversation
        .last_seq;
    if marker.seq > last {
        return Err(ProtocolError::new(
            ErrorCode::InvalidField,
            format!("seq {} is beyond the newest message ({last})", marker.seq),
        ));
    }
    let moved = service
        .table
        .mark_read(&p.tenant, &conversation, &p.user, marker.seq)
        .await
        .map_err(store_failure)?;
    if moved {
        let frame = ServerFrame::ReadReceipt {
            conversation_id: conversation.clone(),
            user_id: p.user.clone(),
            seq: marker.seq,
        };
        announce(service, caller, &conversation, frame).await;
    }
    let mut ack = ServerFrame::ack(request_id, "MARK_READ", conversation);
    if let ServerFrame::Ack { seq, .. } = &mut ack {
        *seq = Some(marker.seq);
    }
    Ok(Some(ack))
}

/// Sets online/away and extends presence for another 5 minutes; members hear PRESENCE when
/// what they see changes.
pub(super) async fn set_presence(
    service: &RouteService,
    caller: &ConnectionRecord,
    set: SetPresence,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let before = service
        .table
        .set_presence(&p.tenant, &p.user, set.status, now_millis())
        .await
        .map_err(store_failure)?
        .unwrap_or(PresenceStatus::Offline);
    if before != set.status {
        info!(status = set.status.as_str(), "presence changed");
        presence::announce(
            &service.queue,
            &p.tenant,
            &p.user,
            set.status,
            &caller.subscriptions,
            Some(&caller.connection_id),
        )
        .await;
    }
    Ok(Some(super::notifications::plain_ack(
        request_id,
        "SET_PRESENCE",
    )))
}
