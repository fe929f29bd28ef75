//! A recording stand-in for API Gateway's `@connections` API, for the handler-level tests
//! (the local gateway serves the real thing for end-to-end tests). It answers POST with 200,
//! or, for ids the test chooses, 410 GoneException / 429 LimitExceededException / 500, or
//! slowly, in the error shape the Rust SDK maps to its typed errors. Unlike moto's endpoint, it keeps what was posted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
struct Recorded {
    posts: Vec<(String, String)>,
    /// The access key id of every request's SigV4 signature (who posted).
    signers: HashSet<String>,
    gone: HashSet<String>,
    /// Remaining 500 answers per connection id.
    failing: HashMap<String, u32>,
    /// Remaining 429 LimitExceededException answers per connection id.
    limited: HashMap<String, u32>,
    /// How long every post takes to answer.
    delay: std::time::Duration,
}

#[derive(Clone)]
pub struct ConnectionsRecorder {
    state: Arc<Mutex<Recorded>>,
    endpoint: String,
}

impl ConnectionsRecorder {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Recorded::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let endpoint = format!("http://{}/test", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, endpoint }
    }

    /// The management endpoint (with a stage path, as the real one has).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// From now on, posts to `connection` answer 410 Gone.
    pub fn mark_gone(&self, connection: &str) {
        self.state
            .lock()
            .unwrap()
            .gone
            .insert(connection.to_owned());
    }

    /// The next `times` posts to `connection` answer 500.
    pub fn fail(&self, connection: &str, times: u32) {
        self.state
            .lock()
            .unwrap()
            .failing
            .insert(connection.to_owned(), times);
    }

    /// The next `times` posts to `connection` answer 429 LimitExceededException (API
    /// Gateway's throttling of `@connections`).
    pub fn limit(&self, connection: &str, times: u32) {
        self.state
            .lock()
            .unwrap()
            .limited
            .insert(connection.to_owned(), times);
    }

    /// From now on, every post takes `delay` to answer (a slow API Gateway).
    pub fn slow(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Successful posts so far: (connection id, body).
    pub fn posts(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().posts.clone()
    }

    /// The access key ids that signed a request so far (an IAM test maps them to functions).
    pub fn signers(&self) -> HashSet<String> {
        self.state.lock().unwrap().signers.clone()
    }

    /// Takes and clears the successful posts.
    pub fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.state.lock().unwrap().posts)
    }
}

fn error(status: StatusCode, kind: &str) -> Response {
    let body = format!(r#"{{"__type":"{kind}","message":"{kind} from the test recorder"}}"#);
    (
        status,
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        body,
    )
        .into_response()
}

async fn handle(
    State(state): State<Arc<Mutex<Recorded>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // `AWS4-HMAC-SHA256 Credential={access key id}/{date}/{region}/execute-api/aws4_request, …`
    if let Some(key) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|v| v.split('/').next())
    {
        state.lock().unwrap().signers.insert(key.to_owned());
    }
    let Some(raw) = uri.path().split("/@connections/").nth(1) else {
        return error(StatusCode::NOT_FOUND, "NotFoundException");
    };
    let connection = percent_decode(raw);
    if method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "BadRequestException");
    }
    let delay = state.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().unwrap();
    if state.gone.contains(&connection) {
        return error(StatusCode::GONE, "GoneException");
    }
    if let Some(left) = state.limited.get_mut(&connection) {
        if *left > 0 {
            *left -= 1;
            return error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException");
        }
    }
    if let Some(left) = state.failing.get_mut(&connection) {
        if *left > 0 {
            *left -= 1;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
            );
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    crate::frame_log::record(&text);
    state.posts.push((connection, text));
    StatusCode::OK.into_response()
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&raw[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
