//! Live presence: when a user's first connection opens or their last one closes, every
//! conversation they belong to hears `PRESENCE` (one broadcast job per conversation).

use messaging_core::protocol::{PresenceStatus, ServerFrame};
use messaging_core::{ConnectionId, ConversationId, TenantId, UserId};
use messaging_store::{new_event_id, BroadcastJob, BroadcastQueue};
use tracing::warn;

/// Best effort: presence is also readable (GET_HISTORY's members), so a lost announcement
/// is logged, not retried. `exclude`: the connection whose opening this announces.
pub async fn announce(
    queue: &BroadcastQueue,
    tenant: &TenantId,
    user: &UserId,
    status: PresenceStatus,
    conversations: &[ConversationId],
    exclude: Option<&ConnectionId>,
) {
    let frame = ServerFrame::Presence {
        user_id: user.clone(),
        status,
    }
    .to_json();
    for conversation in conversations {
        let mut job = BroadcastJob::new(
            new_event_id(),
            tenant.clone(),
            conversation.clone(),
            frame.clone(),
        );
        job.exclude = exclude.cloned();
        if let Err(e) = queue.send(&job).await {
            warn!(error = %e, conversation = %conversation, status = status.as_str(), "presence not announced");
        }
    }
}
