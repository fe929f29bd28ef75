//! `$connect`: verify the token, record the connection, mark the user online.

use crate::identity::Verifier;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use messaging_aws::{BroadcastQueue, MessagingTable};
use messaging_core::protocol::PresenceStatus;
use messaging_core::time::now_millis;
use serde_json::json;
use tracing::{error, info, warn};

use crate::config::{self, ConfigError};
use crate::metrics::{self, Metric};
use crate::{event, outbox, response};

pub struct ConnectService {
    pub table: MessagingTable,
    pub verifier: Verifier,
    pub queue: BroadcastQueue,
}

impl ConnectService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL` and the `JWT_*` settings.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        // The key's round trip first: the clients below are built while it is in flight.
        let verifier = config::start_token_verifier(sdk);
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            verifier: verifier.await?,
        })
    }
}

/// A refused handshake: API Gateway answers the client's upgrade with this status.
fn refuse(code: u16, reason: &str) -> ApiGatewayProxyResponse {
    let code_name = if code == 401 {
        "UNAUTHORIZED"
    } else {
        "UNAVAILABLE"
    };
    response::with_body(
        code,
        json!({ "code": code_name, "message": reason }).to_string(),
    )
}

#[tracing::instrument(skip_all, fields(connection_id, tenant, user))]
pub async fn handle(
    service: &ConnectService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(connection) = event::connection_id(request) else {
        return refuse(400, "missing connection id");
    };
    let token = request
        .query_string_parameters
        .first("token")
        .unwrap_or_default();
    let (principal, contacts) = match service.verifier.verify_with_contacts(token).await {
        Ok(verified) => verified,
        Err(reason) => {
            // The reason is logged; the token is not.
            warn!(%reason, "connection refused");
            return refuse(401, &reason.to_string());
        }
    };
    let span = tracing::Span::current();
    span.record("tenant", principal.tenant.as_str());
    span.record("user", principal.user.as_str());

    let context = &request.request_context;
    let connected_at = if context.connected_at > 0 {
        context.connected_at
    } else {
        now_millis()
    };
    match service
        .table
        .register_connection(&principal, &contacts, &connection, connected_at)
        .await
    {
        Ok(registered) => {
            info!(subscriptions = registered.conversations.len(), role = %registered.principal.role, "connected");
            metrics::emit(&principal.tenant, &[(Metric::Connections, 1.0)]);
            // The ActiveUsers gauge (published by notify-batch) counts who connected today.
            // Once a day: the user item read at registration says whether today is counted.
            let day = &messaging_core::time::rfc3339_millis(now_millis())[..10];
            if registered.active_day.as_deref() != Some(day) {
                if let Err(e) = service
                    .table
                    .record_active(&principal.tenant, &principal.user, day)
                    .await
                {
                    warn!(error = %e, "active user not recorded");
                }
            }
            if registered.first_connection {
                let (tenant, user) = (&principal.tenant, &principal.user);
                outbox::announce_presence(
                    &service.queue,
                    tenant,
                    user,
                    PresenceStatus::Online,
                    &registered.presence,
                    Some(&connection),
                )
                .await;
            }
            response::status(200)
        }
        Err(e) => {
            error!(error = %e, "could not record the connection; undoing");
            metrics::emit(&principal.tenant, &[(Metric::Errors, 1.0)]);
            // API Gateway will not send $disconnect for a refused connection: clean up here.
            if let Err(cleanup) = service.table.remove_connection(&connection).await {
                error!(error = %cleanup, "cleanup after a failed connect failed; TTL will expire the records");
            }
            refuse(
                if e.is_retryable() { 503 } else { 500 },
                "could not open the connection; try again",
            )
        }
    }
}
