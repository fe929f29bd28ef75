//! The broadcast queue: handlers enqueue one job per event to fan out; `broadcast` consumes.

use serde::{Deserialize, Serialize};

use messaging_core::{ConnectionId, ConversationId, FileId, TenantId, UserId};

use crate::error::{classify, AwsError};

/// Deliver `frame` to an [`Audience`] (or, on a retry, to `only` those connections).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastJob {
    /// Unique id of the event (a message's id for NEW_MESSAGE): with `attempt`, the FIFO
    /// deduplication id, so enqueueing the same event twice within 5 minutes delivers once.
    pub id: String,
    pub tenant: TenantId,
    /// Who receives it, and so which FIFO message group it is ordered in.
    #[serde(flatten)]
    pub audience: Audience,
    /// The exact JSON text to send (serialised once, not once per recipient).
    pub frame: String,
    /// The connection that caused the event (it already got its ACK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ConnectionId>,
    /// A retry of a partly failed job: deliver only to these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<ConnectionId>>,
    /// A later page of a conversation's subscribers: those after this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ConnectionId>,
    /// Epoch ms after which delivering is pointless (typing indicators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// 0 for the first delivery attempt.
    #[serde(default)]
    pub attempt: u32,
    /// How this job derives from the one first queued: `r` for each retry of the recipients
    /// that failed, `c` for each continuation of the recipients a run had no time left for,
    /// `p` for each next page of subscribers.
    /// Part of the deduplication id, so two derived jobs never share one, and a replayed
    /// invocation that queues the same derived job again is dropped as a duplicate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lineage: String,
    /// Epoch ms the event was accepted (fan-out latency is measured from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<i64>,
    /// A message whose conversation members who are not connected (or are @mentioned) get a
    /// notification, written by the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
}

/// Who a job is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AudienceFields", into = "AudienceFields")]
pub enum Audience {
    /// Every connection subscribed to the conversation; ordered in the conversation's group.
    Subscribers(ConversationId),
    /// These users' live connections (a member who was just removed, a file's readers),
    /// ordered with the other events of `group`.
    Users {
        group: MessageGroup,
        users: Vec<UserId>,
    },
}

/// What a FIFO message group orders: the events of one conversation, or of one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageGroup {
    Conversation(ConversationId),
    File(FileId),
}

/// The job's wire fields for its audience: `conversation` (its subscribers, or with `users`
/// the group those users' event is ordered in), or `file` with `users`.
#[derive(Serialize, Deserialize)]
struct AudienceFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    users: Option<Vec<UserId>>,
}

impl TryFrom<AudienceFields> for Audience {
    type Error = &'static str;

    fn try_from(fields: AudienceFields) -> Result<Self, Self::Error> {
        match (fields.conversation, fields.file, fields.users) {
            (Some(c), None, None) => Ok(Audience::Subscribers(c)),
            (Some(c), None, Some(users)) => Ok(Audience::Users {
                group: MessageGroup::Conversation(c),
                users,
            }),
            (None, Some(f), Some(users)) => Ok(Audience::Users {
                group: MessageGroup::File(f),
                users,
            }),
            _ => {
                Err("a job names `conversation`, `conversation` and `users`, or `file` and `users`")
            }
        }
    }
}

impl From<Audience> for AudienceFields {
    fn from(audience: Audience) -> Self {
        let (conversation, file, users) = match audience {
            Audience::Subscribers(c) => (Some(c), None, None),
            Audience::Users {
                group: MessageGroup::Conversation(c),
                users,
            } => (Some(c), None, Some(users)),
            Audience::Users {
                group: MessageGroup::File(f),
                users,
            } => (None, Some(f), Some(users)),
        };
        Self {
            conversation,
            file,
            users,
        }
    }
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
    /// A job for `audience` with nothing else set.
    pub fn new(id: impl Into<String>, tenant: TenantId, audience: Audience, frame: String) -> Self {
        Self {
            id: id.into(),
            tenant,
            audience,
            frame,
            exclude: None,
            only: None,
            after: None,
            expires_at: None,
            attempt: 0,
            lineage: String::new(),
            accepted_at: None,
            notify: None,
        }
    }

    /// Not to `connection` (the one that caused the event: it already got its ACK).
    pub fn excluding(mut self, connection: &ConnectionId) -> Self {
        self.exclude = Some(connection.clone());
        self
    }

