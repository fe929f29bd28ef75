//! `$disconnect`: remove the connection and everything hanging off it.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use messaging_aws::{AwsError, BroadcastQueue, MessagingTable};
use messaging_core::protocol::PresenceStatus;
use tracing::info;

use crate::config::{self, ConfigError};
use crate::{event, outbox, response};

pub struct DisconnectService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
}

impl DisconnectService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
        })
    }
}

/// Returns an error only for a retryable store failure, so Lambda's own retry can help;
/// API Gateway ignores the response either way.
#[tracing::instrument(skip_all, fields(connection_id))]
pub async fn handle(
    service: &DisconnectService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, AwsError> {
    let Some(connection) = event::connection_id(request) else {
        return Ok(response::status(400));
    };
    let Some(removed) = service.table.remove_connection(&connection).await? else {
        info!("disconnect of an unknown or already removed connection");
        return Ok(response::status(200));
    };
    let p = &removed.principal;
    info!(
        tenant = %p.tenant,
        user = %p.user,
        subscriptions = removed.subscriptions.len(),
        went_offline = removed.went_offline,
        status = request.request_context.disconnect_status_code,
        "disconnected"
    );
    if removed.went_offline {
        outbox::announce_presence(
            &service.queue,
            &p.tenant,
            &p.user,
            PresenceStatus::Offline,
            &removed.presence,
            None,
        )
        .await;
    }
    Ok(response::status(200))
}
