//! Errors of the store adapters, classified so callers know whether to retry.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
    #[error("store request failed: {0}")]
    Failed(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
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

/// Classifies any SDK error (DynamoDB, SQS, …) by its error code and failure kind.
pub(crate) fn classify<E>(operation: &str, error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code().map(str::to_owned);
    let text = match (&code, error.message()) {
        (Some(code), Some(message)) => format!("{operation}: {code}: {message}"),
        (Some(code), None) => format!("{operation}: {code}"),
        _ => format!("{operation}: {}", DisplayErrorContext(&error)),
    };
    let status = error
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_default();
    match (&error, code.as_deref()) {
        (_, Some("ConditionalCheckFailedException")) => StoreError::ConditionFailed(text),
        (_, Some(c)) if RETRYABLE_CODES.contains(&c) => StoreError::Unavailable(text),
        (
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_),
            _,
        ) => StoreError::Unavailable(text),
        _ if status >= 500 => StoreError::Unavailable(text),
        _ => StoreError::Failed(text),
    }
}

/// Whether a conditional write was applied: `false` when its condition failed (the item was in
/// another state), an error for anything else.
pub(crate) fn applied<T, E>(
    operation: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) => match classify(operation, e) {
            StoreError::ConditionFailed(_) => Ok(false),
            other => Err(other),
        },
    }
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// Like [`classify`], but a cancelled transaction whose reason is a failed condition becomes
/// [`StoreError::ConditionFailed`].
pub(crate) fn classify_transaction(
    operation: &str,
    error: SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        HttpResponse,
    >,
) -> StoreError {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let SdkError::ServiceError(service) = &error {
        if let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() {
            let reasons: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .collect();
            if reasons.contains(&"ConditionalCheckFailed") {
                return StoreError::ConditionFailed(format!(
                    "{operation}: cancelled: {}",
                    reasons.join(",")
                ));
            }
            if reasons.iter().any(|r| {
                matches!(
                    *r,
                    "ThrottlingError" | "TransactionConflict" | "ProvisionedThroughputExceeded"
                )
            }) {
                return StoreError::Unavailable(format!(
                    "{operation}: cancelled: {}",
                    reasons.join(",")
                ));
            }
        }
    }
    classify(operation, error)
}
