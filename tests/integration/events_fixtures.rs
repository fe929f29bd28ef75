//! The fixtures under `events/` (also `sam local invoke -e` inputs) are in the exact shape
//! API Gateway and SQS deliver: each deserialises with aws_lambda_events, survives a JSON
//! round trip, and runs through its handler with the expected result.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::SqsEvent;
use messaging_core::Role;
use messaging_handlers::{broadcast, connect, disconnect, file_share, route};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use test_support::{frames_for, TestStack};

const CONNECTION: &str = "TWegAcC4EowCHnA=";

fn fixture<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let parsed: T =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not a valid event: {e}"));
    // Round trip: what we serialise reads back to the same event.
    let again: T = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&parsed).unwrap(),
        "{name}"
    );
    parsed
}

/// A fixture that deserialises but does not serialise (lambda_http's request enum).
fn fixture_value<T: DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not a valid event: {e}"))
}

/// Runs an HTTP API event through lambda_http's adapter, as the Lambda runtime does.
async fn http_api_answer(stack: &TestStack, event: lambda_http::request::LambdaRequest) -> Value {
    use lambda_http::Service;
    let service = messaging_handlers::http_api::HttpApiService {
        table: stack.route.table.clone(),
        cursors: messaging_devstack::tokens::local_cursor_signer(),
        verifier: messaging_devstack::tokens::local_verifier().unwrap().into(),
        jobs: stack.parts.lifecycle_queue.clone(),
        storage: stack.parts.storage.clone(),
    };
    let service = &service;
    let handler = lambda_http::service_fn(move |request: lambda_http::Request| async move {
        Ok::<_, std::convert::Infallible>(
            messaging_handlers::http_api::handle(service, request).await,
        )
    });
    let response = lambda_http::Adapter::from(handler)
        .call(lambda_http::LambdaEvent::new(
            event,
            lambda_http::Context::default(),
        ))
        .await
        .unwrap();
    serde_json::to_value(&response).unwrap()
}

