//! The API Gateway `@connections` management API: post a frame to one connection.

use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, SdkError};
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use messaging_core::ConnectionId;

/// What happened to one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered,
    /// 410: the connection is closed; its records should be removed.
    Gone,
    /// 429 (`LimitExceededException`): the account's API Gateway requests a second are spent
    /// (docs/scale.md). Not this connection's fault: the sender slows down and tries again.
    Throttled(String),
    /// Timed out, 5xx: worth retrying later.
    Retryable(String),
    /// Will not succeed on retry (payload too large, access denied).
    Permanent(String),
}

#[derive(Debug, Clone)]
pub struct ConnectionsApi {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ConnectionsApi {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self { client }
    }

    pub async fn post(&self, connection: &ConnectionId, data: &[u8]) -> PostOutcome {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => PostOutcome::Delivered,
            Err(SdkError::ServiceError(e)) => match e.err() {
                PostToConnectionError::GoneException(_) => PostOutcome::Gone,
                PostToConnectionError::LimitExceededException(_) => {
                    PostOutcome::Throttled("LimitExceededException".into())
                }
                PostToConnectionError::PayloadTooLargeException(_) => {
                    PostOutcome::Permanent("PayloadTooLargeException".into())
                }
                PostToConnectionError::ForbiddenException(_) => PostOutcome::Permanent(
                    "ForbiddenException: the function lacks execute-api:ManageConnections on this API".into(),
                ),
                other => {
                    let status = e.raw().status().as_u16();
                    let text = DisplayErrorContext(other).to_string();
                    if status == 429 {
                        PostOutcome::Throttled(text)
                    } else if status >= 500 {
                        PostOutcome::Retryable(text)
                    } else {
                        PostOutcome::Permanent(text)
                    }
                }
            },
            Err(other) => PostOutcome::Retryable(DisplayErrorContext(&other).to_string()),
        }
    }
}
