//! The WebSocket side: the handshake (refused with whatever `$connect` answered), the message
//! loop with API Gateway's limits and timeouts, route dispatch and route responses, and
//! `$disconnect` with the close code.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use messaging_core::time::now_millis;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use crate::connections::{Live, Outbound};
use crate::routes::{CONNECT, DEFAULT, DISCONNECT};
use crate::{events, Shared};

/// Frames waiting for a slow client before `@connections` POSTs wait too.
const OUTBOUND_BUFFER: usize = 256;
/// Initial read buffer per socket.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// A new connection id, as API Gateway makes them (16 characters of base64, may hold `+`, `/`).
pub fn new_connection_id() -> String {
    events::new_request_id()
}

fn status_response(status: u16, body: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, body.unwrap_or_default().to_owned()).into_response()
}

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Path(stage): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match (ws, stage == shared.api.stage) {
        (Ok(ws), true) => ws,
        // A handshake for another stage: API Gateway's WebSocket API answers 403.
        (Ok(_), false) => {
            return (
                StatusCode::FORBIDDEN,
                json!({ "message": "Forbidden" }).to_string(),
            )
                .into_response()
        }
        // A plain request on the stage's own path: the handshake's error.
        (Err(rejection), true) => return rejection.into_response(),
        // Any other path: nothing is routed there (what the HTTP API answers too).
        (Err(_), false) => return crate::not_found().await,
    };
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
    let live = Arc::new(Live::new(
        new_connection_id(),
        now_millis(),
        peer.ip().to_string(),
        user_agent,
        tx,
    ));
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();

    let mut protocol = None;
    if let Some(route) = shared.routes.get(CONNECT) {
        let event = events::connect(&shared.api, &live, &header_pairs, &query);
        match shared.functions.invoke(&route.function, event).await {
            Ok(response) => {
                let status = response
                    .get("statusCode")
                    .and_then(Value::as_u64)
                    .unwrap_or(200) as u16;
                if !(200..300).contains(&status) {
                    info!(status, "handshake refused by $connect");
                    return status_response(status, response.get("body").and_then(Value::as_str));
                }
                protocol = response
                    .get("headers")
                    .and_then(|h| {
                        h.get("Sec-WebSocket-Protocol")
                            .or_else(|| h.get("sec-websocket-protocol"))
                    })
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            Err(e) => {
                warn!(error = %e, "$connect failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "message": "Internal server error" }).to_string(),
                )
                    .into_response();
            }
        }
    }
    // tungstenite reserves its read buffer (128 KiB by default) per socket up front; 4 KiB
    // grows on demand to the 128 KB message limit and cuts idle memory per connection.
    let mut ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_frame_size(shared.limits.max_frame_bytes)
        .max_message_size(shared.limits.max_message_bytes);
    if let Some(protocol) = protocol {
        ws = ws.protocols([protocol]);
    }
    let failed = (shared.clone(), live.clone());
    ws.on_failed_upgrade(move |error| {
        warn!(%error, "upgrade failed after $connect accepted");
        let (shared, live) = failed;
        tokio::spawn(async move { disconnect(&shared, &live, 1006, "Upgrade failed").await });
    })
    .on_upgrade(move |socket| run(shared, live, rx, socket))
}

