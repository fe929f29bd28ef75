//! Errors of the AWS adapters, classified so callers know whether to retry, and the one
//! place that turns them into what a client is told.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tracing::{error, warn};

use messaging_core::{ErrorCode, ProtocolError};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A conditional write found the item in another state (exists / missing).
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// Throttling, timeouts, 5xx: the same call may succeed later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// An item could not be (de)serialised: a bug or a corrupted item.
    #[error("item has an unexpected shape: {0}")]
    Corrupt(String),
    /// Anything else: misconfiguration (missing table, denied access) or a bug.
    #[error("request failed: {0}")]
    Failed(String),
}

impl AwsError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AwsError::Unavailable(_))
    }
}

/// A failure as the client sees it: retryable or not, never the internal detail (which is
/// logged here, once).
impl From<AwsError> for ProtocolError {
    fn from(error: AwsError) -> Self {
        if error.is_retryable() {
            warn!(error = %error, "AWS temporarily unavailable");
            ProtocolError::new(
                ErrorCode::Unavailable,
                "the service is busy; send the same frame again shortly",
            )
        } else {
            error!(error = %error, "AWS request failed");
            ProtocolError::new(
                ErrorCode::Internal,
                "the request failed on our side and was not applied",
            )
        }
    }
}

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
];

/// Reasons of a cancelled transaction that a later attempt may not meet.
const RETRYABLE_CANCELLATIONS: &[&str] = &[
    "ThrottlingError",
    "TransactionConflict",
    "ProvisionedThroughputExceeded",
];

/// Classifies any SDK error (DynamoDB, SQS, …) by its error code and failure kind.
pub(crate) fn classify<E>(operation: &str, error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify_with(operation, error, Detail::Message)
}

/// Like [`classify`], but the text keeps only the error code and HTTP status, never the
/// service's message: SES and SNS name the recipient (address, phone number, endpoint) in
/// theirs, and the text ends up in the logs.
pub(crate) fn classify_redacted<E>(operation: &str, error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify_with(operation, error, Detail::CodeOnly)
}

#[derive(Clone, Copy, PartialEq)]
enum Detail {
    Message,
    CodeOnly,
}

fn classify_with<E>(operation: &str, error: SdkError<E, HttpResponse>, detail: Detail) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code().map(str::to_owned);
    let status = error
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_default();
    let text = match (&code, error.message(), detail) {
        (Some(code), Some(message), Detail::Message) => format!("{operation}: {code}: {message}"),
        (Some(code), _, _) => format!("{operation}: {code}"),
        (None, _, Detail::Message) => format!("{operation}: {}", DisplayErrorContext(&error)),
        (None, _, Detail::CodeOnly) => format!("{operation}: {}", failure_kind(&error, status)),
    };
    match (&error, code.as_deref()) {
        (_, Some("ConditionalCheckFailedException")) => AwsError::ConditionFailed(text),
        (_, Some(c)) if RETRYABLE_CODES.contains(&c) => AwsError::Unavailable(text),
        (
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_),
            _,
        ) => AwsError::Unavailable(text),
        _ if status >= 500 => AwsError::Unavailable(text),
        _ => AwsError::Failed(text),
    }
}

/// What went wrong, without anything the service said: the kind of failure and the status.
fn failure_kind<E>(error: &SdkError<E, HttpResponse>, status: u16) -> String {
    let kind = match error {
        SdkError::ConstructionFailure(_) => "request not built",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "not sent (connection failed)",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ServiceError(_) => "service error",
        _ => "failed",
    };
    if status == 0 {
        kind.to_owned()
    } else {
        format!("{kind} (HTTP {status})")
    }
}

/// Whether a conditional write was applied: `false` when its condition failed (the item was in
/// another state), an error for anything else.
pub(crate) fn applied<T, E>(
    operation: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<bool, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) => match classify(operation, e) {
            AwsError::ConditionFailed(_) => Ok(false),
            other => Err(other),
        },
    }
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> AwsError {
    AwsError::Corrupt(format!("{what}: {error}"))
}

/// The reasons of a cancelled TransactWriteItems, one per action in request order (`None`:
/// that action was fine); `None` when the error is not a cancellation.
pub(crate) fn cancellation_reasons(
    error: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Option<Vec<Option<String>>> {
    let SdkError::ServiceError(service) = error else {
        return None;
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
        return None;
    };
    Some(
        cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
            .collect(),
    )
}

/// Whether the action at `index` of a cancelled transaction failed its condition.
pub(crate) fn condition_failed_at(reasons: &[Option<String>], index: usize) -> bool {
    reasons
        .get(index)
        .and_then(|c| c.as_deref())
        .is_some_and(|c| c == "ConditionalCheckFailed")
}

/// Like [`classify`], but a cancelled transaction whose reason is a failed condition becomes
/// [`AwsError::ConditionFailed`], and one cancelled by throttling or a conflict
/// [`AwsError::Unavailable`].
pub(crate) fn classify_transaction(
    operation: &str,
    error: SdkError<TransactWriteItemsError, HttpResponse>,
) -> AwsError {
    if let Some(reasons) = cancellation_reasons(&error) {
        let reasons: Vec<&str> = reasons.iter().flatten().map(String::as_str).collect();
        let text = format!("{operation}: cancelled: {}", reasons.join(","));
        if reasons.contains(&"ConditionalCheckFailed") {
            return AwsError::ConditionFailed(text);
        }
        if reasons.iter().any(|r| RETRYABLE_CANCELLATIONS.contains(r)) {
            return AwsError::Unavailable(text);
        }
    }
    classify(operation, error)
}

#[cfg(test)]
mod tests {
    use aws_sdk_sesv2::operation::send_email::SendEmailError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn rejected() -> SdkError<SendEmailError, HttpResponse> {
        let error = SendEmailError::generic(
            ErrorMetadata::builder()
                .code("MessageRejected")
                .message("Email address is not verified: bob@client.example")
                .build(),
        );
        let response = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
        SdkError::service_error(error, response)
    }

    #[test]
    fn a_redacted_error_keeps_the_code_and_drops_the_recipient() {
        let error = classify_redacted("SESv2 SendEmail", rejected());
        assert!(matches!(error, AwsError::Failed(_)), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("MessageRejected"), "{text}");
        assert!(!text.contains("bob@"), "{text}");
        // The unredacted classification (DynamoDB, SQS) keeps the service's message.
        assert!(classify("SESv2 SendEmail", rejected())
            .to_string()
            .contains("not verified"));
    }

    #[test]
    fn a_redacted_error_without_a_code_says_what_kind_of_failure_it_was() {
        let response = HttpResponse::new(StatusCode::try_from(503).unwrap(), SdkBody::empty());
        let error: SdkError<SendEmailError, HttpResponse> =
            SdkError::response_error("body with +15550100 in it", response);
        let redacted = classify_redacted("SNS Publish(SMS)", error);
        assert!(redacted.is_retryable());
        assert_eq!(
            redacted.to_string(),
            "temporarily unavailable: SNS Publish(SMS): unreadable response (HTTP 503)"
        );
    }
}
