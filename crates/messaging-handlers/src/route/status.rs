//! MARK_READ (read receipts), SET_PRESENCE (away/online, and the presence heartbeat) and PING
//! (the keepalive).

use messaging_core::protocol::{
    Handle, MarkRead, Ping, PresenceStatus, Reply, ServerFrame, SetPresence,
};
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, ProtocolError};
use tracing::info;

use super::RouteService;
use crate::outbox;
use crate::websocket::Call;

/// Moves the caller's read marker to `seq` (never back; `seq` must exist) and tells the
/// other members with READ_RECEIPT.
impl Handle<MarkRead> for Call<'_, RouteService> {
    async fn handle(&self, MarkRead { message }: MarkRead) -> Reply {
        let p = self.principal();
        let conversation = message.target.resolve(&p.tenant)?;
        self.require_member(&conversation).await?;
        let last = self.existing_conversation(&conversation).await?.last_seq;
        if message.seq > last {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                format!("seq {} is beyond the newest message ({last})", message.seq),
            ));
        }
        let moved = self
            .service
            .table
            .mark_read(&p.tenant, &conversation, &p.user, message.seq)
            .await?;
        if moved {
            let frame = ServerFrame::ReadReceipt {
                conversation_id: conversation.clone(),
                user_id: p.user.clone(),
                seq: message.seq,
            };
            self.announce(&conversation, &frame).await;
        }
        Ok(Some(
            self.ack()
                .conversation(conversation)
                .seq(message.seq)
                .into(),
        ))
    }
}

/// Sets online/away and extends presence for another 5 minutes; members hear PRESENCE when
/// what they see changes.
impl Handle<SetPresence> for Call<'_, RouteService> {
    async fn handle(&self, set: SetPresence) -> Reply {
        let p = self.principal();
        let before = self
            .service
            .table
            .set_presence(&p.tenant, &p.user, set.status, now_millis())
            .await?
            .unwrap_or(PresenceStatus::Offline);
        if before != set.status {
            info!(status = set.status.as_str(), "presence changed");
            // The subscriptions as they are now (the caller's record may be a minute old).
            let subscriptions = match self
                .service
                .table
                .connection(&self.caller.connection_id)
                .await
            {
                Ok(Some(record)) => record.presence,
                _ => self.caller.presence.clone(),
            };
            outbox::announce_presence(
                &self.service.queue,
                &p.tenant,
                &p.user,
                set.status,
                &subscriptions,
                Some(&self.caller.connection_id),
            )
            .await;
        }
        Ok(Some(self.ack().into()))
    }
}

/// The keepalive: an ACK, nothing read or written beyond what every frame costs (the caller's
/// connection, cached per sandbox, and the connection's rate limit). A client that hears
/// nothing back knows its socket is dead before TCP does; `UNKNOWN_CONNECTION` tells it the
/// connection is no longer registered.
impl Handle<Ping> for Call<'_, RouteService> {
    async fn handle(&self, _: Ping) -> Reply {
        Ok(Some(self.ack().into()))
    }
}
