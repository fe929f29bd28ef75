//! Conformance of the local gateway to API Gateway's WebSocket behaviour: route selection,
//! route responses, event shapes, handshake refusal, size limits, idle and duration limits,
//! the `@connections` API (Rust SDK and boto3), the SQS event source mapping with dead-letter
//! redrive, and EventBridge schedules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use messaging_core::Role;
use messaging_devstack::template::create_queues;
use messaging_devstack::Template;
use messaging_gateway::{management_endpoint, Functions, GatewayConfig, Limits, RunningGateway};
use serde_json::{json, Value};
use test_support::gateway::{management_client, Ended, GatewayStack, WsClient};
use test_support::http;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket API with a custom route, a one-way route and a two-way default.
const ECHO_API: &str = r#"
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: { ProtocolType: WEBSOCKET, RouteSelectionExpression: "$request.body.action" }
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: $connect, Target: !Sub "integrations/${ConnectIntegration}" }
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: $disconnect, Target: !Sub "integrations/${DisconnectIntegration}" }
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: $default, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${DefaultIntegration}" }
  ShoutRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: shout, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${ShoutIntegration}" }
  QuietRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: quiet, Target: !Sub "integrations/${ShoutIntegration}" }
  FailRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: fail, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${FailIntegration}" }
  ConnectIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${OnConnect.Arn}/invocations" }
  DisconnectIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${OnDisconnect.Arn}/invocations" }
  DefaultIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations" }
  ShoutIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Shout.Arn}/invocations" }
  BigRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: big, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${BigIntegration}" }
  BigIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Big.Arn}/invocations" }
  FailIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fail.Arn}/invocations" }
  OnConnect: { Type: AWS::Serverless::Function, Metadata: { BuildProperties: { Binary: on-connect } } }
  OnDisconnect: { Type: AWS::Serverless::Function, Metadata: { BuildProperties: { Binary: on-disconnect } } }
  Echo: { Type: AWS::Serverless::Function, Metadata: { BuildProperties: { Binary: echo } } }
  Shout: { Type: AWS::Serverless::Function, Metadata: { BuildProperties: { Binary: shout } } }
  Fail: { Type: AWS::Serverless::Function, Metadata: { BuildProperties: { Binary: fail } } }
  Big: { Type: AWS::Serverless::Function, Metadata: { BuildProperties: { Binary: big } } }
"#;

type Recorded = Arc<Mutex<Vec<Value>>>;

/// The echo API's functions; every event they get is recorded.
fn echo_functions(recorded: &Recorded) -> Functions {
    let mut functions = Functions::default();
    let record = |recorded: &Recorded, reply: fn(&Value) -> Result<Value, String>| {
        let recorded = recorded.clone();
        move |event: Value| {
            recorded.lock().unwrap().push(event.clone());
            let answer = reply(&event);
            async move { answer }
        }
    };
    functions.register(
        "on-connect",
        record(recorded, |e| {
            let refused = e["queryStringParameters"]["refuse"].as_str().is_some();
            Ok(if refused {
                json!({ "statusCode": 403, "body": "go away" })
            } else {
                json!({ "statusCode": 200 })
            })
        }),
    );
    functions.register(
        "on-disconnect",
        record(recorded, |_| Ok(json!({ "statusCode": 200 }))),
    );
    functions.register(
        "echo",
        record(recorded, |e| {
            let body = e["body"].as_str().unwrap_or_default();
            Ok(json!({ "statusCode": 200, "body": format!("default:{}", body.len()) }))
        }),
    );
    functions.register("shout", record(recorded, |e| {
        Ok(json!({ "statusCode": 200, "body": e["body"].as_str().unwrap_or_default().to_uppercase() }))
    }));
    functions.register(
        "fail",
        record(recorded, |_| Err::<Value, _>("boom".to_owned())),
    );
    // Answers a body of the size the frame names (`{"action":"big","bytes":N}`).
    functions.register(
        "big",
        record(recorded, |e| {
            let frame: Value = serde_json::from_str(e["body"].as_str().unwrap_or("{}")).unwrap();
            let bytes = frame["bytes"].as_u64().unwrap_or(0) as usize;
            Ok(json!({ "statusCode": 200, "body": "x".repeat(bytes) }))
        }),
    );
    functions
}

