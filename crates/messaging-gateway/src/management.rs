//! The `@connections` management API, answering as API Gateway does so the unmodified
//! aws-sdk-apigatewaymanagement client (and the AWS CLI, boto3) work against it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use messaging_core::time::rfc3339_millis;
use messaging_core::ConnectionId;
use serde_json::json;

use crate::connections::{Live, Outbound};
use crate::Shared;

/// An error in the restJson1 shape the SDKs map to their typed errors.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "message": message }).to_string();
    (
        status,
        [
            ("x-amzn-ErrorType", kind),
            ("content-type", "application/json"),
        ],
        body,
    )
        .into_response()
}

/// API Gateway's refusals of a connection id.
pub(crate) struct Refusal(StatusCode, &'static str, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

const GONE: Refusal = Refusal(
    StatusCode::GONE,
    "GoneException",
    "the connection is closed or never existed",
);
const FORBIDDEN: Refusal = Refusal(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
const BAD_ID: Refusal = Refusal(
    StatusCode::BAD_REQUEST,
    "BadRequestException",
    "Invalid connectionId",
);

/// The live connection `id` names on this stage, or API Gateway's refusal.
fn find(shared: &Shared, stage: &str, id: &str) -> Result<Arc<Live>, Refusal> {
    if stage != shared.api.stage {
        return Err(FORBIDDEN);
    }
    if ConnectionId::parse(id).is_err() {
        return Err(BAD_ID);
    }
    shared.connections.get(id).ok_or(GONE)
}

/// POST: send the body to the connection (text when it is UTF-8, binary otherwise).
pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let live = find(&shared, &stage, &id)?;
    let limit = shared.limits.max_message_bytes;
    if body.len() > limit {
        let message = format!("payload of {} bytes exceeds {limit}", body.len());
        return Ok(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            &message,
        ));
    }
    let outbound = match String::from_utf8(body.to_vec()) {
        Ok(text) => Outbound::Text(text),
        Err(e) => Outbound::Binary(e.into_bytes()),
    };
    if !live.send(outbound).await {
        return Err(GONE);
    }
    shared.connections.count_post();
    Ok(StatusCode::OK.into_response())
}

/// GET: when the connection opened, who it is, when it was last active.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let live = find(&shared, &stage, &id)?;
    let identity = live.identity();
    let body = json!({
        "connectedAt": rfc3339_millis(live.connected_at),
        "identity": identity,
        "lastActiveAt": rfc3339_millis(live.last_active_at()),
    });
    let headers = [("content-type", "application/json")];
    Ok((StatusCode::OK, headers, body.to_string()).into_response())
}

/// DELETE: close the connection (its `$disconnect` then runs).
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let live = find(&shared, &stage, &id)?;
    live.send(Outbound::Close(1000, "Connection deleted".into()))
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
