//! The local gateway in tests: the real gateway on a free loopback port, in front of the real
//! functions, against the test's own table and queues on moto; and a WebSocket test client.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use messaging_core::token::Contacts;
use messaging_core::{Principal, Role, TenantId, UserId};
use messaging_devstack::{tokens, Template};
use messaging_gateway::{management_endpoint, Functions, GatewayConfig, Limits, RunningGateway};
use messaging_handlers::services::{Parts, Services};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestStack;

/// A gateway running the StackPro functions against a private test stack.
pub struct GatewayStack {
    pub stack: TestStack,
    pub gateway: RunningGateway,
    limits: Limits,
    schedule: Option<(Duration, Duration)>,
}

impl GatewayStack {
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    pub async fn start_with(limits: Limits) -> Self {
        Self::start_configured(limits, None).await
    }

    /// With the template's schedules (the notification batch) every `every`, and the batch's
    /// window shortened to `window`.
    pub async fn start_with_schedule(every: Duration, window: Duration) -> Self {
        Self::start_configured(Limits::default(), Some((every, window))).await
    }

    async fn start_configured(limits: Limits, schedule: Option<(Duration, Duration)>) -> Self {
        let mut stack = TestStack::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Notification emails link to this gateway's HTTP API.
        stack.parts.unsubscribe_url =
            format!("http://{}/unsubscribe", listener.local_addr().unwrap());
        if let Some((_, window)) = schedule {
            stack.parts.window_millis = window.as_millis() as i64;
        }
        stack.notify = Services::new(&stack.parts).notify_batch;
        let gateway = Self::serve(&stack, listener, limits.clone(), schedule).await;
        Self {
            stack,
            gateway,
            limits,
            schedule,
        }
    }

    /// Stops the gateway (every connection closed with 1001, `$disconnect` run) and starts a
    /// new one on the same address, as a redeployed or failed-over API comes back.
    pub async fn restarted(self) -> Self {
        let Self {
            stack,
            gateway,
            limits,
            schedule,
        } = self;
        let addr = gateway.addr();
        gateway.shutdown().await;
        let gateway = Self::serve(&stack, Self::rebind(addr).await, limits.clone(), schedule).await;
        Self {
            stack,
            gateway,
            limits,
            schedule,
        }
    }

    /// The address again, as soon as the old gateway let go of it.
    async fn rebind(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(addr).and_then(|()| socket.listen(1024)) {
                Ok(listener) => return listener,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{addr} could not be bound again: {e}"),
            }
        }
    }

    async fn serve(
        stack: &TestStack,
        listener: tokio::net::TcpListener,
        limits: Limits,
        schedule: Option<(Duration, Duration)>,
    ) -> RunningGateway {
        let mut config = GatewayConfig::new(Template::workspace().unwrap());
        config.limits = limits;
        config.schedule_every = schedule.map(|(every, _)| every);
        let endpoint = management_endpoint(listener.local_addr().unwrap(), &config.stage);
        config.sqs = Some((
            stack.sqs.clone(),
            BTreeMap::from([
                ("BroadcastQueue".to_owned(), stack.queue_url.clone()),
                (
                    "NotifyQueue".to_owned(),
                    stack.parts.notify_queue.url().to_owned(),
                ),
                ("UploadsQueue".to_owned(), stack.uploads_url.clone()),
                (
                    "LifecycleQueue".to_owned(),
                    stack.parts.lifecycle_queue.url().to_owned(),
                ),
            ]),
        ));
        config.streams = Some((super::endpoint(), stack.stream_arn.clone()));
        config.stream_every = Some(Duration::from_millis(250));
        config.demo = Some(messaging_gateway::default_demo_dir());
        // Beside the local portal backend (every tenant), two whose policies name one tenant.
        config.service_callers.extend([
            crate::service_api::acme_backend(),
            crate::service_api::globex_backend(),
        ]);
        // The test command collects every frame sent and checks it against docs/asyncapi.yaml.
        config.frame_log = std::env::var_os("STACKPRO_FRAME_LOG_DIR").map(Into::into);
        let functions = stack.functions(&endpoint);
        messaging_gateway::start(listener, config, functions)
            .await
            .expect("gateway starts")
    }

    /// Connects a WebSocket client with a fresh token for `user` of `tenant`.
    pub async fn connect(&self, tenant: &str, user: &str, role: Role) -> WsClient {
        self.connect_with(tenant, user, role, &Contacts::default())
            .await
    }

    /// [`Self::connect`] with a token carrying these verified contact points.
    pub async fn connect_with(
        &self,
        tenant: &str,
        user: &str,
        role: Role,
        contacts: &Contacts,
    ) -> WsClient {
        let principal = Principal {
            tenant: TenantId::parse(tenant).unwrap(),
            user: UserId::parse(user).unwrap(),
            role,
            name: None,
        };
        let token = tokens::mint_local_with(&principal, contacts, 3600).unwrap();
        WsClient::connect(&format!("{}?token={token}", self.gateway.websocket_url()))
            .await
            .unwrap_or_else(|e| panic!("{user}@{tenant} could not connect: {e}"))
    }

    pub async fn stop(self) {
        self.gateway.shutdown().await;
    }
}

