//! `$disconnect`: remove the connection and everything hanging off it.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use messaging_store::{MessagingTable, StoreError};
use tracing::info;

use crate::config::{self, ConfigError};
use crate::{event, response};

pub struct DisconnectService {
    pub table: MessagingTable,
}

impl DisconnectService {
    /// As the Lambda builds it: `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
        })
    }
}

/// Returns an error only for a retryable store failure, so Lambda's own retry can help;
/// API Gateway ignores the response either way.
#[tracing::instrument(skip_all, fields(connection_id))]
pub async fn handle(
    service: &DisconnectService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, StoreError> {
    let context = &request.request_context;
    let Some(connection) = event::connection_id(request) else {
        return Ok(response::status(400));
    };
    match service.table.remove_connection(&connection).await? {
        Some(removed) => info!(
            tenant = %removed.principal.tenant,
            user = %removed.principal.user,
            subscriptions = removed.subscriptions,
            went_offline = removed.went_offline,
            status = context.disconnect_status_code,
            "disconnected"
        ),
        None => info!("disconnect of an unknown or already removed connection"),
    }
    Ok(response::status(200))
}
