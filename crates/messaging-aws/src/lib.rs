//! Every adapter of StackPro Messaging to AWS, one module per service:
//!
//! | module | service | what for |
//! |---|---|---|
//! | [`dynamodb`] | DynamoDB | the single table: its layout ([`table`]), items and operations |
//! | [`sqs`] | SQS | the FIFO broadcast queue between accepting an event and fanning it out |
//! | [`apigateway`] | API Gateway management API | posting frames to `@connections` |
//! | [`s3`] | S3 | presigned upload and download URLs of the files bucket |
//! | [`ses`] | SESv2 | notification emails |
//! | [`sns`] | SNS | push notifications and text messages |
//! | [`cloudwatch`] | CloudWatch | gauges (`PutMetricData`) |
//! | [`secrets`] | Secrets Manager | the functions' secrets, read at start-up |
//!
//! Every failure is an [`AwsError`], classified retryable or not; [`request_counter`] counts
//! the requests a client sends (tests and benchmarks).

pub mod apigateway;
pub mod cloudwatch;
pub mod dynamodb;
pub mod error;
pub mod request_counter;
pub mod s3;
pub mod secrets;
pub mod ses;
pub mod sns;
pub mod sqs;

pub use apigateway::{ConnectionsApi, PostOutcome};

/// How long any AWS call of a function may take. Without these the SDK waits for a stalled
/// connection as long as the function lives (10 s for the WebSocket functions), and the
/// client gets API Gateway's bare "Internal server error" instead of a retryable ERROR. An
/// attempt that stalls is abandoned after 3 s and retried (the SDK's standard retries, 3
/// attempts); the whole call gives up after 6 s, leaving the function time to answer.
/// Same-region AWS endpoints answer in milliseconds; the fault tests hold these numbers to it.
pub fn timeouts() -> aws_smithy_types::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(6))
        .build()
}
pub use cloudwatch::Gauges;
pub use dynamodb::{
    export_record, file_object_key, file_of_object_key, items, new_message_id, notification_id,
    preview_object_key, table, ChangedPage, Claim, ConnectionRecord, Delivery, JobRecord,
    JoinOutcome, MessagePage, MessageRange, MessagingTable, NewConversation, NewMessage,
    NewNotification, PendingCursor, Recipients, RecipientsPage, Registered, RemovedConnection,
    Sent, StoredFile, StoredMessage, StoredNotification, Walk, WalkedItem, PRESENCE_TTL_MILLIS,
    VOID_AFTER_MILLIS,
};
pub use error::AwsError;
pub use request_counter::RequestCounter;
pub use s3::{FileStorage, Objects, Read};
pub use secrets::Secrets;
pub use ses::Mailer;
pub use sns::Sns;
pub use sqs::{
    new_event_id, Audience, BroadcastJob, BroadcastQueue, MessageGroup, NotifySpec, WorkQueue,
};
