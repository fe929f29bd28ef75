//! The single DynamoDB table: its layout ([`table`]), its items ([`items`]) and every
//! operation on it, one file per area. Handlers get domain types back, never rows with keys.

pub mod items;
pub mod table;

mod audit;
mod connections;
mod conversations;
mod files;
mod lifecycle;
mod limits;
mod messages;
mod notifications;
mod requests;
mod search;
mod service;

pub use connections::{ConnectionRecord, Registered, RemovedConnection, PRESENCE_TTL_MILLIS};
pub use conversations::{
    ActivityPosition, JoinOutcome, NewConversation, Recipients, RecipientsPage,
};
pub use files::{file_object_key, file_of_object_key, preview_object_key, StoredFile};
pub use lifecycle::{export_record, ChangedPage, JobRecord, Walk, WalkedItem};
pub use messages::{
    new_message_id, MessagePage, MessageRange, NewMessage, Sent, StoredMessage, VOID_AFTER_MILLIS,
};
pub use notifications::{
    notification_id, Delivery, NewNotification, PendingCursor, StoredNotification,
    CLAIM_EXPIRY_MILLIS,
};
pub use search::line_of;
pub use service::{Claim, IDEMPOTENCY_STALE_MILLIS, IDEMPOTENCY_TTL_SECONDS};

/// The messaging table: every item of every tenant, in the layout of [`table`].
#[derive(Debug, Clone)]
pub struct MessagingTable {
    client: aws_sdk_dynamodb::Client,
    name: String,
    /// Subscriptions a shard of a conversation created through this table is sized for
    /// (`messaging_core::shards`; fixed in the conversation's sizing by its first write).
    shard_size: u32,
}

impl MessagingTable {
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            shard_size: messaging_core::shards::DEFAULT_SHARD_SIZE,
        }
    }

    /// Conversations created from now on get shards of `size` subscriptions (tests and
    /// demonstrations that show many shards without tens of thousands of members).
    pub fn with_shard_size(mut self, size: u32) -> Self {
        self.shard_size = size.max(1);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }
}
