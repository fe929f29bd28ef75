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
//! | `GET /audit?limit&cursor` | `{entries, nextCursor}`: the tenant's audit log, newest first (OWNER only, [`crate::audit`]) |
//! | `PUT /retention`, `POST /exports`, `POST /erasures`, `POST /offboarding`, `GET /jobs/{jobId}` | the OWNER's door to the tenant's data lifecycle: the server API's requests of the same names, on the caller's tenant ([`crate::lifecycle_requests`]) |
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

use crate::audit;
use crate::config::{self, ConfigError};
use crate::lifecycle_requests::{self, Doors, Requester};
use crate::reads::{self, Reads};
use crate::service_api::body_bytes;
use crate::unsubscribe;
use messaging_aws::{FileStorage, WorkQueue};
use messaging_core::audit::may_read_audit;
use messaging_core::protocol::parse_service_request;

pub struct HttpApiService {
    pub table: MessagingTable,
    pub cursors: Signer,
    pub verifier: Verifier,
    /// Where the OWNER's exports, erasures and offboardings start.
    pub jobs: WorkQueue,
    /// Signs a finished export's download link.
    pub storage: FileStorage,
}

impl HttpApiService {
    /// As the Lambda builds it: `TABLE_NAME`, `CURSOR_SECRET`, `JWT_*`, `LIFECYCLE_QUEUE_URL`,
    /// `FILES_BUCKET`.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        // The two secrets are read at once, while the table's client is built: a cold start
        // waits for one round trip, not two, and not for the client after it.
        let cursors = config::start_signer(sdk);
        let verifier = config::start_token_verifier(sdk);
        let table = config::table(sdk)?;
        let jobs = config::lifecycle_queue(sdk)?;
        let storage = FileStorage::new(sdk, config::required("FILES_BUCKET")?);
        let (cursors, verifier) = tokio::try_join!(cursors, verifier)?;
        Ok(Self {
            table,
            cursors,
            verifier,
            jobs,
            storage,
        })
    }
}

/// Handles one request; never fails (errors are JSON ERROR bodies with their status).
pub async fn handle(service: &HttpApiService, request: Request) -> Response<Body> {
    if request.uri().path().trim_end_matches('/') == "/unsubscribe" {
        return unsubscribe(service, &request).await;
    }
    let (status, body) = match answer(service, &request).await {
        Ok(answer) => answer,
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

/// The paths of the OWNER's lifecycle requests (their first segment).
const LIFECYCLE_PATHS: [&str; 5] = ["retention", "exports", "erasures", "offboarding", "jobs"];

/// The OWNER's lifecycle request: parsed by the server API's own parser on the caller's
/// tenant (the path names no tenant, so no other can be named), carried out as the server
/// API does, recorded in the audit log as the OWNER's.
async fn owner_request(
    service: &HttpApiService,
    p: &Principal,
    request: &Request,
) -> Result<(StatusCode, String), ProtocolError> {
    if !may_read_audit(p.role) {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!(
                "only the tenant's OWNER sets its retention, exports, erases or offboards it; you are {}",
                p.role
            ),
        ));
    }
    let path = format!("/service/tenants/{}{}", p.tenant, request.uri().path());
    let parsed = parse_service_request(request.method().as_str(), &path, body_bytes(request))?;
    let doors = Doors {
        table: &service.table,
        jobs: &service.jobs,
        storage: &service.storage,
    };
    let (status, body) =
        lifecycle_requests::carry_out(doors, Requester::Owner(p), &p.tenant, &parsed.action)
            .await
            .unwrap_or_else(|| {
                Err(ProtocolError::new(
                    ErrorCode::NotFound,
                    "only the lifecycle requests are served here",
                ))
            })?;
    Ok((status, body.to_string()))
}

async fn answer(
    service: &HttpApiService,
    request: &Request,
) -> Result<(StatusCode, String), ProtocolError> {
    let p = principal(service, request).await?;
    let first = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next();
    if first.is_some_and(|segment| LIFECYCLE_PATHS.contains(&segment)) {
        return owner_request(service, &p, request).await;
    }
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
    let frame = match read {
        HttpRead::Conversations(list) => reads::list_conversations(reads, &p, list, None).await,
        HttpRead::History(history) => reads::history(reads, &p, history, None).await,
        HttpRead::Thread(thread) => reads::thread(reads, &p, thread, None).await,
        HttpRead::Search(search) => reads::search(reads, &p, search, None).await,
        HttpRead::Audit(list) => {
            let page = audit::page(&service.table, &service.cursors, &p, list).await?;
            return Ok((StatusCode::OK, page.to_string()));
        }
    };
    frame.map(|frame| (StatusCode::OK, frame.to_json()))
}
