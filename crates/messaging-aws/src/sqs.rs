//! The broadcast queue: handlers enqueue one job per event to fan out; `broadcast` consumes.

pub use messaging_core::jobs::{
    Audience, BroadcastJob, MessageGroup, NotifySpec, MAX_GROUP_ID_CHARS,
};

use crate::error::{classify, AwsError};

/// A fresh event id for jobs that have no natural one (typing, membership events).
pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The SQS FIFO queue the broadcast function consumes.
#[derive(Debug, Clone)]
pub struct BroadcastQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl BroadcastQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Enqueues a job in its message group.
    pub async fn send(&self, job: &BroadcastJob) -> Result<(), AwsError> {
        let body = serde_json::to_string(job).map_err(|e| AwsError::Corrupt(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(job.group())
            .message_deduplication_id(job.deduplication_id())
            .send()
            .await
            .map_err(|e| classify("SQS SendMessage(broadcast)", e))?;
        Ok(())
    }

    /// Enqueues a raw body (dead-lettering a job that could not even be parsed).
    pub async fn send_raw(
        &self,
        body: &str,
        group: &str,
        deduplication_id: &str,
    ) -> Result<(), AwsError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(deduplication_id)
            .send()
            .await
            .map_err(|e| classify("SQS SendMessage(dead letter)", e))?;
        Ok(())
    }
}

/// A standard SQS queue of JSON work items: the notification batch's tenants to settle.
#[derive(Debug, Clone)]
pub struct WorkQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl WorkQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Enqueues one item.
    pub async fn send<T: serde::Serialize>(&self, item: &T) -> Result<(), AwsError> {
        let body = serde_json::to_string(item).map_err(|e| AwsError::Corrupt(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| classify("SQS SendMessage(work)", e))?;
        Ok(())
    }

    /// Enqueues every item, ten to a SendMessageBatch; an entry SQS failed is sent again once,
    /// then reported.
    pub async fn send_all<T: serde::Serialize>(&self, items: &[T]) -> Result<(), AwsError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for chunk in items.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, item) in chunk.iter().enumerate() {
                let body =
                    serde_json::to_string(item).map_err(|e| AwsError::Corrupt(e.to_string()))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| AwsError::Failed(format!("SQS batch entry: {e}")))?,
                );
            }
            for attempt in 0..2 {
                let output = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("SQS SendMessageBatch(work)", e))?;
                let failed: Vec<String> = output.failed.iter().map(|f| f.id.clone()).collect();
                if failed.is_empty() {
                    break;
                }
                if attempt == 1 {
                    return Err(AwsError::Unavailable(format!(
                        "SQS SendMessageBatch(work): {} entries not accepted",
                        failed.len()
                    )));
                }
                entries.retain(|e| failed.contains(&e.id));
            }
        }
        Ok(())
    }
}