fn body(response: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> Value {
    match &response.body {
        Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
        None => Value::Null,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_fixture_is_listed_here() {
    let mut names: Vec<String> =
        std::fs::read_dir(format!("{}/events", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "connect-bad-token.json",
            "connect-good-token.json",
            "disconnect.json",
            "file-share-register.json",
            "http-api-history.json",
            "route-chat-message.json",
            "route-create-conversation.json",
            "route-join-conversation.json",
            "route-malformed-body.json",
            "route-typing-start.json",
            "route-typing-stop.json",
            "schedule-notify-batch.json",
            "service-api-system-message.json",
            "sqs-broadcast-batch.json",
            "sqs-lifecycle-step.json",
            "sqs-notify-work.json",
            "sqs-upload-notification.json",
        ]
    );
}

#[tokio::test]
async fn the_fixtures_run_through_their_handlers() {
    let stack = TestStack::new().await;
    let ws = |name| fixture::<ApiGatewayWebsocketProxyRequest>(name);

    let refused = connect::handle(&stack.connect, &ws("connect-bad-token.json")).await;
    assert_eq!(refused.status_code, 401);
    assert!(stack.snapshot().await.is_empty());

    let accepted = connect::handle(&stack.connect, &ws("connect-good-token.json")).await;
    assert_eq!(accepted.status_code, 200, "{:?}", accepted.body);
    // bob, a member named in the create fixture, is online on another socket.
    let bob = stack.connect_as("123", "bob", Role::User).await;

    let created = route::handle(&stack.route, &ws("route-create-conversation.json")).await;
    assert_eq!(body(&created)["type"], "ACK", "{:?}", created.body);
    let joined = route::handle(&stack.route, &ws("route-join-conversation.json")).await;
    assert_eq!(body(&joined)["requestId"], "req-2");
    let sent = route::handle(&stack.route, &ws("route-chat-message.json")).await;
    assert_eq!(body(&sent)["action"], "CHAT_MESSAGE");
    for typing in ["route-typing-start.json", "route-typing-stop.json"] {
        let response = route::handle(&stack.route, &ws(typing)).await;
        assert_eq!(
            (response.status_code, body(&response)),
            (200, Value::Null),
            "{typing}"
        );
    }
    let registered = file_share::handle(&stack.files, &ws("file-share-register.json")).await;
    let registered = body(&registered);
    assert_eq!(
        (
            registered["type"].as_str(),
            registered["file"]["fileId"].as_str()
        ),
        (Some("FILE"), Some("789")),
        "{registered}"
    );
    // The HTTP API fixture (payload 2.0, alice's token): the history the chat fixture wrote.
    let request: lambda_http::request::LambdaRequest = fixture_value("http-api-history.json");
    let history = http_api_answer(&stack, request).await;
    assert_eq!(
        (
            history["statusCode"].as_u64(),
            history["headers"]["content-type"].as_str()
        ),
        (Some(200), Some("application/json")),
        "{history}"
    );
    let page: Value = serde_json::from_str(history["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        page["messages"][0]["content"]["text"],
        "Here are the updated contracts"
    );
    // The server API fixture (payload 2.0, the IAM caller API Gateway verified): a system
    // message into the conversation the fixtures created.
    let request: lambda_http::request::LambdaRequest =
        fixture_value("service-api-system-message.json");
    let posted = {
        use lambda_http::Service;
        let service = &stack.service;
        let handler = lambda_http::service_fn(move |request: lambda_http::Request| async move {
            Ok::<_, std::convert::Infallible>(
                messaging_handlers::service_api::handle(service, request).await,
            )
        });
        let response = lambda_http::Adapter::from(handler)
            .call(lambda_http::LambdaEvent::new(
                request,
                lambda_http::Context::default(),
            ))
            .await
            .unwrap();
        serde_json::to_value(&response).unwrap()
    };
    assert_eq!(posted["statusCode"].as_u64(), Some(201), "{posted}");
    let message: Value = serde_json::from_str(posted["body"].as_str().unwrap()).unwrap();
    assert_eq!(message["message"]["content"]["type"], "system");
    let malformed = route::handle(&stack.route, &ws("route-malformed-body.json")).await;
    assert_eq!(
        (malformed.status_code, body(&malformed)["code"].clone()),
        (400, Value::from("INVALID_JSON"))
    );
    stack.pump().await;
    stack.gateway.take();

    // The SQS fixture: two jobs for conversation 456, excluding the fixture's connection.
    let batch = broadcast::handle(
        &stack.broadcast,
        fixture::<SqsEvent>("sqs-broadcast-batch.json"),
    )
    .await;
    assert!(batch.batch_item_failures.is_empty());
    let posts = stack.gateway.take();
    // Both events for bob in one BATCH frame (they waited together: coalesced delivery).
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts.iter().all(|(c, _)| c == bob.connection.as_str()));
    assert_eq!(frames_for(&posts, &bob).len(), 2, "{posts:?}");

    // The uploads fixture (an S3 notification in an SQS record) for this stack's bucket: file
    // 789 is the fixture's PDF, which gets no preview; the record is handled, not failed.
    let mut uploads = fixture::<SqsEvent>("sqs-upload-notification.json");
    for record in &mut uploads.records {
        record.body = record
            .body
            .take()
            .map(|b| b.replace("FILES_BUCKET", &stack.bucket));
        let objects =
            messaging_core::uploads::parse_s3_notification(record.body.as_deref().unwrap())
                .unwrap();
        let outcome =
            messaging_handlers::image_preview::preview_object(&stack.previews, &objects[0])
                .await
                .unwrap();
        assert_eq!(
            outcome,
            messaging_handlers::image_preview::Outcome::Skipped("a type without previews")
        );
    }
    let handled = messaging_handlers::image_preview::handle(&stack.previews, uploads).await;
    assert!(handled.batch_item_failures.is_empty());

    // The schedule fixture runs the notification batch (nothing is due yet).
    let event: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
        fixture_value("schedule-notify-batch.json");
    let report = messaging_handlers::notify_batch::handle(&stack.notify, event)
        .await
        .unwrap();
    assert_eq!(report.emails, 0, "{report:?}");
    // The worker fixture: one pass over tenant 123.
    let work: aws_lambda_events::sqs::SqsEvent = fixture_value("sqs-notify-work.json");
    let response = messaging_handlers::notify_batch::handle_work(&stack.notify, work, None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // The lifecycle fixture: a step of a job tenant 123 does not have (set a real jobId to run
    // one with `sam local invoke`): dropped, nothing written, not failed (it never would
    // succeed).
    let before = stack.snapshot().await;
    let step: SqsEvent = fixture_value("sqs-lifecycle-step.json");
    let response = messaging_handlers::lifecycle::handle(&stack.lifecycle, step).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(stack.snapshot().await, before);

    let gone = disconnect::handle(&stack.disconnect, &ws("disconnect.json"))
        .await
        .unwrap();
    assert_eq!(gone.status_code, 200);
    let items = stack.snapshot().await;
    assert!(
        items.keys().all(|k| !k.contains(CONNECTION)),
        "{:?}",
        items.keys()
    );
}
