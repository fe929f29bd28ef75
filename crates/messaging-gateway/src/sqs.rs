//! The SQS event source mapping of each function with an `SQS` event in the template:
//! long-poll, invoke with the batch, delete what succeeded, leave `batchItemFailures` (or
//! everything, when the function failed) for redelivery and the queue's dead-letter redrive.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsBatchResponse;
use messaging_devstack::event_source::SqsEventSource;
use messaging_devstack::SqsEventSourceDefinition;
use tracing::{info, warn};

use crate::Shared;

pub(crate) struct Mapping {
    pub definition: SqsEventSourceDefinition,
    pub source: SqsEventSource,
}

pub(crate) async fn run(shared: Arc<Shared>, mapping: Mapping) {
    let mut shutdown = shared.shutdown.clone();
    let function = &mapping.definition.function;
    info!(%function, queue = %mapping.definition.queue_logical_id, "SQS event source mapping started");
    loop {
        let received = tokio::select! {
            _ = shutdown.changed() => return,
            received = mapping.source.receive(shared.sqs_wait_seconds) => received,
        };
        let event = match received {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "receiving from SQS failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let all: Vec<String> = event
            .records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect();
        let value = serde_json::to_value(&event).unwrap_or_default();
        let failed: Vec<String> = match shared.functions.invoke(function, value).await {
            Ok(response) if mapping.definition.report_batch_item_failures => {
                let response: SqsBatchResponse =
                    serde_json::from_value(response).unwrap_or_default();
                response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect()
            }
            Ok(_) => Vec::new(),
            Err(e) => {
                warn!(error = %e, %function, "function failed; the whole batch returns to the queue");
                all.clone()
            }
        };
        let response = failures_response(&failed);
        if let Err(e) = mapping.source.complete(&event, &response).await {
            warn!(error = %format!("{e:#}"), "deleting processed messages failed; they will be redelivered");
        }
        if let (false, Some(seconds)) = (failed.is_empty(), shared.failed_visibility_seconds) {
            if let Err(e) = mapping.source.release(&event, &failed, seconds).await {
                warn!(error = %format!("{e:#}"), "could not shorten the visibility of failed messages");
            }
        }
    }
}

fn failures_response(failed: &[String]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .iter()
        .map(|id| {
            let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
            failure.item_identifier = id.clone();
            failure
        })
        .collect();
    response
}
