//! The `route` function (`$default`): every frame of [`Command`]'s table. The frame's journey
//! (parse, caller, dispatch, answer) is [`crate::websocket`]'s; each handler is an
//! `impl Handle<Payload> for Call<'_, RouteService>` in the module of its area:
//!
//! | module | frames |
//! |---|---|
//! | `chat` | CHAT_MESSAGE |
//! | `changes` | EDIT_MESSAGE, DELETE_MESSAGE, ADD_REACTION, REMOVE_REACTION |
//! | `typing` | TYPING_START, TYPING_STOP |
//! | `conversations` | CREATE_CONVERSATION, JOIN_CONVERSATION, ADD_MEMBERS, REMOVE_MEMBER |
//! | `reads` | LIST_CONVERSATIONS, GET_HISTORY, GET_THREAD, SEARCH, GET_PRESENCE (served by [`crate::reads`]) |
//! | `status` | MARK_READ, SET_PRESENCE, PING |
//! | `notifications` | LIST_NOTIFICATIONS, MARK_NOTIFICATIONS_READ, GET_PREFERENCES, SET_PREFERENCES |

mod changes;
mod chat;
mod conversations;
mod notifications;
mod reads;
mod status;
mod typing;

use crate::throttle::Limiter;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};

use messaging_aws::{BroadcastQueue, ConnectionsApi, MessagingTable, Sns};
use messaging_core::protocol::Command;
use messaging_core::signed::Signer;

use crate::config::{self, ConfigError};
use crate::websocket::{self, Callers, FrameService};

#[derive(Clone)]
pub struct RouteService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
    /// Signs the page cursors of GET_HISTORY, GET_THREAD and SEARCH.
    pub cursors: Signer,
    /// Checks that a push endpoint set in SET_PREFERENCES is the caller's own.
    pub sns: Sns,
    /// This sandbox's rate limiter (kept across invocations).
    pub limiter: Limiter,
    /// This sandbox's recent callers (kept across invocations).
    pub callers: Callers,
    /// Posts a new message to its first [`Self::direct_fanout`] recipients (`chat`).
    pub api: ConnectionsApi,
    /// PostToConnection calls in flight while doing so.
    pub fanout_concurrency: usize,
    /// Recipients of a new message posted here rather than through the broadcast queue
    /// ([`config::direct_fanout`]); 0 queues every message.
    pub direct_fanout: usize,
}

impl RouteService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`, `CURSOR_SECRET`,
    /// `WEBSOCKET_MANAGEMENT_ENDPOINT`, `FANOUT_CONCURRENCY`, `DIRECT_FANOUT`.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        // The secret's round trip first: the clients below are built while it is in flight.
        let cursors = config::start_signer(sdk);
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            limiter: Limiter::new(config::rate_limits()?),
            callers: Callers::default(),
            sns: config::sns(sdk),
            api: config::connections_api(sdk)?,
            fanout_concurrency: config::fanout_concurrency()?,
            direct_fanout: config::direct_fanout()?,
            cursors: cursors.await?,
        })
    }
}

impl FrameService for RouteService {
    type Commands = Command;

    fn table(&self) -> &MessagingTable {
        &self.table
    }

    fn queue(&self) -> &BroadcastQueue {
        &self.queue
    }

    fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    fn callers(&self) -> &Callers {
        &self.callers
    }
}

/// Handles one `$default` frame.
pub async fn handle(
    service: &RouteService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    websocket::handle(service, request).await
}
