//! The `lifecycle` function (SQS, one job step a message) and the start of its jobs: a
//! tenant's (or one user's) export as JSON Lines in the files bucket, and a user's erasure.
//! `messaging_core::lifecycle` has the design; this module runs it.
//!
//! Offboarding a tenant deletes every item of its partition, its connections' registry
//! entries, every version of every object under its prefixes and its other jobs' records, then
//! checks that nothing is left (another pass if something was written meanwhile).
//!
//! A step reads at most [`STEP_PAGES`] pages of the tenant's partition from where the last
//! one stopped, acts on them, saves the job's record conditionally on its step (a duplicate
//! delivery of a step that was saved finds the record past it and does nothing), and queues
//! the next step. A failure worth retrying fails the message (SQS delivers it again after the
//! visibility timeout, then dead-letters it); anything else fails the job, with the reason on
//! its record. What a failed or repeated step did is harmless: every action is idempotent.
//!
//! An export is one multipart upload: each step adds a part of at least
//! [`EXPORT_PART_BYTES`] (S3's minimum), or, when a step read its pages without filling one
//! (a user's export of a large tenant), keeps its records in a carry object named after the
//! next step (so a repeated step reads the carry it was given, not the one it wrote).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::{error, info, warn};

use messaging_aws::{
    export_record, AwsError, FileStorage, JobRecord, MessagingTable, Objects, Read, Walk, WorkQueue,
};
use messaging_core::audit::{AuditAction, AuditEntry};
use messaging_core::lifecycle::{
    object_prefixes, retention_cutoff, JobId, JobKind, JobState, JobStep, JobView, Progress,
    EXPORT_PART_BYTES, MAX_EXPORT_PARTS, MAX_OFFBOARD_PASSES, STEP_PAGES,
};
use messaging_core::protocol::PresignedUrl;
use messaging_core::time::{now_millis, parse_rfc3339_millis, rfc3339_millis};
use messaging_core::{TenantId, UserId};

use crate::audit;
use crate::config::{self, ConfigError};

/// A step message older than this whose job has not moved since is taken as the sign that
/// the next step's message was lost (a save that landed and a send that did not): it is sent
/// again.
const STALLED_MILLIS: i64 = 15 * 60 * 1000;

#[derive(Clone)]
pub struct LifecycleService {
    pub table: MessagingTable,
    /// Where the next steps go (the lifecycle queue).
    pub queue: WorkQueue,
    pub objects: Objects,
    /// Items a query page holds at most (`None`: DynamoDB's 1 MB). Tests set a few, so that
    /// a small tenant takes many steps.
    pub page_limit: Option<i32>,
}

impl LifecycleService {
    /// As the Lambda builds it: `TABLE_NAME`, `LIFECYCLE_QUEUE_URL`, `FILES_BUCKET`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::lifecycle_queue(sdk)?,
            objects: Objects::new(sdk, config::required("FILES_BUCKET")?),
            page_limit: None,
        })
    }
}

/// The object an export is written to.
pub fn export_object_key(tenant: &TenantId, job: &JobId) -> String {
    format!("exports/{tenant}/{job}.jsonl")
}

/// The records an export step handed to step `step`.
fn carry_key(tenant: &TenantId, job: &JobId, step: u32) -> String {
    format!("exports/{tenant}/{job}.carry/{step:06}")
}

/// Starts a job: its record, then its first step on the queue. A job that could not be
/// queued is marked failed and the error returned (the caller may ask again).
pub async fn start(
    table: &MessagingTable,
    queue: &WorkQueue,
    tenant: &TenantId,
    kind: JobKind,
    requested_by: &UserId,
) -> Result<JobView, AwsError> {
    let now = rfc3339_millis(now_millis());
    let mut record = JobRecord {
        view: JobView {
            job_id: JobId::fresh(),
            client_id: tenant.clone(),
            kind,
            state: JobState::Running,
            progress: Progress::default(),
            requested_by: requested_by.clone(),
            created_at: now.clone(),
            updated_at: now,
            completed_at: None,
            error: None,
            verified_empty_at: None,
        },
        walk: Walk::default(),
    };
    table.create_job(&record).await?;
    let step = JobStep {
        tenant: tenant.clone(),
        job_id: record.view.job_id.clone(),
        step: 0,
    };
    if let Err(e) = queue.send(&step).await {
        record.view.state = JobState::Failed;
        record.view.error = Some("the job could not be queued; ask for it again".into());
        if let Err(saved) = table.save_job(&record, 0).await {
            warn!(error = %saved, job = %record.view.job_id, "an unqueued job stays running");
        }
        return Err(e);
    }
    info!(job = %record.view.job_id, kind = record.view.kind.name(), tenant = %tenant, "job started");
    Ok(record.view)
}

