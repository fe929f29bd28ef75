//! The events API Gateway sends to a WebSocket API's integrations, field for field.

use messaging_core::time::rfc3339_millis;
use serde_json::{json, Map, Value};

use crate::connections::Live;

/// What the gateway knows of itself when writing events.
#[derive(Debug, Clone)]
pub struct ApiIdentity {
    pub api_id: String,
    pub stage: String,
    pub domain_name: String,
}

/// An id in API Gateway's style (base64 of random bytes, like `TWegAcC4EowCHnA=`).
pub fn new_request_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..11])
}

/// `requestTime`: `26/Nov/2026:02:15:00 +0000`.
pub fn request_time(epoch_millis: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = rfc3339_millis(epoch_millis); // YYYY-MM-DDTHH:MM:SS.mmmZ
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{}/{}/{}:{} +0000",
        &iso[8..10],
        MONTHS[month.saturating_sub(1) % 12],
        &iso[0..4],
        &iso[11..19]
    )
}

fn context(
    api: &ApiIdentity,
    live: &Live,
    route_key: &str,
    event_type: &str,
    now: i64,
) -> Map<String, Value> {
    let request_id = new_request_id();
    let identity = live.identity();
    let Value::Object(map) = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": live.connected_at,
        "requestTimeEpoch": now,
        "identity": identity,
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": live.id,
        "apiId": api.api_id,
    }) else {
        unreachable!("a json! object literal is an object")
    };
    map
}

fn pairs(values: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in values {
        single.insert(k.clone(), json!(v));
        match multi.get_mut(k) {
            Some(Value::Array(list)) => list.push(json!(v)),
            _ => {
                multi.insert(k.clone(), json!([v]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// `$connect`: headers and query string of the upgrade request.
pub fn connect(
    api: &ApiIdentity,
    live: &Live,
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Value {
    let now = live.connected_at;
    let (headers, multi_headers) = pairs(headers);
    let mut event = json!({
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context(api, live, "$connect", "CONNECT", now),
        "isBase64Encoded": false,
    });
    if !query.is_empty() {
        let (query, multi_query) = pairs(query);
        event["queryStringParameters"] = query;
        event["multiValueQueryStringParameters"] = multi_query;
    }
    event
}

/// A message on a route; binary frames arrive base64-encoded.
pub fn message(
    api: &ApiIdentity,
    live: &Live,
    route_key: &str,
    body: &str,
    is_base64: bool,
    now: i64,
) -> Value {
    let mut context = context(api, live, route_key, "MESSAGE", now);
    context.insert("messageId".into(), json!(new_request_id()));
    json!({ "requestContext": context, "body": body, "isBase64Encoded": is_base64 })
}

/// `$disconnect`, with the close code and reason.
pub fn disconnect(api: &ApiIdentity, live: &Live, code: u16, reason: &str, now: i64) -> Value {
    let mut context = context(api, live, "$disconnect", "DISCONNECT", now);
    context.insert("disconnectStatusCode".into(), json!(code));
    context.insert("disconnectReason".into(), json!(reason));
    let host = json!(api.domain_name);
    json!({
        "headers": { "Host": host },
        "multiValueHeaders": { "Host": [host] },
        "requestContext": context,
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_is_in_api_gateways_format() {
        assert_eq!(
            request_time(1_736_937_000_000),
            "15/Jan/2025:10:30:00 +0000"
        );
    }

    #[test]
    fn request_ids_look_like_api_gateways() {
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
    }
}
