//! The template's HTTP API (`HttpApi` events), served on the gateway's port: each route's
//! request becomes an API Gateway payload-2.0 event, goes through JSON to the function as
//! Lambda passes it, and its response comes back the same way.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use base64::Engine;
use messaging_core::encoding::form_decode;
use messaging_core::time::now_millis;
use messaging_devstack::template::HttpRouteDefinition;
use serde_json::{json, Map, Value};
use tracing::warn;

use crate::events::{new_request_id, request_time};
use crate::Shared;

/// API Gateway's HTTP API payload limit.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One axum route per template path, each method to its function.
pub(crate) fn routes(
    definitions: &[HttpRouteDefinition],
) -> Vec<(String, MethodRouter<Arc<Shared>>)> {
    let mut by_path: BTreeMap<String, MethodRouter<Arc<Shared>>> = BTreeMap::new();
    for route in definitions {
        let Ok(filter) = MethodFilter::try_from(
            axum::http::Method::from_bytes(route.method.as_bytes())
                .unwrap_or(axum::http::Method::GET),
        ) else {
            warn!(method = %route.method, path = %route.path, "HTTP API method not served locally");
            continue;
        };
        let (function, route_key, iam) = (
            route.function.clone(),
            format!("{} {}", route.method, route.path),
            route.iam,
        );
        let handler = move |state, peer, params, request| {
            invoke(
                state,
                peer,
                params,
                request,
                function.clone(),
                route_key.clone(),
                iam,
            )
        };
        let entry = by_path.remove(&route.path).unwrap_or_default();
        by_path.insert(route.path.clone(), entry.merge(on(filter, handler)));
    }
    by_path.into_iter().collect()
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "message": text }).to_string(),
    )
        .into_response()
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
    function: String,
    route_key: String,
    iam: bool,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    // An AWS_IAM route: API Gateway checks the signature and the caller's policy first.
    let mut authorizer = None;
    if iam {
        let route_arn = format!(
            "arn:aws:execute-api:{}:123456789012:{}/$default/{}{}",
            shared.region,
            shared.api.api_id,
            parts.method,
            parts.uri.path()
        );
        let signed = crate::sigv4::SignedRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or_default(),
            headers: &parts.headers,
            body: &body,
        };
        match crate::sigv4::verify(
            &shared.service_callers,
            &shared.region,
            &route_arn,
            &signed,
            now_millis(),
        ) {
            Ok(caller) => authorizer = Some(crate::sigv4::authorizer_context(caller)),
            Err(crate::sigv4::Refused(reason)) => {
                warn!(route = %route_key, %reason, "AWS_IAM route refused");
                return message(StatusCode::FORBIDDEN, &reason);
            }
        }
    }
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        match headers.get_mut(name.as_str()) {
            // API Gateway joins repeated headers with commas.
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let mut query = Map::new();
    for (name, value) in form_pairs(&raw_query) {
        match query.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name, Value::String(value));
            }
        }
    }
    let (text, is_base64) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&body),
            true,
        ),
    };
    let now = now_millis();
    let request_id = new_request_id();
    let user_agent = headers
        .get("user-agent")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": shared.api.api_id,
            "domainName": shared.api.domain_name,
            "domainPrefix": shared.api.api_id,
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": request_time(now),
            "timeEpoch": now,
        },
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if let Some(authorizer) = authorizer {
        event["requestContext"]["authorizer"] = authorizer;
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !body.is_empty() {
        event["body"] = Value::String(text);
    }
    match shared.functions.invoke(&function, event).await {
        Ok(response) => to_response(&response),
        Err(e) => {
            warn!(function = %function, error = %e, "HTTP API integration failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// A payload-2.0 function response as the HTTP response API Gateway sends.
fn to_response(response: &Value) -> Response {
    let status = response["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let body = match (
        response["body"].as_str(),
        response["isBase64Encoded"].as_bool(),
    ) {
        (Some(text), Some(true)) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default(),
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().append(name, value);
        }
    };
    if let Some(headers) = response["headers"].as_object() {
        for (name, value) in headers {
            add(name, value.as_str().unwrap_or_default());
        }
    }
    if let Some(headers) = response["multiValueHeaders"].as_object() {
        for (name, values) in headers {
            for value in values.as_array().into_iter().flatten() {
                add(name, value.as_str().unwrap_or_default());
            }
        }
    }
    for cookie in response["cookies"].as_array().into_iter().flatten() {
        add("set-cookie", cookie.as_str().unwrap_or_default());
    }
    out
}

/// `application/x-www-form-urlencoded` pairs of a query string, decoded.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::form_pairs;

    #[test]
    fn query_strings_are_decoded_like_api_gateway_does() {
        assert_eq!(
            form_pairs("q=contract+renewal&cursor=ab%2Ecd&limit=5&bad=%zz&tail=%4"),
            [
                ("q".into(), "contract renewal".into()),
                ("cursor".into(), "ab.cd".into()),
                ("limit".into(), "5".into()),
                ("bad".into(), "%zz".into()),
                ("tail".into(), "%4".into()),
            ]
        );
    }
}
