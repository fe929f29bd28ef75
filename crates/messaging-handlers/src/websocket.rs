//! The shape every WebSocket function (`route`, `file-share`) shares: read the frame, parse
//! it with the function's command table, find the caller behind the connection, hand the
//! command to its handler, answer with the handler's frame or an ERROR. And the checks
//! handlers share: who the caller is, membership, role decisions, existence.
//!
//! The caller's tenant, user and role come from the stored connection, never from the frame.
//! A refused frame is answered with an ERROR frame and writes nothing.

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

    let caller = match registered_caller(service.table(), &connection).await {
        Ok(caller) => caller,
        Err(e) => return response::error(inbound.request_id, &e),
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