/// A finished export's download link (`None` for any other job, or before it finished).
pub async fn download_link(
    storage: &FileStorage,
    view: &JobView,
) -> Result<Option<PresignedUrl>, AwsError> {
    if view.state != JobState::Completed || !matches!(view.kind, JobKind::Export { .. }) {
        return Ok(None);
    }
    let key = export_object_key(&view.client_id, &view.job_id);
    let name = format!("{}-export-{}.jsonl", view.client_id, view.job_id);
    storage.download_url(&key, &name).await.map(Some)
}

/// Handles what the lifecycle function is given: a batch of its queue, or the daily schedule's
/// event (which starts a retention sweep of every tenant that has a retention).
pub async fn handle_event(
    service: &LifecycleService,
    event: serde_json::Value,
) -> Result<serde_json::Value, AwsError> {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event)
            .map_err(|e| AwsError::Failed(format!("not an SQS event: {e}")))?;
        let response = handle(service, batch).await;
        return serde_json::to_value(response).map_err(|e| AwsError::Failed(e.to_string()));
    }
    let started = start_retention_sweeps(service, now_millis()).await?;
    Ok(serde_json::json!({ "retentionSweepsStarted": started }))
}

/// Starts, at `now` (epoch ms), a retention sweep of every tenant that set a retention; how
/// many. (A sweep still running from the day before is harmless beside it: both delete the
/// same old items.)
pub async fn start_retention_sweeps(
    service: &LifecycleService,
    now: i64,
) -> Result<usize, AwsError> {
    let tenants = service.table.tenants_with_retention().await?;
    for (tenant, days) in &tenants {
        let kind = JobKind::Retention {
            days: *days,
            before: retention_cutoff(*days, now),
        };
        start(
            &service.table,
            &service.queue,
            tenant,
            kind,
            &UserId::system(),
        )
        .await?;
    }
    if !tenants.is_empty() {
        info!(tenants = tenants.len(), "retention sweeps started");
    }
    Ok(tenants.len())
}

