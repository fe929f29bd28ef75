//! A fault-injecting HTTP proxy in front of moto: the handlers' AWS clients point at it, and
//! a test decides which calls misbehave. Calls are recognised by the `X-Amz-Target` header
//! the SDK sends for JSON-protocol services (`DynamoDB_20120810.TransactWriteItems`,
//! `AmazonSQS.SendMessage`, ...); every call it does not fault is forwarded to moto as is.
//!
//! | fault | what the caller sees | what moto saw |
//! |---|---|---|
//! | [`Fault::Throttle`] | 400 `ThrottlingException` | nothing |
//! | [`Fault::ServerError`] | 500 `InternalServerError` | nothing |
//! | [`Fault::Stall`] | no answer for the given time, then the answer | the call, at once |
//! | [`Fault::LoseResponse`] | the connection closed without an answer | the call (it was applied) |
//! | [`Fault::Refuse`] | the connection closed at once (an endpoint restarting) | nothing |
//!
//! One request per connection (`Connection: close` both ways), which the SDK handles; the
//! proxy never reads more than one request's bytes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a faulted call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    Stall(Duration),
    LoseResponse,
    Refuse,
}

#[derive(Debug)]
struct Rule {
    /// Matches an `X-Amz-Target` ending in this (`TransactWriteItems`, `SendMessage`); `*`
    /// matches every call.
    operation: String,
    fault: Fault,
    /// How many more calls it faults.
    left: u32,
    /// How many matching calls it lets through first.
    skip: u32,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// (operation, fault or "forwarded") of every call, in order.
    log: Vec<(String, String)>,
}

/// The proxy; dropped with the test's runtime.
#[derive(Clone)]
pub struct FaultProxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &upstream, &state).await;
                });
            }
        });
        Self { endpoint, state }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next `times` calls of `operation` (suffix of `X-Amz-Target`, or `*`) get `fault`.
    pub fn inject(&self, operation: &str, fault: Fault, times: u32) {
        self.inject_after(operation, 0, fault, times);
    }

    /// The `times` calls of `operation` after the next `skip` get `fault`.
    pub fn inject_after(&self, operation: &str, skip: u32, fault: Fault, times: u32) {
        self.state.lock().unwrap().rules.push(Rule {
            operation: operation.to_owned(),
            fault,
            left: times,
            skip,
        });
    }

    /// No more faults.
    pub fn heal(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// How many calls of `operation` got `fault` (or, with `None`, were forwarded).
    pub fn count(&self, operation: &str, fault: Option<Fault>) -> usize {
        let what = fault.map_or("forwarded".to_owned(), |f| format!("{f:?}"));
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(op, f)| op.ends_with(operation) && *f == what)
            .count()
    }

    /// Every call so far: (operation, what happened).
    pub fn log(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().log.clone()
    }
}

fn decide(state: &Mutex<State>, operation: &str) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let fault = state
        .rules
        .iter_mut()
        .find(|r| r.left > 0 && (r.operation == "*" || operation.ends_with(&r.operation)))
        .and_then(|rule| {
            if rule.skip > 0 {
                rule.skip -= 1;
                return None;
            }
            rule.left -= 1;
            Some(rule.fault)
        });
    let what = fault.map_or("forwarded".to_owned(), |f| format!("{f:?}"));
    state.log.push((operation.to_owned(), what));
    fault
}

/// One request: read it, fault it or forward it.
async fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let (head, body) = read_request(&mut client).await?;
    let operation = header(&head, "x-amz-target").unwrap_or_else(|| {
        // Query-protocol calls (SES, SNS, CloudWatch) name theirs in the body.
        String::from_utf8_lossy(&body)
            .split('&')
            .find_map(|p| p.strip_prefix("Action=").map(str::to_owned))
            .unwrap_or_else(|| head.lines().next().unwrap_or_default().to_owned())
    });
    let fault = decide(state, &operation);
    let throttled = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded (fault proxy)"}"#;
    let failed = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (fault proxy)"}"#;
    match fault {
        Some(Fault::Refuse) => Ok(()),
        Some(Fault::Throttle) => {
            respond(
                &mut client,
                "400 Bad Request",
                "ThrottlingException",
                throttled,
            )
            .await
        }
        Some(Fault::ServerError) => {
            respond(
                &mut client,
                "500 Internal Server Error",
                "InternalServerError",
                failed,
            )
            .await
        }
        Some(Fault::LoseResponse) => {
            // Applied upstream; the caller never hears of it.
            forward(upstream, &head, &body).await.map(drop)
        }
        Some(Fault::Stall(stall)) => {
            let response = forward(upstream, &head, &body).await?;
            tokio::time::sleep(stall).await;
            client.write_all(&response).await
        }
        None => {
            let response = forward(upstream, &head, &body).await?;
            client.write_all(&response).await
        }
    }
}

async fn respond(
    client: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-ErrorType: {kind}\r\nx-amzn-query-error: {kind};Sender\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// The request head (as text) and its body (by `Content-Length`; the SDK sends no chunked
/// requests to these services).
async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let split = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..split]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[split + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}

/// Sends the request to moto over a fresh connection (`Connection: close`) and returns the
/// whole raw response.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let mut request = String::new();
    for (i, line) in head.lines().enumerate() {
        let name = line.split(':').next().unwrap_or_default().trim();
        if i > 0 && name.eq_ignore_ascii_case("connection") {
            continue;
        }
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(response)
}
