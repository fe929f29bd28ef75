//! Adapters of StackPro Messaging to AWS: the single DynamoDB table ([`table`] owns its
//! layout), the SQS broadcast queue and the API Gateway `@connections` management API.

pub mod connections_api;
pub mod error;
pub mod items;
pub mod queue;
pub mod request_counter;
pub mod storage;
pub mod table;

mod connections;
mod conversations;
mod files;
mod messages;
mod notifications;
mod requests;

pub use connections::{ConnectionRecord, Registered, RemovedConnection, PRESENCE_TTL_MILLIS};
pub use connections_api::{ConnectionsApi, PostOutcome};
pub use conversations::{JoinOutcome, NewConversation, Recipients};
pub use error::StoreError;
pub use files::{file_object_key, StoredFile};
pub use messages::{new_message_id, MessagePage, MessageRange, NewMessage, Sent, StoredMessage};
pub use notifications::{Delivery, NewNotification, StoredNotification};
pub use queue::{new_event_id, BroadcastJob, BroadcastQueue, NotifySpec};
pub use request_counter::RequestCounter;
pub use storage::FileStorage;

/// The messaging table: every item of every tenant, in the layout of [`table`].
#[derive(Debug, Clone)]
pub struct MessagingTable {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl MessagingTable {
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }
}