/// Handles one batch of the lifecycle queue (batch size 1 in the template: a step is heavy).
pub async fn handle(service: &LifecycleService, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let step = match JobStep::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(step) => step,
            Err(e) => {
                // Never ours: dropped (an SQS body this function did not write).
                error!(error = %e, message = %id, "not a job step; dropped");
                continue;
            }
        };
        if let Err(e) = run_step(service, &step).await {
            warn!(error = %e, job = %step.job_id, step = step.step, "step failed; SQS will deliver it again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Runs `step` of its job, if the job is there, running and at that step.
pub async fn run_step(service: &LifecycleService, step: &JobStep) -> Result<(), AwsError> {
    let table = &service.table;
    let Some(mut record) = table.job(&step.tenant, &step.job_id).await? else {
        warn!(job = %step.job_id, "no such job; step dropped");
        return Ok(());
    };
    if record.view.state != JobState::Running {
        return Ok(());
    }
    let at = record.view.progress.steps;
    if step.step != at {
        let updated = parse_rfc3339_millis(&record.view.updated_at).unwrap_or_default();
        if step.step < at && now_millis() - updated > STALLED_MILLIS {
            warn!(job = %step.job_id, at, "job stalled: its step queued again");
            service
                .queue
                .send(&JobStep {
                    step: at,
                    ..step.clone()
                })
                .await?;
        }
        return Ok(());
    }
    let outcome = match record.view.kind.clone() {
        JobKind::Export { user_id } => export_step(service, &mut record, user_id.as_ref()).await,
        JobKind::Erase { user_id } => {
            change_step(service, &mut record, PageChange::Erase(&user_id)).await
        }
        JobKind::Offboard => offboard_step(service, &mut record).await,
        JobKind::Retention { before, .. } => {
            change_step(service, &mut record, PageChange::Sweep { before: &before }).await
        }
    };
    if let Err(e) = outcome {
        if e.is_retryable() {
            return Err(e);
        }
        error!(error = %e, job = %step.job_id, "job failed");
        record.view.state = JobState::Failed;
        record.view.error = Some("the job stopped on an internal error; ask for it again (what it did stays done, and doing it again is safe)".into());
    }
    record.view.progress.steps = at + 1;
    let now = now_millis();
    record.view.updated_at = rfc3339_millis(now);
    let done = match record.view.kind {
        JobKind::Offboard => record.view.verified_empty_at.is_some(),
        JobKind::Export { .. } | JobKind::Erase { .. } | JobKind::Retention { .. } => {
            record.walk.finished
        }
    };
    if record.view.state == JobState::Running && done {
        record.view.state = JobState::Completed;
        record.view.completed_at = Some(rfc3339_millis(now));
    }
    if !table.save_job(&record, at).await? {
        // Another delivery of this step saved first and queued the next.
        return Ok(());
    }
    match record.view.state {
        JobState::Running => {
            service
                .queue
                .send(&JobStep {
                    step: at + 1,
                    ..step.clone()
                })
                .await?;
        }
        JobState::Completed => {
            info!(job = %step.job_id, progress = ?record.view.progress, "job completed");
            completed(service, &record.view).await;
        }
        JobState::Failed => {}
    }
    Ok(())
}

/// The audit entry of a finished job, by who asked for it.
async fn completed(service: &LifecycleService, view: &JobView) {
    let action = match view.kind {
        JobKind::Export { .. } => AuditAction::ExportCompleted,
        JobKind::Erase { .. } => AuditAction::ErasureCompleted,
        JobKind::Retention { .. } => AuditAction::RetentionSwept,
        // The tenant's audit log went with the rest of it: the job's record is the receipt.
        JobKind::Offboard => return,
    };
    let p = &view.progress;
    let detail = match view.kind {
        JobKind::Export { .. } => {
            format!("{} records, {} bytes", p.records_exported, p.bytes_exported)
        }
        JobKind::Retention { days, ref before } => format!(
            "{days} days: {} items older than {before} deleted, {} object versions",
            p.items_changed, p.objects_deleted
        ),
        JobKind::Erase { .. } | JobKind::Offboard => format!(
            "{} messages erased, {} items changed, {} object versions deleted",
            p.messages_erased, p.items_changed, p.objects_deleted
        ),
    };
    let mut entry = AuditEntry::by_job(&view.requested_by, action, rfc3339_millis(now_millis()))
        .job(&view.job_id)
        .detail(&detail);
    if let Some(user) = view.kind.user() {
        entry = entry.user(user);
    }
    audit::record(&service.table, &view.client_id, entry).await;
}

async fn export_step(
    service: &LifecycleService,
    record: &mut JobRecord,
    only: Option<&UserId>,
) -> Result<(), AwsError> {
    let (tenant, job) = (record.view.client_id.clone(), record.view.job_id.clone());
    let key = export_object_key(&tenant, &job);
    let step = record.view.progress.steps;
    let upload = match &record.walk.upload_id {
        Some(id) => id.clone(),
        None => {
            let id = service
                .objects
                .start_upload(&key, "application/x-ndjson")
                .await?;
            record.walk.upload_id = Some(id.clone());
            id
        }
    };
    let mut buffer: Vec<u8> = Vec::new();
    if record.walk.carry {
        match service
            .objects
            .read_at_most(&carry_key(&tenant, &job, step), EXPORT_PART_BYTES as u64)
            .await?
        {
            Read::Bytes(bytes) => buffer = bytes,
            other => {
                return Err(AwsError::Failed(format!(
                    "the export's carry for step {step} is not readable: {other:?}"
                )))
            }
        }
    } else if step == 0 {
        // The first line says what the file is.
        let header = serde_json::json!({
            "record": "export",
            "clientId": tenant,
            "userId": only,
            "jobId": job,
            "createdAt": record.view.created_at,
        });
        push_line(&mut buffer, &header);
    }
    let progress = &mut record.view.progress;
    for _ in 0..STEP_PAGES {
        let (items, more) = service
            .table
            .partition_page(&tenant, record.walk.after.as_deref(), service.page_limit)
            .await?;
        progress.items_read += items.len() as u64;
        for item in &items {
            if let Some(line) = export_record(item, only)? {
                push_line(&mut buffer, &line);
                progress.records_exported += 1;
            }
        }
        if let Some(last) = items.last() {
            record.walk.after = Some(last.sk.clone());
        }
        if !more {
            record.walk.finished = true;
            break;
        }
        if buffer.len() >= EXPORT_PART_BYTES {
            break;
        }
    }
    if record.walk.finished || buffer.len() >= EXPORT_PART_BYTES {
        if record.walk.parts.len() >= MAX_EXPORT_PARTS {
            return Err(AwsError::Failed(format!(
                "the export passed {MAX_EXPORT_PARTS} parts"
            )));
        }
        // Never empty: the first part starts with the header line, and a later step only
        // gets here with a full part or at the end (where an empty buffer adds nothing).
        if !buffer.is_empty() {
            progress.bytes_exported += buffer.len() as u64;
            let number = record.walk.parts.len() as u32 + 1;
            let etag = service
                .objects
                .upload_part(&key, &upload, number, buffer)
                .await?;
            record.walk.parts.push(etag);
        }
        record.walk.carry = false;
        if record.walk.finished {
            service
                .objects
                .complete_upload(&key, &upload, &record.walk.parts)
                .await?;
        }
    } else {
        service
            .objects
            .write(
                &carry_key(&tenant, &job, step + 1),
                buffer,
                "application/x-ndjson",
            )
            .await?;
        record.walk.carry = true;
    }
    Ok(())
}

fn push_line(buffer: &mut Vec<u8>, value: &serde_json::Value) {
    // A JSON value always serialises (its keys are strings).
    if serde_json::to_writer(&mut *buffer, value).is_ok() {
        buffer.push(b'\n');
    }
}

/// What a walking step does to each page: erase a user, or sweep what is older than a time.
#[derive(Debug, Clone, Copy)]
enum PageChange<'a> {
    Erase(&'a UserId),
    Sweep { before: &'a str },
}

/// One step of an erasure or a retention sweep: a few pages of the partition changed, and
/// every version of the objects of the files that went.
async fn change_step(
    service: &LifecycleService,
    record: &mut JobRecord,
    change: PageChange<'_>,
) -> Result<(), AwsError> {
    let tenant = record.view.client_id.clone();
    for _ in 0..STEP_PAGES {
        let (items, more) = service
            .table
            .partition_page(&tenant, record.walk.after.as_deref(), service.page_limit)
            .await?;
        let owned = &mut record.walk.owned_file;
        let changed = match change {
            PageChange::Erase(user) => {
                service
                    .table
                    .erase_page(&tenant, user, &items, owned)
                    .await?
            }
            PageChange::Sweep { before } => {
                service
                    .table
                    .sweep_page(&tenant, &items, before, owned)
                    .await?
            }
        };
        let mut versions = 0;
        for object in &changed.objects {
            loop {
                let (deleted, more) = service.objects.delete_versions(object, true).await?;
                versions += deleted;
                if !more {
                    break;
                }
            }
        }
        let progress = &mut record.view.progress;
        progress.items_read += items.len() as u64;
        progress.messages_erased += changed.messages_erased;
        progress.items_changed += changed.items_changed;
        progress.objects_deleted += versions;
        if let Some(last) = items.last() {
            record.walk.after = Some(last.sk.clone());
        }
        if !more {
            record.walk.finished = true;
            break;
        }
    }
    Ok(())
}

/// One step of an offboarding: the partition's items deleted a page at a time; then every
/// version of every object under the tenant's prefixes, 1,000 a call; then the tenant's other
/// job records; then the check that nothing is left. A tenant that still had items (written
/// while the job ran) gets another pass, up to [`MAX_OFFBOARD_PASSES`].
async fn offboard_step(service: &LifecycleService, record: &mut JobRecord) -> Result<(), AwsError> {
    let tenant = record.view.client_id.clone();
    if !record.walk.finished {
        for _ in 0..STEP_PAGES {
            let (items, more) = service
                .table
                .partition_page(&tenant, record.walk.after.as_deref(), service.page_limit)
                .await?;
            let progress = &mut record.view.progress;
            progress.items_read += items.len() as u64;
            progress.items_changed += service.table.delete_page(&items).await?;
            if let Some(last) = items.last() {
                record.walk.after = Some(last.sk.clone());
            }
            if !more {
                record.walk.finished = true;
                break;
            }
        }
        return Ok(());
    }
    if !record.walk.objects_done {
        for prefix in object_prefixes(&tenant) {
            for _ in 0..STEP_PAGES {
                let (deleted, more) = service.objects.delete_versions(&prefix, false).await?;
                record.view.progress.objects_deleted += deleted;
                if !more {
                    break;
                }
            }
        }
        // Done once a check finds nothing left (a prefix of many objects takes more steps).
        let mut empty = true;
        for prefix in object_prefixes(&tenant) {
            empty &= service.objects.is_empty_under(&prefix).await?;
        }
        record.walk.objects_done = empty;
        if !empty {
            return Ok(());
        }
    }
    record.view.progress.items_changed += service
        .table
        .delete_other_jobs(&tenant, &record.view.job_id)
        .await?;
    let mut empty = service.table.partition_is_empty(&tenant).await?;
    for prefix in object_prefixes(&tenant) {
        empty &= service.objects.is_empty_under(&prefix).await?;
    }
    if empty {
        record.view.verified_empty_at = Some(rfc3339_millis(now_millis()));
        return Ok(());
    }
    record.walk.passes += 1;
    if record.walk.passes >= MAX_OFFBOARD_PASSES {
        record.view.state = JobState::Failed;
        record.view.error = Some(format!(
            "the tenant still had items after {MAX_OFFBOARD_PASSES} passes: stop its traffic (tokens, the portal's calls) and offboard it again"
        ));
        return Ok(());
    }
    warn!(tenant = %tenant, pass = record.walk.passes, "items appeared while offboarding: another pass");
    record.walk.after = None;
    record.walk.finished = false;
    record.walk.objects_done = false;
    Ok(())
}
