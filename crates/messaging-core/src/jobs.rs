//! The jobs functions hand each other through SQS, as their JSON bodies: a [`BroadcastJob`]
//! (route and file-share to broadcast, broadcast to itself for retries and pages) and a
//! [`NotifyWork`] (notify-batch's coordinator to its workers). A body is parsed by the
//! function that receives it and by nothing else; a body that does not parse is refused
//! (and dead-lettered), never guessed at. Both are fuzzed (`fuzz/fuzz_targets/sqs_job.rs`).

use serde::{Deserialize, Serialize};

use crate::{ConnectionId, ConversationId, FileId, TenantId, UserId};

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
    /// `p` for each next page of subscribers, `a` for the rest of a page a run stopped reading
    /// or posting in (its subscribers after the last one it started).
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
    /// Which shard of the conversation's subscriptions it reads (`crate::shards`): 0 for the
    /// job first queued, which reads shard 0 and hands every other shard to a job of its own.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shard: u16,
    /// How many shards the conversation had when the job was split; `None` until then (the
    /// job first queued: it learns the count from its first read and splits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u16>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
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
    pub data: crate::templates::NotificationData,
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
            shard: 0,
            shards: None,
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
            } if self.shard == 0 => format!("{}#{c}", self.tenant),
            Audience::Subscribers(c)
            | Audience::Users {
                group: MessageGroup::Conversation(c),
                ..
            } => format!("{}#{c}#SHARD#{}", self.tenant, self.shard),
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

    /// This job as split over `shards` shards: it goes on with shard 0, and
    /// [`Self::for_shard`] makes the others' jobs. A job split (or made by a split) is never
    /// split again, so no shard gets an event twice.
    pub fn split(&self, shards: u16) -> Self {
        let mut head = self.clone();
        head.shards = Some(shards);
        head
    }

    /// The job for shard `shard` (≥ 1) of a job split over `shards`: the same event to that
    /// shard's subscribers, in that shard's message group (so each shard is posted in
    /// parallel with the others, and in order within itself). Its lineage names the shard,
    /// so the job a replayed split queues again is dropped as a duplicate. Notifications are
    /// the first job's (shard 0's) to write.
    pub fn for_shard(&self, shard: u16, shards: u16) -> Self {
        let mut part = self.clone();
        part.shard = shard;
        part.shards = Some(shards);
        part.only = None;
        part.after = None;
        part.notify = None;
        part.lineage.push('s');
        part.lineage.push_str(&shard.to_string());
        part.lineage.push('.');
        part
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

    /// The same attempt, for the conversation's subscribers after `after` (all of them when
    /// `None`): the part of its page a run did not reach, because its time ran out or a later
    /// read of the page failed, before it had queued the next page. Not a [`Self::next_page`]:
    /// its deduplication id differs, so it is never dropped in favour of a next page that
    /// starts further on.
    pub fn remainder(&self, after: Option<ConnectionId>) -> Self {
        let mut rest = self.clone();
        rest.only = None;
        rest.after = after;
        rest.lineage.push('a');
        rest
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
    pub fn deduplication_id(&self) -> String {
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

/// Where a page of one shard of a tenant's pending notifications stopped (DynamoDB's last
/// evaluated key of the GSI1 query): the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCursor {
    pub shard: usize,
    pub gsi1sk: String,
    pub pk: String,
    pub sk: String,
}

/// One notify-batch work item: a tenant, and where in each of its shards a pass starts (a
/// first pass starts every shard from its oldest; a continuation only the shards with more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyWork {
    pub tenant: TenantId,
    /// Shards to read, each from its cursor (none: from the oldest). Empty: every shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardStart>,
    /// How many passes over this tenant came before in this run.
    #[serde(default)]
    pub pass: u32,
}

/// Where a pass starts in one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardStart {
    pub shard: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PendingCursor>,
}

/// Why an SQS body is not a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("not a job: {0}")]
    Json(String),
    #[error("shard {shard} is not one of the {count} shards")]
    NoSuchShard { shard: usize, count: usize },
    #[error("shard {0} is named twice")]
    RepeatedShard(usize),
    #[error("the cursor of shard {0} was taken in another shard")]
    CursorOfAnotherShard(usize),
}

impl NotifyWork {
    /// A first pass over `tenant`.
    pub fn first(tenant: TenantId) -> Self {
        Self {
            tenant,
            shards: Vec::new(),
            pass: 0,
        }
    }

    /// The work item `body` carries, if every shard it names is one of `shard_count` and named
    /// once, and each cursor was taken in its own shard (so a body can neither make a worker
    /// loop over invented shards nor start one shard from another's position). A cursor can
    /// name no other tenant's items: the query it resumes is keyed by this tenant's shard.
    pub fn parse(body: &str, shard_count: usize) -> Result<Self, JobError> {
        let work: Self = serde_json::from_str(body).map_err(|e| JobError::Json(e.to_string()))?;
        let mut seen = vec![false; shard_count];
        for start in &work.shards {
            let slot = seen.get_mut(start.shard).ok_or(JobError::NoSuchShard {
                shard: start.shard,
                count: shard_count,
            })?;
            if std::mem::replace(slot, true) {
                return Err(JobError::RepeatedShard(start.shard));
            }
            if start.after.as_ref().is_some_and(|c| c.shard != start.shard) {
                return Err(JobError::CursorOfAnotherShard(start.shard));
            }
        }
        Ok(work)
    }

