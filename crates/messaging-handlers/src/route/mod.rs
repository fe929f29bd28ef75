//! `$default`: parse a client's frame and dispatch on its `type`.
//!
//! The caller's tenant, user and role come from the stored connection, never from the frame.
//! A refused frame is answered with an ERROR frame and writes nothing.

mod chat;
mod conversations;
mod reads;
mod typing;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{error, info, warn};

use messaging_core::protocol::{parse_inbound, request_id_of, Command, ServerFrame};
use messaging_core::{ErrorCode, ProtocolError};
use messaging_store::{BroadcastQueue, ConnectionRecord, MessagingTable, StoreError};

use crate::config::{self, ConfigError};
use crate::{event, response};

pub struct RouteService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
}

impl RouteService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
        })
    }
}

/// What a command handler answers: an ACK frame, or nothing (typing indicators).
pub(crate) type Reply = Result<Option<ServerFrame>, ProtocolError>;

#[tracing::instrument(skip_all, fields(connection_id, tenant, user, action))]
pub async fn handle(
    service: &RouteService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
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
    let inbound = match parse_inbound(body) {
        Ok(inbound) => inbound,
        Err(e) => {
            info!(code = %e.code, "frame refused");
            return response::error(request_id_of(body), &e);
        }
    };
    let request_id = inbound.request_id;
    tracing::Span::current().record("action", inbound.command.type_name());

    let caller = match service.table.connection(&connection).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            let e = ProtocolError::new(
                ErrorCode::UnknownConnection,
                "this connection is not registered or has expired; reconnect with a fresh token",
            );
            return response::error(request_id, &e);
        }
        Err(e) => return response::error(request_id, &store_failure(e)),
    };
    let span = tracing::Span::current();
    span.record("tenant", caller.principal.tenant.as_str());
    span.record("user", caller.principal.user.as_str());

    let reply = match inbound.command {
        Command::ChatMessage(chat) => chat::send(service, &caller, chat, request_id.clone()).await,
        Command::TypingStart(target) => typing::indicate(service, &caller, &target, true).await,
        Command::TypingStop(target) => typing::indicate(service, &caller, &target, false).await,
        Command::CreateConversation(create) => {
            conversations::create(service, &caller, create, request_id.clone()).await
        }
        Command::JoinConversation(target) => {
            conversations::join(service, &caller, &target, request_id.clone()).await
        }
        Command::ListConversations => {
            reads::list_conversations(service, &caller, request_id.clone()).await
        }
        Command::GetHistory(history) => {
            reads::history(service, &caller, history, request_id.clone()).await
        }
    };
    match reply {
        Ok(Some(frame)) => response::frame(200, &frame),
        Ok(None) => response::status(200),
        Err(e) => {
            info!(code = %e.code, "request refused");
            response::error(request_id, &e)
        }
    }
}

/// A store failure as the client sees it: retryable or not, never the internal detail.
pub(crate) fn store_failure(error: StoreError) -> ProtocolError {
    if error.is_retryable() {
        warn!(error = %error, "store temporarily unavailable");
        ProtocolError::new(
            ErrorCode::Unavailable,
            "the service is busy; send the same frame again shortly",
        )
    } else {
        error!(error = %error, "store request failed");
        ProtocolError::new(
            ErrorCode::Internal,
            "the request failed on our side and was not applied",
        )
    }
}

/// Refuses unless the caller is a member of the conversation; tells "no such conversation"
/// apart from "not a member" (both within the caller's own tenant).
pub(crate) async fn require_member(
    service: &RouteService,
    caller: &ConnectionRecord,
    conversation: &messaging_core::ConversationId,
) -> Result<(), ProtocolError> {
    let p = &caller.principal;
    if service
        .table
        .is_member(&p.tenant, conversation, &p.user)
        .await
        .map_err(store_failure)?
    {
        return Ok(());
    }
    match service
        .table
        .conversation(&p.tenant, conversation)
        .await
        .map_err(store_failure)?
    {
        None => Err(not_found(conversation)),
        Some(_) => Err(ProtocolError::new(
            ErrorCode::NotAMember,
            format!("you are not a member of conversation \"{conversation}\"; join it first"),
        )),
    }
}

pub(crate) fn not_found(conversation: &messaging_core::ConversationId) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::ConversationNotFound,
        format!("conversation \"{conversation}\" does not exist in your portal"),
    )
}
