//! The SQS event source mapping, as Lambda runs it: receive a batch, hand it to the function
//! as an `SqsEvent`, delete what succeeded and leave `batchItemFailures` to become visible
//! again (and, after the queue's `maxReceiveCount`, to move to its dead-letter queue).

use std::collections::HashMap;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};

/// Lambda's default batch size for SQS.
pub const DEFAULT_BATCH_SIZE: i32 = 10;

pub struct SqsEventSource {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    batch_size: i32,
}

impl SqsEventSource {
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        queue_arn: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            queue_arn: queue_arn.into(),
            region: region.into(),
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// Records per batch (the event source's `BatchSize`, at most 10).
    pub fn with_batch_size(mut self, batch_size: i32) -> Self {
        self.batch_size = batch_size.clamp(1, 10);
        self
    }

    /// Makes failed records visible again after `seconds` instead of the queue's visibility
    /// timeout (locally only, to see redelivery and dead-letter redrive without waiting).
    pub async fn release(
        &self,
        event: &SqsEvent,
        failed: &[String],
        seconds: i32,
    ) -> anyhow::Result<()> {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = event
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.message_id.as_ref().is_some_and(|id| failed.contains(id)))
            .filter_map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.receipt_handle.clone()?)
                    .visibility_timeout(seconds)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
        Ok(())
    }

    /// Long-polls for up to `wait_seconds`; `None` when nothing arrived.
    pub async fn receive(&self, wait_seconds: i32) -> anyhow::Result<Option<SqsEvent>> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(None);
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id;
                record.receipt_handle = m.receipt_handle;
                record.body = m.body;
                record.md5_of_body = m.md5_of_body;
                record.attributes = m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect::<HashMap<_, _>>();
                record.event_source = Some("aws:sqs".into());
                record.event_source_arn = Some(self.queue_arn.clone());
                record.aws_region = Some(self.region.clone());
                record
            })
            .collect();
        Ok(Some(event))
    }

    /// Deletes every record of `event` not named in the function's batch item failures.
    /// Returns how many were deleted.
    pub async fn complete(
        &self,
        event: &SqsEvent,
        response: &SqsBatchResponse,
    ) -> anyhow::Result<usize> {
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let entries: Vec<DeleteMessageBatchRequestEntry> = event
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| !failed.contains(&r.message_id.as_deref().unwrap_or_default()))
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        let count = entries.len();
        if count > 0 {
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
        Ok(count)
    }
}
