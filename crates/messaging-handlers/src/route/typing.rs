//! TYPING_START / TYPING_STOP: ephemeral, fanned out, never stored. A TYPING_START carries
//! `expiresAt` (10 s) so clients drop it without a TYPING_STOP, and the broadcast function
//! drops a job that waited past it.

use messaging_core::protocol::{
    ConversationRef, Handle, Reply, ServerFrame, TypingStart, TypingStop, TYPING_TTL_MILLIS,
};
use messaging_core::time::now_millis;

use super::RouteService;
use crate::outbox;
use crate::websocket::Call;

impl Handle<TypingStart> for Call<'_, RouteService> {
    async fn handle(&self, start: TypingStart) -> Reply {
        indicate(self, &start.target, true).await
    }
}

impl Handle<TypingStop> for Call<'_, RouteService> {
    async fn handle(&self, stop: TypingStop) -> Reply {
        indicate(self, &stop.target, false).await
    }
}

async fn indicate(call: &Call<'_, RouteService>, target: &ConversationRef, typing: bool) -> Reply {
    let p = call.principal();
    let conversation = target.resolve(&p.tenant)?;
    call.require_member(&conversation).await?;
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
    let job = outbox::to_conversation(&p.tenant, &conversation, &frame)
        .excluding(&call.caller.connection_id)
        .expiring(expires_at);
    call.service.queue.send(&job).await?;
    // No ACK: typing frames are frequent and every frame sent is billed.
    Ok(None)
}