fn too_big(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(
        error.into_inner().downcast_ref::<Error>(),
        Some(Error::Capacity(_))
    )
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// One connection's life, from the upgrade to `$disconnect`.
async fn run(
    shared: Arc<Shared>,
    live: Arc<Live>,
    mut outbound: mpsc::Receiver<Outbound>,
    mut socket: WebSocket,
) {
    shared.connections.insert(live.clone());
    let mut shutdown = shared.shutdown.clone();
    let ends_at = Instant::now() + shared.limits.max_duration;
    let mut last_activity = Instant::now();
    let (code, reason): (u16, String) = loop {
        tokio::select! {
            incoming = socket.recv() => {
                let now = now_millis();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        last_activity = Instant::now();
                        live.touch(now);
                        tokio::spawn(dispatch(shared.clone(), live.clone(), text.to_string(), false));
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        last_activity = Instant::now();
                        live.touch(now);
                        let body = base64::engine::general_purpose::STANDARD.encode(&bytes);
                        tokio::spawn(dispatch(shared.clone(), live.clone(), body, true));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_activity = Instant::now();
                        live.touch(now);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(f) => (f.code, f.reason.to_string()),
                            None => (1005, "Client-side close frame status not set".into()),
                        };
                    }
                    Some(Err(error)) => {
                        if too_big(error) {
                            close(&mut socket, 1009, "Message too big").await;
                            break (1009, "Message too big".into());
                        }
                        break (1006, "Connection closed abnormally".into());
                    }
                    None => break (1006, "Connection closed abnormally".into()),
                }
            }
            next = outbound.recv() => match next {
                Some(Outbound::Text(text)) => {
                    if let Some(log) = &shared.frame_log {
                        log.record(&text);
                    }
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break (1006, "Connection closed abnormally".into());
                    }
                }
                Some(Outbound::Binary(bytes)) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break (1006, "Connection closed abnormally".into());
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    close(&mut socket, code, &reason).await;
                    break (code, reason);
                }
                None => break (1006, "Connection closed abnormally".into()),
            },
            _ = sleep_until(last_activity + shared.limits.idle_timeout) => {
                close(&mut socket, 1001, "Going away").await;
                break (1001, "Idle timeout".into());
            }
            _ = sleep_until(ends_at) => {
                close(&mut socket, 1001, "Going away").await;
                break (1001, "Maximum connection duration reached".into());
            }
            _ = shutdown.changed() => {
                close(&mut socket, 1001, "Going away").await;
                break (1001, "Gateway shutting down".into());
            }
        }
    };
    shared.connections.remove(&live.id);
    disconnect(&shared, &live, code, &reason).await;
}

async fn disconnect(shared: &Shared, live: &Live, code: u16, reason: &str) {
    if let Some(route) = shared.routes.get(DISCONNECT) {
        let event = events::disconnect(&shared.api, live, code, reason, now_millis());
        if let Err(e) = shared.functions.invoke(&route.function, event).await {
            warn!(error = %e, connection_id = %live.id, "$disconnect failed");
        }
    }
}

/// One message: select the route, invoke its function, send its response back on a two-way
/// route, or API Gateway's own error messages.
async fn dispatch(shared: Arc<Shared>, live: Arc<Live>, body: String, is_base64: bool) {
    let route = if is_base64 {
        shared.routes.get(DEFAULT)
    } else {
        shared.routes.select(&body)
    };
    let request_id = events::new_request_id();
    let gateway_error = |message: &str| {
        Outbound::Text(
            json!({ "message": message, "connectionId": live.id, "requestId": request_id })
                .to_string(),
        )
    };
    let Some(route) = route else {
        live.send(gateway_error("Forbidden")).await;
        return;
    };
    let event = events::message(
        &shared.api,
        &live,
        &route.key,
        &body,
        is_base64,
        now_millis(),
    );
    match shared.functions.invoke(&route.function, event).await {
        Ok(response) if route.returns_response => {
            let Some(body) = response
                .get("body")
                .and_then(Value::as_str)
                .filter(|b| !b.is_empty())
            else {
                return;
            };
            if body.len() > shared.limits.max_message_bytes {
                // API Gateway cannot send a message over its limit: the client gets its error.
                warn!(
                    route = %route.key,
                    bytes = body.len(),
                    limit = shared.limits.max_message_bytes,
                    "route response larger than a WebSocket message may be; dropped as API Gateway drops it"
                );
                live.send(gateway_error("Internal server error")).await;
                return;
            }
            let outbound = if response.get("isBase64Encoded").and_then(Value::as_bool) == Some(true)
            {
                match base64::engine::general_purpose::STANDARD.decode(body) {
                    Ok(bytes) => Outbound::Binary(bytes),
                    Err(_) => gateway_error("Internal server error"),
                }
            } else {
                Outbound::Text(body.to_owned())
            };
            live.send(outbound).await;
        }
        Ok(_) => {}
        Err(e) => {
            warn!(error = %e, route = %route.key, "integration failed");
            live.send(gateway_error("Internal server error")).await;
        }
    }
}