async fn echo_gateway(limits: Limits) -> (RunningGateway, Recorded) {
    let recorded = Recorded::default();
    let mut config = GatewayConfig::new(Template::parse(ECHO_API).unwrap());
    config.limits = limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = messaging_gateway::start(listener, config, echo_functions(&recorded))
        .await
        .unwrap();
    (gateway, recorded)
}

fn events_of(recorded: &Recorded, route: &str) -> Vec<Value> {
    recorded
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["requestContext"]["routeKey"] == route)
        .cloned()
        .collect()
}

/// The echo API answers plain text, not JSON.
async fn text(client: &mut WsClient) -> Option<String> {
    client.next_raw(Duration::from_secs(3)).await
}

#[tokio::test]
async fn routes_are_selected_by_the_templates_expression_with_a_default_fallback() {
    let (gateway, recorded) = echo_gateway(Limits::default()).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    client.send_text(r#"{"action":"shout","say":"hi"}"#).await;
    assert_eq!(
        text(&mut client).await.as_deref(),
        Some(r#"{"ACTION":"SHOUT","SAY":"HI"}"#)
    );
    client.send_text(r#"{"action":"unknown"}"#).await;
    assert_eq!(text(&mut client).await.as_deref(), Some("default:20"));
    client.send_text("not json at all").await;
    assert_eq!(text(&mut client).await.as_deref(), Some("default:15"));
    // A route without a route response sends nothing back.
    client.send_text(r#"{"action":"quiet"}"#).await;
    assert_eq!(client.next_raw(Duration::from_millis(500)).await, None);
    assert_eq!(
        events_of(&recorded, "quiet").len(),
        1,
        "the quiet route still ran"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_failing_integration_answers_internal_server_error() {
    let (gateway, _) = echo_gateway(Limits::default()).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    client.send_text(r#"{"action":"fail"}"#).await;
    let answer: Value = serde_json::from_str(&text(&mut client).await.unwrap()).unwrap();
    assert_eq!(answer["message"], "Internal server error");
    assert!(answer["connectionId"].is_string() && answer["requestId"].is_string());
    gateway.shutdown().await;
}

#[tokio::test]
async fn events_have_the_shape_api_gateway_sends() {
    let (gateway, recorded) = echo_gateway(Limits::default()).await;
    let url = format!("{}?user=alice&tag=a&tag=b", gateway.websocket_url());
    let mut client = WsClient::connect(&url).await.unwrap();
    client.send_text(r#"{"action":"shout"}"#).await;
    text(&mut client).await;
    client.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let connect = &events_of(&recorded, "$connect")[0];
    let ctx = &connect["requestContext"];
    assert_eq!(ctx["eventType"], "CONNECT");
    assert_eq!(ctx["stage"], "local");
    assert_eq!(ctx["apiId"], "local");
    assert_eq!(ctx["messageDirection"], "IN");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["domainName"], gateway.addr().to_string());
    let connection = ctx["connectionId"].as_str().unwrap().to_owned();
    assert_eq!(connection.len(), 16);
    assert!(ctx["connectedAt"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(ctx["requestTimeEpoch"].as_i64().unwrap() >= ctx["connectedAt"].as_i64().unwrap());
    assert!(ctx["requestTime"].as_str().unwrap().ends_with(" +0000"));
    assert_eq!(connect["queryStringParameters"]["user"], "alice");
    assert_eq!(
        connect["multiValueQueryStringParameters"]["tag"],
        json!(["a", "b"])
    );
    assert_eq!(connect["headers"]["sec-websocket-version"], "13");
    assert_eq!(connect["isBase64Encoded"], false);

    let message = &events_of(&recorded, "shout")[0];
    assert_eq!(message["requestContext"]["eventType"], "MESSAGE");
    assert_eq!(
        message["requestContext"]["connectionId"],
        connection.as_str()
    );
    assert!(message["requestContext"]["messageId"].is_string());
    assert_eq!(message["body"], r#"{"action":"shout"}"#);

    let disconnect = &events_of(&recorded, "$disconnect")[0];
    assert_eq!(disconnect["requestContext"]["eventType"], "DISCONNECT");
    // The client closed without a status code, as a browser's close() does.
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1005);
    assert_eq!(
        disconnect["requestContext"]["disconnectReason"],
        "Client-side close frame status not set"
    );
    // Every event deserialises as the Lambda event type.
    for event in recorded.lock().unwrap().iter() {
        serde_json::from_value::<aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest>(
            event.clone(),
        )
        .unwrap();
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_refused_handshake_gets_the_status_connect_returned_and_leaves_nothing() {
    // With a recording $connect: its status, and no $disconnect afterwards.
    let (gateway, recorded) = echo_gateway(Limits::default()).await;
    let refused = WsClient::connect(&format!("{}?refuse=1", gateway.websocket_url())).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!(
            "expected HTTP 403, got {other:?}",
            other = other.map(|_| ())
        ),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(gateway.connections().is_empty());
    assert!(events_of(&recorded, "$disconnect").is_empty());
    gateway.shutdown().await;

    // With the real functions: a bad token is a 401 and the table stays empty.
    let gw = GatewayStack::start().await;
    let bad = WsClient::connect(&format!("{}?token=not-a-token", gw.gateway.websocket_url())).await;
    match bad {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!(
            "expected HTTP 401, got {other:?}",
            other = other.map(|_| ())
        ),
    }
    assert!(gw.gateway.connections().is_empty());
    assert!(gw.stack.snapshot().await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn a_frame_over_32_kb_closes_the_connection_with_1009() {
    let (gateway, _) = echo_gateway(Limits::default()).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    client.send_text(&"x".repeat(32 * 1024 + 1)).await;
    assert_eq!(
        client.ended(Duration::from_secs(3)).await,
        Ended::Closed(1009, "Message too big".into())
    );
    gateway.shutdown().await;
}

fn fragment(text: &str, first: bool, last: bool) -> Message {
    let opcode = if first {
        OpCode::Data(Data::Text)
    } else {
        OpCode::Data(Data::Continue)
    };
    Message::Frame(Frame::message(text.as_bytes().to_vec(), opcode, last))
}

#[tokio::test]
async fn messages_up_to_128_kb_in_32_kb_frames_pass_and_larger_ones_close_with_1009() {
    let (gateway, _) = echo_gateway(Limits::default()).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    let chunk = "y".repeat(30 * 1024);
    for (i, last) in [(0, false), (1, false), (2, true)] {
        client
            .send_message(fragment(&chunk, i == 0, last))
            .await
            .unwrap();
    }
    assert_eq!(
        text(&mut client).await,
        Some(format!("default:{}", 90 * 1024))
    );

    for i in 0..5 {
        if client
            .send_message(fragment(&chunk, i == 0, i == 4))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        client.ended(Duration::from_secs(3)).await,
        Ended::Closed(1009, "Message too big".into())
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_route_response_over_128_kb_is_not_sent_and_the_client_gets_api_gateways_error() {
    let (gateway, _) = echo_gateway(Limits::default()).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    client
        .send(&json!({ "action": "big", "bytes": 128 * 1024 }))
        .await;
    assert_eq!(text(&mut client).await.map(|t| t.len()), Some(128 * 1024));
    client
        .send(&json!({ "action": "big", "bytes": 128 * 1024 + 1 }))
        .await;
    let error: Value = serde_json::from_str(&text(&mut client).await.unwrap()).unwrap();
    assert_eq!(error["message"], "Internal server error", "{error}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let (gateway, recorded) = echo_gateway(limits).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    // Activity keeps it open past one timeout…
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.send_text(r#"{"action":"shout"}"#).await;
    text(&mut client).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gateway.connections().len(), 1);
    // …silence closes it.
    assert_eq!(
        client.ended(Duration::from_secs(3)).await,
        Ended::Closed(1001, "Going away".into())
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let disconnect = &events_of(&recorded, "$disconnect")[0];
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1001);
    gateway.shutdown().await;
}

#[tokio::test]
async fn no_connection_outlives_the_maximum_duration() {
    let limits = Limits {
        max_duration: Duration::from_millis(1200),
        ..Limits::default()
    };
    let (gateway, _) = echo_gateway(limits).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .send_message(Message::Ping(vec![1].into()))
            .await
            .unwrap();
    }
    assert_eq!(
        client.ended(Duration::from_secs(3)).await,
        Ended::Closed(1001, "Going away".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(1200));
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_connections_api_answers_the_rust_sdk_as_api_gateway_does() {
    let (gateway, recorded) = echo_gateway(Limits::default()).await;
    let api = management_client(&gateway);
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = events_of(&recorded, "$connect")[0]["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();

    // POST: delivered.
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new("hello from the SDK"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        text(&mut client).await.as_deref(),
        Some("hello from the SDK")
    );

    // GET: connectedAt, identity, lastActiveAt.
    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let identity = info.identity().unwrap();
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    let connected = info.connected_at().unwrap().as_secs_f64();
    assert!((connected - messaging_core::time::now_millis() as f64 / 1000.0).abs() < 10.0);
    assert!(info.last_active_at().unwrap().as_secs_f64() >= connected);

    // POST over 128 KB: PayloadTooLargeException.
    let too_big = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'z'; 128 * 1024 + 1]))
        .send()
        .await;
    assert!(matches!(
        too_big.unwrap_err().into_service_error(),
        PostToConnectionError::PayloadTooLargeException(_)
    ));

    // Malformed id: 400 BadRequestException. Unknown id: 410 GoneException.
    let malformed = api
        .post_to_connection()
        .connection_id("not#valid")
        .data(Blob::new("x"))
        .send()
        .await;
    assert_eq!(
        malformed.unwrap_err().into_service_error().code(),
        Some("BadRequestException")
    );
    let unknown = api
        .post_to_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .data(Blob::new("x"))
        .send()
        .await;
    assert!(matches!(
        unknown.unwrap_err().into_service_error(),
        PostToConnectionError::GoneException(_)
    ));

    // DELETE: the client is closed and $disconnect runs; afterwards the id is gone.
    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(matches!(
        client.ended(Duration::from_secs(3)).await,
        Ended::Closed(1000, _)
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(events_of(&recorded, "$disconnect").len(), 1);
    let after = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("x"))
        .send()
        .await;
    assert!(matches!(
        after.unwrap_err().into_service_error(),
        PostToConnectionError::GoneException(_)
    ));
    let get_after = api.get_connection().connection_id(&id).send().await;
    assert!(matches!(
        get_after.unwrap_err().into_service_error(),
        GetConnectionError::GoneException(_)
    ));
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_connections_api_answers_boto3() {
    let (gateway, recorded) = echo_gateway(Limits::default()).await;
    let mut client = WsClient::connect(&gateway.websocket_url()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = events_of(&recorded, "$connect")[0]["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let script = r#"
import sys, boto3
api = boto3.client("apigatewaymanagementapi", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="local", aws_secret_access_key="local")
api.post_to_connection(ConnectionId=sys.argv[2], Data=b"hello from boto3")
info = api.get_connection(ConnectionId=sys.argv[2])
assert info["Identity"]["SourceIp"] == "127.0.0.1", info
print("connectedAt", info["ConnectedAt"].isoformat())
try:
    api.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    raise SystemExit("an unknown connection was accepted")
except api.exceptions.GoneException:
    print("gone ok")
"#;
    let venv = std::env::var("STACKPRO_VENV")
        .unwrap_or_else(|_| format!("{}/.venv", env!("CARGO_MANIFEST_DIR")));
    let endpoint = gateway.management_endpoint();
    let python = format!("{venv}/bin/python");
    // Blocking work off the runtime: the gateway answering boto3 runs on this runtime.
    let command = python.clone();
    let args = [script.to_owned(), endpoint, id.clone()];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&command)
            .arg("-c")
            .args(&args)
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "boto3 failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("gone ok"), "{stdout}");
    assert_eq!(text(&mut client).await.as_deref(), Some("hello from boto3"));
    gateway.shutdown().await;
}

const QUEUE_API: &str = r#"
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: { ProtocolType: WEBSOCKET, RouteSelectionExpression: "$request.body.action" }
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      RedrivePolicy: { deadLetterTargetArn: !GetAtt JobsDlq.Arn, maxReceiveCount: 2 }
  JobsDlq:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: consumer } }
    Properties:
      Events:
        FromJobs:
          Type: SQS
          Properties: { Queue: !GetAtt Jobs.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures] }
  Ticker:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: ticker } }
    Properties:
      Events:
        Every5:
          Type: Schedule
          Properties: { Schedule: rate(5 minutes) }
"#;

#[tokio::test]
async fn the_sqs_event_source_deletes_successes_and_redrives_failures_to_the_dead_letter_queue() {
    let template = Template::parse(QUEUE_API).unwrap();
    let sdk = messaging_devstack::sdk_config(&test_support::endpoint());
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let prefix = format!("esm-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let urls = create_queues(&sqs, &template.queues().unwrap(), &prefix)
        .await
        .unwrap();

    let seen = Recorded::default();
    let mut functions = Functions::default();
    let log = seen.clone();
    functions.register(
        "consumer",
        move |event: aws_lambda_events::sqs::SqsEvent| {
            let log = log.clone();
            async move {
                let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
                for record in event.records {
                    let body = record.body.clone().unwrap_or_default();
                    log.lock().unwrap().push(json!(body));
                    if body == "fail" {
                        let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
                        failure.item_identifier = record.message_id.unwrap_or_default();
                        response.batch_item_failures.push(failure);
                    }
                }
                Ok::<_, String>(response)
            }
        },
    );
    let mut config = GatewayConfig::new(template);
    config.sqs = Some((
        sqs.clone(),
        urls.clone().into_iter().collect::<BTreeMap<_, _>>(),
    ));
    config.failed_visibility_seconds = Some(0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = messaging_gateway::start(listener, config, functions)
        .await
        .unwrap();

    for body in ["ok", "fail"] {
        sqs.send_message()
            .queue_url(&urls["Jobs"])
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut dead = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let received = sqs
            .receive_message()
            .queue_url(&urls["JobsDlq"])
            .send()
            .await
            .unwrap();
        dead.extend(
            received
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
        if !dead.is_empty() {
            break;
        }
    }
    gateway.shutdown().await;
    assert_eq!(dead, ["fail"], "the failing message is redriven to the DLQ");
    let seen: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        seen.iter().filter(|b| *b == "ok").count(),
        1,
        "a success is deleted, not redelivered: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|b| *b == "fail").count(),
        2,
        "received maxReceiveCount times: {seen:?}"
    );
}

#[tokio::test]
async fn schedules_invoke_their_function_with_a_scheduled_event() {
    let ticks = Recorded::default();
    let mut functions = Functions::default();
    let log = ticks.clone();
    functions.register("ticker", move |event: Value| {
        log.lock().unwrap().push(event);
        async { Ok::<_, String>(json!(null)) }
    });
    let mut config = GatewayConfig::new(Template::parse(QUEUE_API).unwrap());
    config.schedule_every = Some(Duration::from_millis(200));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = messaging_gateway::start(listener, config, functions)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    gateway.shutdown().await;
    let ticks = ticks.lock().unwrap();
    assert!(
        (3..=6).contains(&ticks.len()),
        "{} ticks in 1.1 s at 200 ms",
        ticks.len()
    );
    let event: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
        serde_json::from_value(ticks[0].clone()).unwrap();
    assert_eq!(event.detail_type.as_deref(), Some("Scheduled Event"));
    assert_eq!(event.source.as_deref(), Some("aws.events"));
}

#[tokio::test]
async fn the_real_stack_answers_frames_through_the_two_way_default_route() {
    let gw = GatewayStack::start().await;
    let mut owner = gw.connect("123", "owner", Role::Owner).await;
    owner
        .send(&json!({ "type": "NOPE", "requestId": "x1" }))
        .await;
    let error = owner.expect("ERROR").await;
    assert_eq!(
        (error["code"].as_str(), error["requestId"].as_str()),
        (Some("UNKNOWN_TYPE"), Some("x1"))
    );
    let _ = management_endpoint(gw.gateway.addr(), "local");
    gw.stop().await;
}

#[tokio::test]
async fn a_request_no_route_matches_gets_api_gateways_404_and_dev_tokens_need_loopback() {
    let gw = GatewayStack::start().await;
    let base = format!("http://{}", gw.gateway.addr());
    for (method, path) in [
        ("GET", "/nothing-here"),
        ("GET", "/local/extra/segments"),
        ("POST", "/conversations"),
        ("DELETE", "/unsubscribe"),
        ("PUT", "/search"),
    ] {
        let (status, body) = http::request(method, &format!("{base}{path}"), &[], b"").await;
        assert_eq!(status, 404, "{method} {path}");
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{method} {path}: {}", String::from_utf8_lossy(&body)));
        assert_eq!(body, json!({ "message": "Not Found" }), "{method} {path}");
    }
    // The stage's own path without a handshake is the handshake's error, not a 404.
    let (status, _) = http::request("GET", &format!("{base}/local"), &[], b"").await;
    assert_eq!(status, 400);
    // Routed methods still reach the function (which wants a token).
    let (status, _) = http::request("GET", &format!("{base}/conversations"), &[], b"").await;
    assert_eq!(status, 401);
    // This test's client is on loopback: it gets a development token.
    let (status, body) = http::request(
        "GET",
        &format!("{base}/dev/token?tenant=acme&user=ann&role=USER"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    gw.stop().await;
}
