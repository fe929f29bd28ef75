//! The lifecycle requests (retention, exports, erasures, offboarding, a job's state) as both
//! doors take them: the server API (the portal's backend, SigV4) and the HTTP API (the
//! tenant's OWNER, bearer token). Each is recorded in the audit log under who asked and
//! through which door; the jobs themselves are [`crate::lifecycle`]'s.

use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use tracing::{info, warn};

use messaging_aws::{FileStorage, MessagingTable, WorkQueue};
use messaging_core::audit::{AuditAction, AuditEntry, Via};
use messaging_core::lifecycle::{JobId, JobKind};
use messaging_core::protocol::ServiceAction;
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ErrorCode, Principal, ProtocolError, TenantId, UserId};

use crate::{audit, lifecycle};

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    /// The portal's backend, signed by this IAM principal.
    Service { caller: &'a str },
    /// The tenant's OWNER, over the HTTP API.
    Owner(&'a Principal),
}

impl Requester<'_> {
    fn entry(&self, action: AuditAction) -> AuditEntry {
        let at = rfc3339_millis(now_millis());
        match self {
            Requester::Service { caller } => AuditEntry::by_service(caller, action, at),
            Requester::Owner(p) => AuditEntry::by_user(p, action, at).via(Via::Http),
        }
    }

    /// The job's `requestedBy`.
    fn user(&self) -> UserId {
        match self {
            Requester::Service { .. } => UserId::system(),
            Requester::Owner(p) => p.user.clone(),
        }
    }
}

/// What the requests need: the table, the lifecycle queue, and the files bucket's signer.
#[derive(Clone, Copy)]
pub struct Doors<'a> {
    pub table: &'a MessagingTable,
    pub jobs: &'a WorkQueue,
    pub storage: &'a FileStorage,
}

/// Carries out `action` for `tenant` if it is a lifecycle request (`None` for any other
/// action): its status and JSON body.
pub async fn carry_out(
    doors: Doors<'_>,
    requester: Requester<'_>,
    tenant: &TenantId,
    action: &ServiceAction,
) -> Option<Result<(StatusCode, Value), ProtocolError>> {
    let answer = match action {
        ServiceAction::StartExport(user) => {
            let kind = JobKind::Export {
                user_id: user.clone(),
            };
            start(doors, requester, tenant, kind, AuditAction::ExportRequested).await
        }
        ServiceAction::StartErasure(user) => {
            let kind = JobKind::Erase {
                user_id: user.clone(),
            };
            start(
                doors,
                requester,
                tenant,
                kind,
                AuditAction::ErasureRequested,
            )
            .await
        }
        ServiceAction::GetJob(job) => get_job(doors, tenant, job).await,
        ServiceAction::SetRetention(days) => set_retention(doors, requester, tenant, *days).await,
        ServiceAction::Offboard => offboard(doors, requester, tenant).await,
        _ => return None,
    };
    Some(answer)
}

async fn start(
    doors: Doors<'_>,
    requester: Requester<'_>,
    tenant: &TenantId,
    kind: JobKind,
    action: AuditAction,
) -> Result<(StatusCode, Value), ProtocolError> {
    let job = lifecycle::start(
        doors.table,
        doors.jobs,
        tenant,
        kind.clone(),
        &requester.user(),
    )
    .await?;
    let mut entry = requester.entry(action).job(&job.job_id);
    if let Some(user) = kind.user() {
        entry = entry.user(user);
    }
    audit::record(doors.table, tenant, entry).await;
    Ok((StatusCode::ACCEPTED, json!({ "job": job })))
}

/// A job of this tenant, with a fresh download link once an export is done.
async fn get_job(
    doors: Doors<'_>,
    tenant: &TenantId,
    job: &JobId,
) -> Result<(StatusCode, Value), ProtocolError> {
    let record = doors.table.job(tenant, job).await?.ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::NotFound,
            format!("no job \"{job}\" in this tenant (finished jobs are kept 30 days)"),
        )
    })?;
    let download = lifecycle::download_link(doors.storage, &record.view).await?;
    Ok((
        StatusCode::OK,
        json!({ "job": record.view, "download": download }),
    ))
}

async fn set_retention(
    doors: Doors<'_>,
    requester: Requester<'_>,
    tenant: &TenantId,
    days: Option<u32>,
) -> Result<(StatusCode, Value), ProtocolError> {
    doors.table.set_retention(tenant, days).await?;
    let detail = match days {
        Some(days) => format!("{days} days"),
        None => "kept for ever".to_owned(),
    };
    let entry = requester
        .entry(AuditAction::RetentionChanged)
        .detail(&detail);
    audit::record(doors.table, tenant, entry).await;
    info!(tenant = %tenant, retention = %detail, "retention set");
    Ok((StatusCode::OK, json!({ "retentionDays": days })))
}

/// No audit entry: the tenant's log goes with the rest of it; the job's record (kept 30 days
/// beside the partition) is the receipt, and this WARN line names who asked.
async fn offboard(
    doors: Doors<'_>,
    requester: Requester<'_>,
    tenant: &TenantId,
) -> Result<(StatusCode, Value), ProtocolError> {
    let job = lifecycle::start(
        doors.table,
        doors.jobs,
        tenant,
        JobKind::Offboard,
        &requester.user(),
    )
    .await?;
    warn!(tenant = %tenant, requester = ?requester, job = %job.job_id, "tenant offboarding started");
    Ok((StatusCode::ACCEPTED, json!({ "job": job })))
}
