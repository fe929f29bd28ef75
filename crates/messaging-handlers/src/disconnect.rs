//! `$disconnect`: remove the connection and everything hanging off it.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use messaging_core::ConnectionId;
use messaging_store::{MessagingTable, StoreError};
use tracing::{error, info};

use crate::response;

pub struct DisconnectService {
    pub table: MessagingTable,
}

/// Returns an error only for a retryable store failure, so Lambda's own retry can help;
/// API Gateway ignores the response either way.
#[tracing::instrument(skip_all, fields(connection_id))]
pub async fn handle(
    service: &DisconnectService,
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, StoreError> {
    let context = &request.request_context;
    let Some(connection) = context
        .connection_id
        .as_deref()
        .and_then(|c| ConnectionId::parse(c).ok())
    else {
        error!("$disconnect event without a valid requestContext.connectionId");
        return Ok(response::status(400));
    };
    tracing::Span::current().record("connection_id", connection.as_str());
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
