//! The shape every WebSocket function (`route`, `file-share`) shares: read the frame, parse
//! it with the function's command table, find the caller behind the connection, hand the
//! command to its handler, answer with the handler's frame or an ERROR. And the checks
//! handlers share: who the caller is, membership, role decisions, existence.
//!
//! The caller's tenant, user and role come from the stored connection, never from the frame.
//! A refused frame is answered with an ERROR frame and writes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::info;

use messaging_aws::{BroadcastJob, BroadcastQueue, ConnectionRecord, MessageGroup, MessagingTable};
use messaging_core::access::Decision;
use messaging_core::protocol::{
    request_id_of, Ack, Commands, ConversationView, Handle, ServerFrame,
};
use messaging_core::{
    ConnectionId, ConversationId, ErrorCode, Principal, ProtocolError, TenantId, UserId,
};

use crate::metrics::{self, Metric};
use crate::throttle::Limiter;
use crate::{event, outbox, response};

/// A function behind WebSocket routes.
pub trait FrameService: Sync {
    /// Its command table.
    type Commands: Commands + Send;

    /// Where connections (and everything else) are stored.
    fn table(&self) -> &MessagingTable;

    /// Where events for other connections go.
    fn queue(&self) -> &BroadcastQueue;

    /// The sandbox's rate limiter.
    fn limiter(&self) -> &Limiter;

    /// The sandbox's recent callers.
    fn callers(&self) -> &Callers;
}

/// How long a sandbox answers a connection's frames from the record it read.
pub const CALLER_TTL_MILLIS: i64 = 60_000;
/// Most connection records a sandbox keeps (a few hundred bytes each).
pub const MAX_CACHED_CALLERS: usize = 4_096;

/// The connection records behind this sandbox's recent frames: a connection's record is read
/// once a minute, not once a frame (one read unit a frame saved). What it says of the caller
/// (tenant, user, role, name) never changes while the connection lives; API Gateway sends no
/// frame of a closed connection, so a record deleted at `$disconnect` is not used from here
/// either. Its subscriptions do change: a handler that needs them reads the record again
/// (SET_PRESENCE).
#[derive(Clone, Default)]
pub struct Callers {
    entries: Arc<Mutex<HashMap<ConnectionId, (ConnectionRecord, i64)>>>,
}

impl Callers {
    /// `connection`'s record, if read here less than [`CALLER_TTL_MILLIS`] before `now`.
    pub fn get(&self, connection: &ConnectionId, now: i64) -> Option<ConnectionRecord> {
        let entries = self.entries.lock().ok()?;
        let (record, read_at) = entries.get(connection)?;
        (now - read_at < CALLER_TTL_MILLIS).then(|| record.clone())
    }

    /// Keeps `record`, read at `now`. At [`MAX_CACHED_CALLERS`] the expired go first, and if
    /// none had, all of them (the next frames read their records again).
    pub fn put(&self, record: ConnectionRecord, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_CACHED_CALLERS {
            entries.retain(|_, (_, read_at)| now - *read_at < CALLER_TTL_MILLIS);
            if entries.len() >= MAX_CACHED_CALLERS {
                entries.clear();
            }
        }
        entries.insert(record.connection_id.clone(), (record, now));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One frame being handled: the function's service, who sent the frame, and how to answer it.
pub struct Call<'a, S> {
    pub service: &'a S,
    pub caller: &'a ConnectionRecord,
    request_id: Option<String>,
    action: &'static str,
}

impl<'a, S> Call<'a, S> {
    /// The caller, as their connection was registered.
    pub fn principal(&self) -> &'a Principal {
        &self.caller.principal
    }

    /// The `requestId` of the frame, for answers other than an ACK.
    pub fn request_id(&self) -> Option<String> {
        self.request_id.clone()
    }

    /// An ACK of this frame (its `type` and `requestId`), to which the handler adds what it did.
    pub fn ack(&self) -> Ack {
        Ack::new(self.request_id.clone(), self.action)
    }
}

impl<S: FrameService> Call<'_, S> {
    /// Refuses unless the caller is a member of the conversation.
    pub async fn require_member(&self, conversation: &ConversationId) -> Result<(), ProtocolError> {
        require_member(self.service.table(), self.principal(), conversation).await
    }

    /// The conversation in the caller's tenant, or CONVERSATION_NOT_FOUND.
    pub async fn existing_conversation(
        &self,
        conversation: &ConversationId,
    ) -> Result<ConversationView, ProtocolError> {
        existing_conversation(self.service.table(), &self.principal().tenant, conversation).await
    }

    /// Tells the conversation's other sockets. Best effort: the change itself is already
    /// stored and visible on the next read, so a failed announcement is logged, not refused.
    pub async fn announce(&self, conversation: &ConversationId, frame: &ServerFrame) {
        let job = outbox::to_conversation(&self.principal().tenant, conversation, frame)
            .excluding(&self.caller.connection_id);
        outbox::best_effort(self.service.queue(), &job, "announcement").await;
    }

    /// Sends `frame` to these users' live sockets (not the caller's own), ordered with the
    /// other events of `group`. Best effort, like [`Self::announce`].
    pub async fn tell(&self, group: MessageGroup, users: Vec<UserId>, frame: &ServerFrame) {
        if users.is_empty() {
            return;
        }
        let job: BroadcastJob = outbox::to_users(&self.principal().tenant, group, users, frame)
            .excluding(&self.caller.connection_id);
        outbox::best_effort(self.service.queue(), &job, "event to users").await;
    }
}

