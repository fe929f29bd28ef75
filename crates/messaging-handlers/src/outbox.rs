//! The outbox: every event a handler hands to the broadcast queue, one builder per kind of
//! audience, so a job always says whom it is for and in which FIFO group it is ordered.
//!
//! | builder | audience | ordered with | a failure to queue |
//! |---|---|---|---|
//! | [`message`] | the conversation's subscribers | the conversation's events | the sender is told: stored but not delivered live |
//! | [`to_conversation`] | the conversation's subscribers | the conversation's events | messages and typing: the sender is told; changes (edits, reactions, members, read receipts): logged, the change is stored and seen on the next read |
//! | [`to_users`] | named users' live connections (a removed member, a file's readers) | the conversation's or the file's events | logged |
//! | [`announce_presence`] | the subscribers of each of the user's conversations | each conversation's events | logged: presence is also readable |

use tracing::warn;

use messaging_aws::{new_event_id, Audience, BroadcastJob, BroadcastQueue, MessageGroup};
use messaging_core::protocol::{MessageView, PresenceStatus, ServerFrame};
use messaging_core::{ConnectionId, ConversationId, TenantId, UserId};

/// `frame` to every connection subscribed to `conversation`.
pub fn to_conversation(
    tenant: &TenantId,
    conversation: &ConversationId,
    frame: &ServerFrame,
) -> BroadcastJob {
    BroadcastJob::new(
        new_event_id(),
        tenant.clone(),
        Audience::Subscribers(conversation.clone()),
        frame.to_json(),
    )
}

/// A stored message's event (NEW_MESSAGE, THREAD_REPLY) to the conversation's subscribers.
/// Its event id is the message id, so queueing it again (a resent duplicate) within SQS's
/// deduplication window delivers it once; `accepted_at` starts the fan-out latency clock.
pub fn message(
    tenant: &TenantId,
    message: &MessageView,
    frame: &ServerFrame,
    accepted_at: i64,
) -> BroadcastJob {
    let mut job = BroadcastJob::new(
        message.message_id.to_string(),
        tenant.clone(),
        Audience::Subscribers(message.conversation_id.clone()),
        frame.to_json(),
    );
    job.accepted_at = Some(accepted_at);
    job
}

/// `frame` to these users' live connections, ordered with the other events of `group`.
pub fn to_users(
    tenant: &TenantId,
    group: MessageGroup,
    users: Vec<UserId>,
    frame: &ServerFrame,
) -> BroadcastJob {
    BroadcastJob::new(
        new_event_id(),
        tenant.clone(),
        Audience::Users { group, users },
        frame.to_json(),
    )
}

/// Queues a job whose loss costs only its live delivery: a failure is logged, not returned.
pub async fn best_effort(queue: &BroadcastQueue, job: &BroadcastJob, what: &str) {
    if let Err(e) = queue.send(job).await {
        warn!(error = %e, group = %job.group(), "{what} not queued");
    }
}

/// PRESENCE to every conversation `user` belongs to (one job per conversation), when their
/// first connection opens or their last one closes. `exclude`: the connection whose opening
/// this announces.
pub async fn announce_presence(
    queue: &BroadcastQueue,
    tenant: &TenantId,
    user: &UserId,
    status: PresenceStatus,
    conversations: &[ConversationId],
    exclude: Option<&ConnectionId>,
) {
    let frame = ServerFrame::Presence {
        user_id: user.clone(),
        status,
    };
    for conversation in conversations {
        let mut job = to_conversation(tenant, conversation, &frame);
        job.exclude = exclude.cloned();
        best_effort(queue, &job, "presence").await;
    }
}
