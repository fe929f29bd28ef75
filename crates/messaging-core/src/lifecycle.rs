//! A tenant's data under its owner's control: the **jobs** that export a tenant's (or one
//! user's) data and erase a user, as the portal's backend asks for them and the `lifecycle`
//! function carries them out, a bounded step at a time.
//!
//! A job walks the tenant's partition in key order, one step per SQS message: each step reads
//! at most [`STEP_PAGES`] query pages, acts on what it read, stores where it stopped (the
//! cursor) and its counts in the job's record, then queues the next step. A step that dies is
//! delivered again and redoes its pages: every action of a step is idempotent (a delete, a
//! tombstone conditional on not being one yet, an export part written under its own number).
//! A step message whose step the record has passed is a duplicate and does nothing.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ProtocolError};
use crate::ids::{TenantId, UserId};

/// Query pages (1 MB each at most) one step reads: with their writes, well inside the
/// function's timeout.
pub const STEP_PAGES: usize = 8;
/// Least bytes of an export part other than the last (S3's multipart minimum is 5 MiB).
pub const EXPORT_PART_BYTES: usize = 5 * 1024 * 1024;
/// Most parts of one export. S3 takes 10,000; the job's record keeps each part's ETag (to
/// complete the upload without listing its parts), and 1,000 of them are about 40 KB of the
/// 400 KB item. With parts of 5 to about 13 MB, an export of at least 5 GB.
pub const MAX_EXPORT_PARTS: usize = 1_000;
/// How long a finished export's file is kept (the bucket's lifecycle rule on `exports/`).
pub const EXPORT_KEPT_DAYS: u32 = 7;
/// How long a job's record is kept after it finished (table TTL), in days.
pub const JOB_KEPT_DAYS: i64 = 30;

/// A job's id: 32 lowercase hex digits (a UUIDv7: jobs sort by when they were asked for).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    pub fn parse(raw: &str) -> Result<Self, ProtocolError> {
        if raw.len() == 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "jobId must be the 32 hex digits a job was given",
            ))
        }
    }

    /// A fresh, time-ordered id.
    pub fn fresh() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        JobId::parse(&raw).map_err(|e| e.message)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum JobKind {
    /// Every record of the tenant (or, with `userId`, every record about that user) as JSON
    /// Lines in the files bucket, with a download link when done.
    Export {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
    },
    /// The user's messages become tombstones; their memberships, connections, preferences,
    /// notifications, reactions, comments, shares and files are removed.
    Erase { user_id: UserId },
    /// Every item of the tenant (its partition, its connections' registry entries, its other
    /// jobs' records) and every object under its prefixes (every version) deleted, then
    /// verified gone. The job's own record stays, as the receipt.
    Offboard,
    /// The tenant's retention: messages (with their reactions and search lines), file
    /// comments, notifications and files older than `before` (RFC 3339: the sweep's time less
    /// the tenant's `days`) deleted.
    Retention { days: u32, before: String },
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Export { .. } => "export",
            JobKind::Erase { .. } => "erase",
            JobKind::Offboard => "offboard",
            JobKind::Retention { .. } => "retention",
        }
    }

    /// The user the job is about, if it is about one.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            JobKind::Export { user_id } => user_id.as_ref(),
            JobKind::Erase { user_id } => Some(user_id),
            JobKind::Offboard | JobKind::Retention { .. } => None,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Completed,
    /// Stopped for good (`error` says why); what it did stays done.
    Failed,
}

/// What a job has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Steps finished.
    pub steps: u32,
    /// Items of the tenant's partition read.
    pub items_read: u64,
    /// Records written to the export.
    #[serde(default)]
    pub records_exported: u64,
    /// Bytes written to the export.
    #[serde(default)]
    pub bytes_exported: u64,
    /// Messages turned into tombstones.
    #[serde(default)]
    pub messages_erased: u64,
    /// Items deleted (and reactions or search lines removed from items that stay).
    #[serde(default)]
    pub items_changed: u64,
    /// Object versions deleted from the files bucket (the bucket is versioned: every version
    /// of a deleted object goes).
    #[serde(default)]
    pub objects_deleted: u64,
}

/// A job as its record holds it and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: JobId,
    pub client_id: TenantId,
    #[serde(flatten)]
    pub kind: JobKind,
    pub state: JobState,
    pub progress: Progress,
    /// Who asked: a user, or [`UserId::SYSTEM`] for the portal's backend.
    pub requested_by: UserId,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Why a failed job stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An offboarding: when its last pass found the tenant's partition and prefixes empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_empty_at: Option<String>,
}

/// The longest retention a tenant may set, in days (ten years); the shortest is one day.
pub const MAX_RETENTION_DAYS: u32 = 3_650;

