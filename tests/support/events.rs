//! Builders for the events API Gateway sends to WebSocket integrations, in the exact JSON
//! shape of the fixtures under `events/` (deserialised, as Lambda does, from JSON).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{json, Value};

/// An API-Gateway-style connection id (12 random bytes, base64: 16 characters ending in `=`
/// like `TWegAcC4EowCHnA=`).
pub fn new_connection_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{}=", &hex[..15])
}

fn context(connection: &str, route_key: &str, event_type: &str) -> Value {
    json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": "Ab1cDEf2GhIJKLM=",
        "requestTime": "26/Nov/2026:02:15:00 +0000",
        "messageDirection": "IN",
        "stage": "local",
        "connectedAt": messaging_core::time::now_millis(),
        "requestTimeEpoch": messaging_core::time::now_millis(),
        "identity": { "sourceIp": "127.0.0.1" },
        "requestId": "Ab1cDEf2GhIJKLM=",
        "domainName": "127.0.0.1",
        "connectionId": connection,
        "apiId": "local"
    })
}

fn parse(value: Value) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(value).expect("a valid API Gateway WebSocket event")
}

pub fn connect(connection: &str, token: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    let mut event = json!({
        "headers": { "Host": "127.0.0.1", "Sec-WebSocket-Version": "13" },
        "multiValueHeaders": { "Host": ["127.0.0.1"], "Sec-WebSocket-Version": ["13"] },
        "requestContext": context(connection, "$connect", "CONNECT"),
        "isBase64Encoded": false
    });
    if let Some(token) = token {
        event["queryStringParameters"] = json!({ "token": token });
        event["multiValueQueryStringParameters"] = json!({ "token": [token] });
    }
    parse(event)
}

/// [`connect`] with `connectedAt` (epoch ms) as given.
pub fn connect_at(
    connection: &str,
    token: Option<&str>,
    connected_at: i64,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = connect(connection, token);
    event.request_context.connected_at = connected_at;
    event
}

pub fn message(connection: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut context = context(connection, "$default", "MESSAGE");
    context["messageId"] = json!("Ab1cDEf2GhIJKLM=");
    parse(json!({ "requestContext": context, "body": body, "isBase64Encoded": false }))
}

pub fn disconnect(connection: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut context = context(connection, "$disconnect", "DISCONNECT");
    context["disconnectStatusCode"] = json!(1000);
    context["disconnectReason"] = json!("Client-side close frame status set");
    parse(json!({
        "headers": { "Host": "127.0.0.1" },
        "multiValueHeaders": { "Host": ["127.0.0.1"] },
        "requestContext": context,
        "isBase64Encoded": false
    }))
}