/// Handles one frame of a WebSocket function: parse, find the caller, dispatch, answer.
#[tracing::instrument(skip_all, fields(connection_id, tenant, user, action))]
pub async fn handle<S>(
    service: &S,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: FrameService,
    for<'a> Call<'a, S>: Handle<S::Commands>,
{
    let Some(connection) = event::connection_id(request) else {
        return response::status(400);
    };
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        let e = ProtocolError::new(
            ErrorCode::InvalidJson,
            "binary frames are not supported; send JSON text",
        );
        return response::error(None, &e);
    }
    let inbound = match S::Commands::parse(body) {
        Ok(inbound) => inbound,
        Err(e) => {
            info!(code = %e.code, "frame refused");
            return response::error(request_id_of(body), &e);
        }
    };
    let action = inbound.command.type_name();
    tracing::Span::current().record("action", action);
    // A connection over its frame rate is refused before anything is read.
    if let Err(e) =
        service
            .limiter()
            .precheck(&connection, action, messaging_core::time::now_millis())
    {
        info!(code = %e.code, "frame throttled");
        return response::error(inbound.request_id, &e);
    }

    let now = messaging_core::time::now_millis();
    let caller = match service.callers().get(&connection, now) {
        Some(caller) => caller,
        None => match registered_caller(service.table(), &connection).await {
            Ok(caller) => {
                service.callers().put(caller.clone(), now);
                caller
            }
            Err(e) => return response::error(inbound.request_id, &e),
        },
    };
    let span = tracing::Span::current();
    span.record("tenant", caller.principal.tenant.as_str());
    span.record("user", caller.principal.user.as_str());
    if let Err(e) = service
        .limiter()
        .check(
            service.table(),
            &caller.principal,
            &connection,
            action,
            messaging_core::time::now_millis(),
        )
        .await
    {
        info!(code = %e.code, "frame throttled");
        return response::error(inbound.request_id, &e);
    }

    let call = Call {
        service,
        caller: &caller,
        request_id: inbound.request_id,
        action,
    };
    match <Call<'_, S> as Handle<S::Commands>>::handle(&call, inbound.command).await {
        Ok(Some(frame)) => response::frame(200, &frame),
        Ok(None) => response::status(200),
        Err(e) => {
            info!(code = %e.code, "request refused");
            if matches!(e.code, ErrorCode::Internal | ErrorCode::Unavailable) {
                metrics::emit(&caller.principal.tenant, &[(Metric::Errors, 1.0)]);
            }
            response::error(call.request_id, &e)
        }
    }
}

/// The stored connection behind a frame: the only source of the caller's tenant and role.
pub async fn registered_caller(
    table: &MessagingTable,
    connection: &ConnectionId,
) -> Result<ConnectionRecord, ProtocolError> {
    table.connection(connection).await?.ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::UnknownConnection,
            "this connection is not registered or has expired; reconnect with a fresh token",
        )
    })
}

/// A refused access decision as the client sees it; `what` completes "you may not …".
pub fn refused(decision: Decision, what: &str) -> Result<(), ProtocolError> {
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
        Decision::AuthorOnly => Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!("you may not {what}: only its author may"),
        )),
    }
}

/// Refuses unless `p` is a member of the conversation; tells "no such conversation" apart
/// from "not a member" (both within the caller's own tenant).
pub async fn require_member(
    table: &MessagingTable,
    p: &Principal,
    conversation: &ConversationId,
) -> Result<(), ProtocolError> {
    if table.is_member(&p.tenant, conversation, &p.user).await? {
        return Ok(());
    }
    existing_conversation(table, &p.tenant, conversation).await?;
    Err(ProtocolError::new(
        ErrorCode::NotAMember,
        format!("you are not a member of conversation \"{conversation}\"; join it first"),
    ))
}

/// The conversation in `tenant`, or CONVERSATION_NOT_FOUND.
pub async fn existing_conversation(
    table: &MessagingTable,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<ConversationView, ProtocolError> {
    table
        .conversation(tenant, conversation)
        .await?
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::ConversationNotFound,
                format!("conversation \"{conversation}\" does not exist in your portal"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::Role;

    fn record(id: &str) -> ConnectionRecord {
        ConnectionRecord {
            connection_id: ConnectionId::parse(id).unwrap(),
            principal: Principal {
                tenant: TenantId::parse("t").unwrap(),
                user: UserId::parse("u").unwrap(),
                role: Role::User,
                name: None,
            },
            connected_at: 0,
            subscriptions: Vec::new(),
            presence: Vec::new(),
        }
    }

    #[test]
    fn a_cached_caller_lasts_a_minute() {
        let callers = Callers::default();
        let id = ConnectionId::parse("c1").unwrap();
        assert!(callers.get(&id, 0).is_none());
        callers.put(record("c1"), 1_000);
        assert_eq!(
            callers.get(&id, 1_000 + CALLER_TTL_MILLIS - 1),
            Some(record("c1"))
        );
        assert!(callers.get(&id, 1_000 + CALLER_TTL_MILLIS).is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let callers = Callers::default();
        for i in 0..MAX_CACHED_CALLERS {
            callers.put(record(&format!("c{i}")), 0);
        }
        assert_eq!(callers.len(), MAX_CACHED_CALLERS);
        // Full of live entries: cleared, then the new one kept.
        callers.put(record("new"), 1);
        assert_eq!(callers.len(), 1);
        // Full with expired entries: those go, the live stay.
        for i in 0..MAX_CACHED_CALLERS - 1 {
            callers.put(record(&format!("d{i}")), 2);
        }
        callers.put(record("late"), 2 + CALLER_TTL_MILLIS);
        assert!(callers.len() <= MAX_CACHED_CALLERS);
        assert!(callers
            .get(&ConnectionId::parse("late").unwrap(), 2 + CALLER_TTL_MILLIS)
            .is_some());
    }
}
