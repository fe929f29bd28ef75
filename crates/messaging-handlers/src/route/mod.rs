//! `$default`: parse a client's frame and dispatch on its `type`.
//!
//! The caller's tenant, user and role come from the stored connection, never from the frame.
//! A refused frame is answered with an ERROR frame and writes nothing.

mod changes;
mod chat;
mod conversations;
mod notifications;
pub(crate) mod reads;
mod status;
mod typing;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tracing::{error, info, warn};

use messaging_core::access::Decision;
use messaging_core::cursor::CursorSigner;
use messaging_core::protocol::{parse_inbound, request_id_of, Command, ServerFrame};
use messaging_core::{ConversationId, ErrorCode, ProtocolError};
use messaging_store::{
    new_event_id, BroadcastJob, BroadcastQueue, ConnectionRecord, MessagingTable, StoreError,
};

use crate::config::{self, ConfigError};
use crate::{event, response};

pub struct RouteService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
    /// Signs the page cursors of GET_HISTORY, GET_THREAD and SEARCH.
    pub cursors: CursorSigner,
}

impl RouteService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`, `CURSOR_SECRET`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            cursors: config::cursor_signer()?,
        })
    }

    pub(crate) fn reads(&self) -> reads::Reads<'_> {
        reads::Reads {
            table: &self.table,
            cursors: &self.cursors,
        }
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

    let caller = match registered_caller(&service.table, &connection).await {
        Ok(caller) => caller,
        Err(e) => return response::error(request_id, &e),
    };
    let span = tracing::Span::current();
    span.record("tenant", caller.principal.tenant.as_str());
    span.record("user", caller.principal.user.as_str());

    let reply = dispatch(service, &caller, inbound.command, request_id.clone()).await;
    match reply {
        Ok(Some(frame)) => response::frame(200, &frame),
        Ok(None) => response::status(200),
        Err(e) => {
            info!(code = %e.code, "request refused");
            if matches!(e.code, ErrorCode::Internal | ErrorCode::Unavailable) {
                crate::metrics::emit(
                    &caller.principal.tenant,
                    &[(crate::metrics::Metric::Errors, 1.0)],
                );
            }
            response::error(request_id, &e)
        }
    }
}

async fn dispatch(
    service: &RouteService,
    caller: &ConnectionRecord,
    command: Command,
    request_id: Option<String>,
) -> Reply {
    let r = request_id;
    let p = &caller.principal;
    match command {
        Command::ChatMessage(chat) => chat::send(service, caller, chat, r).await,
        Command::EditMessage(edit) => changes::edit(service, caller, edit, r).await,
        Command::DeleteMessage(message) => changes::delete(service, caller, message, r).await,
        Command::AddReaction(reaction) => changes::react(service, caller, reaction, true, r).await,
        Command::RemoveReaction(reaction) => {
            changes::react(service, caller, reaction, false, r).await
        }
        Command::TypingStart(target) => typing::indicate(service, caller, &target, true).await,
        Command::TypingStop(target) => typing::indicate(service, caller, &target, false).await,
        Command::CreateConversation(create) => {
            conversations::create(service, caller, create, r).await
        }
        Command::JoinConversation(target) => conversations::join(service, caller, &target, r).await,
        Command::AddMembers(add) => conversations::add_members(service, caller, add, r).await,
        Command::RemoveMember(remove) => {
            conversations::remove_member(service, caller, remove, r).await
        }
        Command::ListConversations => reads::list_conversations(service.reads(), p, r).await,
        Command::GetHistory(history) => reads::history(service.reads(), p, history, r).await,
        Command::GetThread(thread) => reads::thread(service.reads(), p, thread, r).await,
        Command::Search(search) => reads::search(service.reads(), p, search, r).await,
        Command::GetPresence(target) => reads::presence(service.reads(), p, &target, r).await,
        Command::MarkRead(marker) => status::mark_read(service, caller, marker, r).await,
        Command::SetPresence(set) => status::set_presence(service, caller, set, r).await,
        Command::ListNotifications(list) => notifications::list(service, caller, list, r).await,
        Command::MarkNotificationsRead(mark) => {
            notifications::mark_read(service, caller, mark, r).await
        }
        Command::GetPreferences => notifications::get_preferences(service, caller, r).await,
        Command::SetPreferences(preferences) => {
            notifications::set_preferences(service, caller, preferences, r).await
        }
    }
}

/// The stored connection behind a frame: the only source of the caller's tenant and role.
pub(crate) async fn registered_caller(
    table: &MessagingTable,
    connection: &messaging_core::ConnectionId,
) -> Result<ConnectionRecord, ProtocolError> {
    match table.connection(connection).await {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) => Err(ProtocolError::new(
            ErrorCode::UnknownConnection,
            "this connection is not registered or has expired; reconnect with a fresh token",
        )),
        Err(e) => Err(store_failure(e)),
    }
}

/// A refused access decision as the client sees it; `what` completes "you may not …".
pub(crate) fn refused(decision: Decision, what: &str) -> Result<(), ProtocolError> {
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

/// Tells the conversation's other sockets. Best effort: the change itself is already stored
/// and visible on the next read, so a failed announcement is logged, not refused.
pub(crate) async fn announce(
    service: &RouteService,
    caller: &ConnectionRecord,
    conversation: &ConversationId,
    frame: ServerFrame,
) {
    let mut job = BroadcastJob::new(
        new_event_id(),
        caller.principal.tenant.clone(),
        conversation.clone(),
        frame.to_json(),
    );
    job.exclude = Some(caller.connection_id.clone());
    if let Err(e) = service.queue.send(&job).await {
        warn!(error = %e, conversation = %conversation, "announcement not queued");
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

/// Refuses unless the caller is a member of the conversation.
pub(crate) async fn require_member(
    service: &RouteService,
    caller: &ConnectionRecord,
    conversation: &messaging_core::ConversationId,
) -> Result<(), ProtocolError> {
    require_member_of(&service.table, &caller.principal, conversation).await
}

/// Refuses unless `p` is a member of the conversation; tells "no such conversation" apart
/// from "not a member" (both within the caller's own tenant).
pub(crate) async fn require_member_of(
    table: &MessagingTable,
    p: &messaging_core::Principal,
    conversation: &messaging_core::ConversationId,
) -> Result<(), ProtocolError> {
    if table
        .is_member(&p.tenant, conversation, &p.user)
        .await
        .map_err(store_failure)?
    {
        return Ok(());
    }
    existing_conversation(table, &p.tenant, conversation).await?;
    Err(ProtocolError::new(
        ErrorCode::NotAMember,
        format!("you are not a member of conversation \"{conversation}\"; join it first"),
    ))
}

/// The conversation in `tenant`, or CONVERSATION_NOT_FOUND.
pub(crate) async fn existing_conversation(
    table: &MessagingTable,
    tenant: &messaging_core::TenantId,
    conversation: &messaging_core::ConversationId,
) -> Result<messaging_store::items::ConversationItem, ProtocolError> {
    table
        .conversation(tenant, conversation)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| not_found(conversation))
}

pub(crate) fn not_found(conversation: &messaging_core::ConversationId) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::ConversationNotFound,
        format!("conversation \"{conversation}\" does not exist in your portal"),
    )
}