    /// Dropped, not delivered, once `at` (epoch ms) has passed.
    pub fn expiring(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The conversation whose subscribers receive this job, if that is its audience.
    pub fn subscribers_of(&self) -> Option<&ConversationId> {
        match &self.audience {
            Audience::Subscribers(conversation) => Some(conversation),
            Audience::Users { .. } => None,
        }
    }

    /// The FIFO message group: one per conversation (and per file), so its events keep their
    /// order. Ids cannot contain `#`, so groups of different things never meet. SQS takes at
    /// most 128 characters and two 64-character ids make more: a longer group is replaced by
    /// its SHA-256 (same conversation, same group; `~` is in no id, so no short group is one).
    pub fn group(&self) -> String {
        let group = match &self.audience {
            Audience::Subscribers(c)
            | Audience::Users {
                group: MessageGroup::Conversation(c),
                ..
            } => format!("{}#{c}", self.tenant),
            Audience::Users {
                group: MessageGroup::File(f),
                ..
            } => format!("{}#FILE#{f}", self.tenant),
        };
        if group.len() <= MAX_GROUP_ID_CHARS {
            return group;
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, group.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("~{hex}")
    }

    /// The next attempt, for just the recipients `only` (they failed).
    pub fn retry(&self, only: Vec<ConnectionId>) -> Self {
        let mut again = self.clone();
        again.only = Some(only);
        again.attempt += 1;
        again.lineage.push('r');
        again
    }

    /// The same attempt, for the conversation's subscribers after `after` (the next page).
    pub fn next_page(&self, after: ConnectionId) -> Self {
        let mut next = self.clone();
        next.only = None;
        next.after = Some(after);
        next.lineage.push('p');
        next
    }

    /// The same attempt, for just the recipients `only` (this run had no time left for them).
    pub fn continuation(&self, only: Vec<ConnectionId>) -> Self {
        let mut rest = self.clone();
        rest.only = Some(only);
        rest.lineage.push('c');
        rest
    }

    /// FIFO deduplication id: the event, the attempt, and (for a derived job) a digest of its
    /// lineage; at most 128 characters, as SQS requires.
    fn deduplication_id(&self) -> String {
        if self.lineage.is_empty() {
            return format!("{}:{}", self.id, self.attempt);
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.lineage.as_bytes());
        let short: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}:{}:{short}", self.id, self.attempt)
    }
}

/// SQS's longest `MessageGroupId` (and `MessageDeduplicationId`).
pub const MAX_GROUP_ID_CHARS: usize = 128;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(audience: Audience) -> BroadcastJob {
        BroadcastJob::new("e1", TenantId::parse("t").unwrap(), audience, "{}".into())
    }

    #[test]
    fn each_audience_round_trips_and_keeps_its_group() {
        let c = ConversationId::parse("c").unwrap();
        let f = FileId::parse("c").unwrap();
        let users = vec![UserId::parse("u").unwrap()];
        let cases = [
            (Audience::Subscribers(c.clone()), "t#c"),
            (
                Audience::Users {
                    group: MessageGroup::Conversation(c),
                    users: users.clone(),
                },
                "t#c",
            ),
            (
                Audience::Users {
                    group: MessageGroup::File(f),
                    users,
                },
                "t#FILE#c",
            ),
        ];
        for (audience, group) in cases {
            let job = job(audience);
            let text = serde_json::to_string(&job).unwrap();
            assert_eq!(serde_json::from_str::<BroadcastJob>(&text).unwrap(), job);
            assert_eq!(job.group(), group, "{text}");
        }
    }

    #[test]
    fn groups_of_the_longest_ids_fit_sqs_and_stay_apart() {
        let tenant = TenantId::parse("t".repeat(64)).unwrap();
        let long = |c: char| c.to_string().repeat(64);
        let job_of = |audience| BroadcastJob::new("e1", tenant.clone(), audience, "{}".into());
        let conversation = |id: &str| Audience::Subscribers(ConversationId::parse(id).unwrap());
        let file = |id: &str| Audience::Users {
            group: MessageGroup::File(FileId::parse(id).unwrap()),
            users: vec![],
        };
        let groups = [
            job_of(conversation(&long('a'))).group(),
            job_of(conversation(&long('b'))).group(),
            job_of(file(&long('a'))).group(),
            job_of(conversation("short")).group(),
        ];
        for group in &groups {
            assert!(group.len() <= MAX_GROUP_ID_CHARS, "{group}");
        }
        assert_eq!(groups[3], format!("{}#short", "t".repeat(64)));
        let mut unique = groups.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), groups.len());
        // Stable: the same conversation always lands in the same group.
        assert_eq!(job_of(conversation(&long('a'))).group(), groups[0]);
    }

    #[test]
    fn derived_jobs_never_share_a_deduplication_id() {
        let c = ConversationId::parse("c").unwrap();
        let first = job(Audience::Subscribers(c));
        let only = vec![ConnectionId::parse("x=").unwrap()];
        let (retry, rest) = (first.retry(only.clone()), first.continuation(only.clone()));
        let page = first.next_page(ConnectionId::parse("y=").unwrap());
        let ids = [
            first.deduplication_id(),
            retry.deduplication_id(),
            rest.deduplication_id(),
            page.deduplication_id(),
            page.next_page(ConnectionId::parse("z=").unwrap())
                .deduplication_id(),
            // The retry of a continuation and the continuation of a retry: same attempt.
            rest.retry(only.clone()).deduplication_id(),
            retry.continuation(only.clone()).deduplication_id(),
        ];
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert_eq!(
            ids[0], "e1:0",
            "a first job keeps the id queued jobs have today"
        );
        let mut long = first.clone();
        for _ in 0..500 {
            long = long.continuation(only.clone());
        }
        assert!(long.deduplication_id().len() <= 128);
    }

    #[test]
    fn a_job_without_a_clear_audience_is_refused() {
        for body in [
            r#"{"id":"e","tenant":"t","frame":"{}"}"#,
            r#"{"id":"e","tenant":"t","file":"f","frame":"{}"}"#,
            r#"{"id":"e","tenant":"t","conversation":"c","file":"f","users":["u"],"frame":"{}"}"#,
        ] {
            assert!(
                serde_json::from_str::<BroadcastJob>(body).is_err(),
                "{body}"
            );
        }
        let queued_today =
            r#"{"id":"e","tenant":"t","conversation":"c","frame":"{}","exclude":"x"}"#;
        let job: BroadcastJob = serde_json::from_str(queued_today).unwrap();
        assert_eq!(job.subscribers_of().map(|c| c.as_str()), Some("c"));
    }
}
