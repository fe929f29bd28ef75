//! Chat messages: store, and read back newest first.

use serde_dynamo::to_item;

use messaging_core::protocol::MessageView;
use messaging_core::{ConversationId, MessageId, TenantId};

use crate::connections::{key_map, s};
use crate::error::{classify, corrupt, StoreError};
use crate::items::MessageItem;
use crate::requests::{decode_all, with_prefix};
use crate::table;
use crate::MessagingTable;

/// A new time-ordered message id (UUIDv7 as 32 hex digits: sorts by creation time).
pub fn new_message_id() -> MessageId {
    // 32 lowercase hex digits always pass MessageId's validation.
    MessageId::parse(uuid::Uuid::now_v7().simple().to_string()).unwrap_or_else(|_| unreachable!())
}

impl MessagingTable {
    /// Stores a message and moves the conversation's `lastActivity` forward. The message put is
    /// conditional (a message id is never overwritten); `lastActivity` only ever increases.
    pub async fn put_message(
        &self,
        tenant: &TenantId,
        message: &MessageView,
    ) -> Result<(), StoreError> {
        let keys = table::tenant(tenant);
        let key = keys.message(&message.conversation_id, &message.message_id);
        let item = MessageItem {
            pk: key.pk,
            sk: key.sk,
            message: message.clone(),
            user_index_pk: keys.user_index_pk(&message.sender_id),
        };
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_item(&item).map_err(|e| corrupt("message", e))?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| classify("PutItem(message)", e))?;
        let touched = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&keys.conversation(&message.conversation_id))))
            .update_expression("SET #last = :at")
            .condition_expression("attribute_exists(PK) AND #last < :at")
            .expression_attribute_names("#last", "lastActivity")
            .expression_attribute_values(":at", s(&message.timestamp))
            .send()
            .await;
        match touched {
            Ok(_) => Ok(()),
            // A later message already moved it on: nothing to do.
            Err(e) => match classify("UpdateItem(lastActivity)", e) {
                StoreError::ConditionFailed(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Deletes a message that could not be handed on (the sender is told to send it again).
    pub async fn delete_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
    ) -> Result<(), StoreError> {
        self.delete_keys(&[table::tenant(tenant).message(conversation, message)])
            .await
    }

    /// The newest `limit` messages of a conversation, newest first.
    pub async fn recent_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        limit: i32,
    ) -> Result<Vec<MessageView>, StoreError> {
        let keys = table::tenant(tenant);
        let query = self.client.query().table_name(&self.name);
        let output = with_prefix(query, &keys.pk(), &keys.messages_prefix(conversation))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query(messages)", e))?;
        let stored: Vec<MessageItem> = decode_all(output.items.unwrap_or_default(), "message")?;
        Ok(stored.into_iter().map(|m| m.message).collect())
    }
}