    /// The shards a pass reads, each from where it starts.
    pub fn starts(&self, shard_count: usize) -> Vec<ShardStart> {
        if self.shards.is_empty() {
            (0..shard_count)
                .map(|shard| ShardStart { shard, after: None })
                .collect()
        } else {
            self.shards.clone()
        }
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
    fn a_split_job_posts_each_shard_in_its_own_group_once_and_notifies_from_shard_0_only() {
        let c = ConversationId::parse("FILE").unwrap();
        let mut head = job(Audience::Subscribers(c));
        head.notify = Some(NotifySpec {
            sender: UserId::parse("u").unwrap(),
            data: crate::templates::NotificationData::default(),
            mentioned: vec![],
        });
        let first = head.split(3);
        assert_eq!((first.shard, first.shards), (0, Some(3)));
        assert_eq!(
            first.group(),
            "t#FILE",
            "shard 0 stays in the conversation's group"
        );
        assert!(first.notify.is_some());
        let parts: Vec<BroadcastJob> = (1..3).map(|s| first.for_shard(s, 3)).collect();
        assert_eq!(parts[0].group(), "t#FILE#SHARD#1");
        assert_eq!(parts[1].group(), "t#FILE#SHARD#2");
        // Not the group of a file named like a shard's number.
        let file = job(Audience::Users {
            group: MessageGroup::File(FileId::parse("1").unwrap()),
            users: vec![],
        });
        assert_ne!(file.group(), parts[0].group());
        for part in &parts {
            assert!(part.notify.is_none());
            let text = serde_json::to_string(part).unwrap();
            assert_eq!(&serde_json::from_str::<BroadcastJob>(&text).unwrap(), part);
        }
        // Each shard's job has its own deduplication id, the same on every replay of the
        // split; a shard's next page or retry another again.
        let ids: std::collections::HashSet<String> = [
            head.deduplication_id(),
            parts[0].deduplication_id(),
            parts[1].deduplication_id(),
            parts[0]
                .next_page(ConnectionId::parse("x").unwrap())
                .deduplication_id(),
            head.split(3)
                .for_shard(1, 3)
                .for_shard(1, 3)
                .deduplication_id(),
        ]
        .into_iter()
        .collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(
            head.split(3).for_shard(1, 3).deduplication_id(),
            parts[0].deduplication_id()
        );
        // A job from before shards existed reads as shard 0, not yet split.
        let old: BroadcastJob =
            serde_json::from_str(r#"{"id":"e1","tenant":"t","conversation":"c","frame":"{}"}"#)
                .unwrap();
        assert_eq!((old.shard, old.shards), (0, None));
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
            // The rest of a page, and a next page, from the same job.
            first
                .remainder(Some(ConnectionId::parse("y=").unwrap()))
                .deduplication_id(),
            page.remainder(None).deduplication_id(),
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

    #[test]
    fn a_work_item_names_each_known_shard_once_with_its_own_cursor() {
        let cursor = |shard| PendingCursor {
            shard,
            gsi1sk: "s".into(),
            pk: "p".into(),
            sk: "k".into(),
        };
        let body = |shards: Vec<ShardStart>| {
            serde_json::to_string(&NotifyWork {
                tenant: TenantId::parse("t").unwrap(),
                shards,
                pass: 1,
            })
            .unwrap()
        };
        let ok = body(vec![
            ShardStart {
                shard: 0,
                after: None,
            },
            ShardStart {
                shard: 7,
                after: Some(cursor(7)),
            },
        ]);
        assert_eq!(NotifyWork::parse(&ok, 8).unwrap().starts(8).len(), 2);
        assert_eq!(
            NotifyWork::parse(
                &body(vec![ShardStart {
                    shard: 8,
                    after: None
                }]),
                8
            ),
            Err(JobError::NoSuchShard { shard: 8, count: 8 })
        );
        assert_eq!(
            NotifyWork::parse(
                &body(vec![
                    ShardStart {
                        shard: 1,
                        after: None
                    },
                    ShardStart {
                        shard: 1,
                        after: None
                    }
                ]),
                8
            ),
            Err(JobError::RepeatedShard(1))
        );
        assert_eq!(
            NotifyWork::parse(
                &body(vec![ShardStart {
                    shard: 2,
                    after: Some(cursor(3))
                }]),
                8
            ),
            Err(JobError::CursorOfAnotherShard(2))
        );
        assert!(matches!(
            NotifyWork::parse(r#"{"tenant":"t","extra":1}"#, 8),
            Err(JobError::Json(_))
        ));
        assert!(matches!(
            NotifyWork::parse(r#"{"tenant":"a#b"}"#, 8),
            Err(JobError::Json(_))
        ));
        assert_eq!(
            NotifyWork::parse(r#"{"tenant":"t"}"#, 8)
                .unwrap()
                .starts(8)
                .len(),
            8
        );
    }
}
