//! Building the responses API Gateway expects from a WebSocket route integration.
//!
//! The `$default` route has a route response, so the body of what `route` returns is sent to
//! the caller as a frame (ACK or ERROR) without an extra `@connections` call.

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;

use messaging_core::protocol::ServerFrame;
use messaging_core::ProtocolError;

pub fn status(code: u16) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(code);
    response
}

pub fn with_body(code: u16, body: String) -> ApiGatewayProxyResponse {
    let mut response = status(code);
    response.body = Some(Body::Text(body));
    response
}

pub fn frame(code: u16, frame: &ServerFrame) -> ApiGatewayProxyResponse {
    with_body(code, frame.to_json())
}

pub fn error(request_id: Option<String>, error: &ProtocolError) -> ApiGatewayProxyResponse {
    frame(
        error.code.http_status(),
        &ServerFrame::error(request_id, error),
    )
}