impl TestStack {
    /// Every function, wired to this stack, posting to `@connections` at `endpoint`.
    pub fn functions(&self, endpoint: &str) -> Functions {
        let sdk = messaging_devstack::sdk_config(&crate::endpoint());
        let parts = Parts {
            connections: messaging_handlers::config::connections_api_at(&sdk, endpoint).unwrap(),
            ..self.parts.clone()
        };
        Functions::stackpro(Services::new(&parts))
    }
}

/// The `@connections` management API of `gateway`, through the AWS SDK as the functions call it.
pub fn management_client(gateway: &RunningGateway) -> aws_sdk_apigatewaymanagement::Client {
    let sdk = messaging_devstack::sdk_config(&gateway.management_endpoint());
    aws_sdk_apigatewaymanagement::Client::new(&sdk)
}

/// A real WebSocket client.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The rest of a BATCH frame's events, handed out one by one by [`WsClient::next`].
    batched: std::collections::VecDeque<Value>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Closed(u16, String),
    Dropped,
}

impl WsClient {
    pub async fn connect(url: &str) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Self {
            socket,
            batched: std::collections::VecDeque::new(),
        })
    }

    pub async fn send(&mut self, frame: &Value) {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next text frame as it is (not parsed) within `within`.
    pub async fn next_raw(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match next.ok()? {
                Message::Text(text) => return Some(text.to_string()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    pub async fn send_message(
        &mut self,
        message: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.socket.send(message).await
    }

    /// The next JSON frame within `within`, skipping pings; a BATCH frame's events one by one,
    /// as the client SDK applies them.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        if let Some(event) = self.batched.pop_front() {
            return Some(event);
        }
        let text = self.next_raw(within).await?;
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        let mut events = crate::unbatched(frame);
        let first = events.remove(0);
        self.batched.extend(events);
        Some(first)
    }

    /// The next ACK or ERROR (within five seconds).
    pub async fn expect_answer(&mut self) -> Value {
        loop {
            let frame = self.next(Duration::from_secs(5)).await.expect("an answer");
            if frame["type"] == "ACK" || frame["type"] == "ERROR" {
                return frame;
            }
        }
    }

    /// The next frame of `kind` within five seconds, skipping others.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(frame) if frame["type"] == kind => return frame,
                Some(_) => continue,
                None => panic!("no {kind} frame arrived"),
            }
        }
    }

    /// Every frame arriving within `within`.
    pub async fn drain(&mut self, within: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while let Some(frame) = self
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            frames.push(frame);
        }
        frames
    }

    /// Waits for the server to end the connection; what it said when it did.
    pub async fn ended(&mut self, within: Duration) -> Ended {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => panic!("the connection is still open after {within:?}"),
                Ok(None) | Ok(Some(Err(_))) => return Ended::Dropped,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return match frame {
                        Some(CloseFrame { code, reason }) => {
                            Ended::Closed(code.into(), reason.to_string())
                        }
                        None => Ended::Closed(1005, String::new()),
                    }
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Wait for the server's close reply.
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(2), self.socket.next()).await
        {}
    }
}
