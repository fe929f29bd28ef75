//! TYPING_START / TYPING_STOP: ephemeral, fanned out, never stored. A TYPING_START carries
//! `expiresAt` (10 s) so clients drop it without a TYPING_STOP, and the broadcast function
//! drops a job that waited past it.

use messaging_core::protocol::{ConversationRef, ServerFrame, TYPING_TTL_MILLIS};
use messaging_core::time::now_millis;
use messaging_store::{new_event_id, BroadcastJob, ConnectionRecord};

use super::{require_member, store_failure, Reply, RouteService};

pub(super) async fn indicate(
    service: &RouteService,
    caller: &ConnectionRecord,
    target: &ConversationRef,
    typing: bool,
) -> Reply {
    let p = &caller.principal;
    let conversation = target.resolve(&p.tenant)?;
    require_member(service, caller, &conversation).await?;
    let expires_at = now_millis() + TYPING_TTL_MILLIS;
    let frame = if typing {
        ServerFrame::TypingStart {
            conversation_id: conversation.clone(),
            user_id: p.user.clone(),
            expires_at,
        }
    } else {
        ServerFrame::TypingStop {
            conversation_id: conversation.clone(),
            user_id: p.user.clone(),
        }
    };
    let mut job = BroadcastJob::new(
        new_event_id(),
        p.tenant.clone(),
        conversation,
        frame.to_json(),
    );
    job.exclude = Some(caller.connection_id.clone());
    job.expires_at = Some(expires_at);
    service.queue.send(&job).await.map_err(store_failure)?;
    // No ACK: typing frames are frequent and every frame sent is billed.
    Ok(None)
}
