//! Reading what API Gateway puts in a WebSocket event.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use messaging_core::ConnectionId;

/// The connection the event is about, also recorded as the current span's `connection_id`.
/// `None` (logged) when API Gateway sent none, which only a hand-made event can do.
pub fn connection_id(request: &ApiGatewayWebsocketProxyRequest) -> Option<ConnectionId> {
    let context = &request.request_context;
    let parsed = context
        .connection_id
        .as_deref()
        .and_then(|c| ConnectionId::parse(c).ok());
    match &parsed {
        Some(connection) => {
            tracing::Span::current().record("connection_id", connection.as_str());
        }
        None => tracing::error!(
            route = context.route_key.as_deref().unwrap_or_default(),
            "event without a valid requestContext.connectionId"
        ),
    }
    parsed
}
