//! The broadcast queue: `route` enqueues one job per event to fan out; `broadcast` consumes.

use serde::{Deserialize, Serialize};

use messaging_core::{ConnectionId, ConversationId, TenantId, UserId};

use crate::error::{classify, StoreError};

/// Deliver `frame` to every subscriber of a conversation (or to `only` those connections).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastJob {
    /// Unique id of the event (a message's id for NEW_MESSAGE): with `attempt`, the FIFO
    /// deduplication id, so enqueueing the same event twice within 5 minutes delivers once.
    pub id: String,
    pub tenant: TenantId,
    pub conversation: ConversationId,
    /// The exact JSON text to send (serialised once, not once per recipient).
    pub frame: String,
    /// The connection that caused the event (it already got its ACK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ConnectionId>,
    /// Deliver to these users' live connections instead of the conversation's subscribers
    /// (a member who was just removed; the readers of a file). `conversation` still names
    /// the FIFO group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<UserId>>,
    /// A retry of a partly failed job: deliver only to these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<ConnectionId>>,
    /// Epoch ms after which delivering is pointless (typing indicators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// 0 for the first delivery attempt.
    #[serde(default)]
    pub attempt: u32,
    /// Epoch ms the event was accepted (fan-out latency is measured from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<i64>,
    /// A message whose conversation members who are not connected (or are @mentioned) get a
    /// notification, written by the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
}

/// What the notifications of a message say, and who sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifySpec {
    pub sender: UserId,
    pub data: messaging_core::templates::NotificationData,
    /// `@names` in the text (the members among them are mentioned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned: Vec<String>,
}

impl BroadcastJob {
    pub fn new(
        id: impl Into<String>,
        tenant: TenantId,
        conversation: ConversationId,
        frame: String,
    ) -> Self {
        Self {
            id: id.into(),
            tenant,
            conversation,
            frame,
            exclude: None,
            users: None,
            only: None,
            expires_at: None,
            attempt: 0,
            accepted_at: None,
            notify: None,
        }
    }

    /// The FIFO message group: one per conversation, so its events keep their order.
    pub fn group(&self) -> String {
        format!("{}#{}", self.tenant, self.conversation)
    }

    fn deduplication_id(&self) -> String {
        format!("{}:{}", self.id, self.attempt)
    }
}

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

    /// Enqueues a job in its conversation's message group.
    pub async fn send(&self, job: &BroadcastJob) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
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
    ) -> Result<(), StoreError> {
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
