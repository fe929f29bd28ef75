//! The portal's HTTP API (lambda_http, behind API Gateway HTTP API): the reads a page needs
//! without a socket, behind the same token check as `$connect` (`Authorization: Bearer
//! <JWT>`) and answering the same JSON as the WebSocket frames.
//!
//! | method and path | answers |
//! |---|---|
//! | `GET /conversations` | `CONVERSATIONS` (with unread counts) |
//! | `GET /conversations/{conversationId}/messages?limit&cursor&sinceSeq` | `HISTORY` |
//! | `GET /conversations/{conversationId}/messages/{seq}/thread?limit&cursor` | `THREAD` |
//! | `GET /search?q&limit&cursor` | `SEARCH_RESULTS` |
//!
//! Query parameters become the fields of the equivalent WebSocket frame and go through that
//! frame's own parser, so both doors validate alike.

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::info;

use crate::identity::Verifier;
use messaging_aws::MessagingTable;
use messaging_core::protocol::{parse_http_read, HttpRead, ServerFrame, HTTP_QUERY_PARAMETERS};
use messaging_core::signed::Signer;
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, Principal, ProtocolError};

use crate::config::{self, ConfigError};
use crate::reads::{self, Reads};
use crate::unsubscribe;

pub struct HttpApiService {
    pub table: MessagingTable,
    pub cursors: Signer,
    pub verifier: Verifier,
}

impl HttpApiService {
    /// As the Lambda builds it: `TABLE_NAME`, `CURSOR_SECRET`, `JWT_*`.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        // The two secrets are read at once, while the table's client is built: a cold start
        // waits for one round trip, not two, and not for the client after it.
        let cursors = config::start_signer(sdk);
        let verifier = config::start_token_verifier(sdk);
        let table = config::table(sdk)?;
        let (cursors, verifier) = tokio::try_join!(cursors, verifier)?;
        Ok(Self {
            table,
            cursors,
            verifier,
        })
    }
}

/// Handles one request; never fails (errors are JSON ERROR bodies with their status).
pub async fn handle(service: &HttpApiService, request: Request) -> Response<Body> {
    if request.uri().path().trim_end_matches('/') == "/unsubscribe" {
        return unsubscribe(service, &request).await;
    }
    let (status, body) = match answer(service, &request).await {
        Ok(frame) => (StatusCode::OK, frame.to_json()),
        Err(e) => {
            info!(code = %e.code, path = request.uri().path(), "HTTP request refused");
            let status = StatusCode::from_u16(e.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, ServerFrame::error(None, &e).to_json())
        }
    };
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Per-user data: never cached by a shared cache.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// `/unsubscribe?c={clientId}&u={userId}&t={signed token}`: the link in every notification
/// email. The signed token is the authorisation (no bearer token: it is opened from a mailbox).
/// `GET` changes nothing (mail scanners fetch every link) and answers a page whose button
/// POSTs; `POST` (that button, or RFC 8058 one-click from the mail client) turns email off.
async fn unsubscribe(service: &HttpApiService, request: &Request) -> Response<Body> {
    let query = request.query_string_parameters();
    let outcome = unsubscribe::open(
        &service.cursors,
        query.first("c"),
        query.first("u"),
        query.first("t"),
        now_millis(),
    );
    let (status, html) = match (outcome, request.method()) {
        (Err(unsubscribe::Refused::Invalid), _) => (
            StatusCode::BAD_REQUEST,
            unsubscribe::message_page("This unsubscribe link is not valid. Turn email notifications off in the portal's settings instead."),
        ),
        (Err(unsubscribe::Refused::Expired), _) => (
            StatusCode::GONE,
            unsubscribe::message_page("This unsubscribe link has expired. Use the link in a recent email, or turn email notifications off in the portal's settings."),
        ),
        (Ok(_), &Method::GET) => {
            // The same address, posted to: the query string carries the signed token.
            let action = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            (StatusCode::OK, unsubscribe::confirm_page(&action))
        }
        (Ok((tenant, user)), &Method::POST) => {
            let changed = async {
                let mut preferences = service.table.preferences(&tenant, &user).await?;
                preferences.email = false;
                service.table.set_preferences(&tenant, &user, &preferences).await
            }
            .await;
            match changed {
                Ok(()) => {
                    info!(tenant = %tenant, user = %user, "email notifications turned off by unsubscribe link");
                    (StatusCode::OK, unsubscribe::message_page("You will no longer receive email notifications. You can turn them back on in the portal's settings."))
                }
                Err(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    unsubscribe::message_page("That did not work this time; please try again in a minute."),
                ),
            }
        }
        (Ok(_), _) => (
            StatusCode::METHOD_NOT_ALLOWED,
            unsubscribe::message_page("Open this link in a browser."),
        ),
    };
    let mut response = Response::new(Body::Text(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page posts only to itself and loads nothing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn principal(
    service: &HttpApiService,
    request: &Request,
) -> Result<Principal, ProtocolError> {
    let unauthorized = |why: &str| {
        ProtocolError::new(
            ErrorCode::Unauthorized,
            format!("{why}; send Authorization: Bearer <access token>"),
        )
    };
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("no Authorization header"))?
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| unauthorized("the Authorization header is not a bearer token"))?;
    service
        .verifier
        .verify(token.trim())
        .await
        .map_err(|e| unauthorized(&format!("the token was refused ({e})")))
}

async fn answer(service: &HttpApiService, request: &Request) -> Result<ServerFrame, ProtocolError> {
    let p = principal(service, request).await?;
    let query = request.query_string_parameters();
    let query: Vec<(&str, &str)> = HTTP_QUERY_PARAMETERS
        .iter()
        .filter_map(|name| query.first(name).map(|value| (*name, value)))
        .collect();
    let read = parse_http_read(request.method().as_str(), request.uri().path(), &query)?;
    let reads = Reads {
        table: &service.table,
        cursors: &service.cursors,
    };
    match read {
        HttpRead::Conversations(list) => reads::list_conversations(reads, &p, list, None).await,
        HttpRead::History(history) => reads::history(reads, &p, history, None).await,
        HttpRead::Thread(thread) => reads::thread(reads, &p, thread, None).await,
        HttpRead::Search(search) => reads::search(reads, &p, search, None).await,
    }
}