/// The sweep of a tenant keeping `days` days, run at `now` (epoch ms): what it deletes is
/// older than the returned RFC 3339 time.
pub fn retention_cutoff(days: u32, now: i64) -> String {
    crate::time::rfc3339_millis(now - i64::from(days) * 24 * 60 * 60 * 1000)
}

/// Passes an offboarding makes over a tenant that still had items after the last one (new
/// connections or messages written while it ran) before it fails and says why.
pub const MAX_OFFBOARD_PASSES: u32 = 3;

/// The object prefixes of a tenant in the files bucket: its files, their previews, its
/// exports.
pub fn object_prefixes(tenant: &TenantId) -> [String; 3] {
    [
        format!("tenants/{tenant}/"),
        format!("previews/{tenant}/"),
        format!("exports/{tenant}/"),
    ]
}

/// The SQS body that runs one step of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobStep {
    pub tenant: TenantId,
    pub job_id: JobId,
    /// The step to run: the record's `progress.steps` when it was queued.
    pub step: u32,
}

impl JobStep {
    /// The step in a queued body, or why it is not one (never guessed at: dead-lettered).
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_is_exactly_32_hex_digits() {
        let fresh = JobId::fresh();
        assert_eq!(JobId::parse(fresh.as_str()), Ok(fresh.clone()));
        for bad in [
            "",
            "x",
            &"A".repeat(32),
            &"0".repeat(33),
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
        // Time-ordered.
        assert!(JobId::fresh().as_str() > fresh.as_str());
    }

    #[test]
    fn a_job_reads_back_as_it_was_written() {
        let view = JobView {
            job_id: JobId::parse("0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap(),
            client_id: TenantId::parse("acme").unwrap(),
            kind: JobKind::Erase {
                user_id: UserId::parse("bob").unwrap(),
            },
            state: JobState::Running,
            progress: Progress::default(),
            requested_by: UserId::system(),
            created_at: "2026-12-03T10:00:00.000Z".into(),
            updated_at: "2026-12-03T10:00:00.000Z".into(),
            completed_at: None,
            error: None,
            verified_empty_at: None,
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["kind"], "erase");
        assert_eq!(json["userId"], "bob");
        assert_eq!(json["state"], "running");
        assert_eq!(json["progress"]["itemsRead"], 0);
        assert_eq!(serde_json::from_value::<JobView>(json).unwrap(), view);
        let export = serde_json::to_value(JobKind::Export { user_id: None }).unwrap();
        assert_eq!(export, serde_json::json!({ "kind": "export" }));
        let offboard = serde_json::to_value(JobKind::Offboard).unwrap();
        assert_eq!(offboard, serde_json::json!({ "kind": "offboard" }));
    }

    #[test]
    fn a_retention_cutoff_is_the_sweeps_time_less_the_days() {
        let now = crate::time::parse_rfc3339_millis("2026-12-03T10:00:00.000Z").unwrap();
        assert_eq!(retention_cutoff(1, now), "2026-12-02T10:00:00.000Z");
        assert_eq!(retention_cutoff(365, now), "2025-12-03T10:00:00.000Z");
        // RFC 3339 UTC times of one shape sort as text: "older than" is a string comparison.
        assert!(retention_cutoff(2, now) < retention_cutoff(1, now));
    }

    #[test]
    fn a_tenants_prefixes_are_its_own_and_end_in_a_separator() {
        let a = TenantId::parse("acme").unwrap();
        let b = TenantId::parse("acme2").unwrap();
        for (mine, theirs) in object_prefixes(&a).iter().zip(object_prefixes(&b).iter()) {
            assert!(mine.ends_with('/'));
            assert!(!theirs.starts_with(mine.as_str()) && !mine.starts_with(theirs.as_str()));
        }
    }

    #[test]
    fn a_step_body_is_parsed_strictly() {
        let step = JobStep::parse(
            r#"{"tenant":"acme","jobId":"0193a1b2c3d4e5f60718293a4b5c6d7e","step":3}"#,
        )
        .unwrap();
        assert_eq!(step.step, 3);
        for bad in [
            r#"{"tenant":"a#b","jobId":"0193a1b2c3d4e5f60718293a4b5c6d7e","step":3}"#,
            r#"{"tenant":"acme","jobId":"nope","step":3}"#,
            r#"{"tenant":"acme","jobId":"0193a1b2c3d4e5f60718293a4b5c6d7e","step":-1}"#,
            r#"{"tenant":"acme","jobId":"0193a1b2c3d4e5f60718293a4b5c6d7e","step":3,"x":1}"#,
        ] {
            assert!(JobStep::parse(bad).is_err(), "{bad}");
        }
    }
}
