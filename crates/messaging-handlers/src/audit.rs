//! The audit log from the handlers' side: recording an action once it is done, and the
//! OWNER's paged read of it (HTTP API `GET /audit`).
//!
//! An entry is written after its action succeeded, never before (a refused or failed action
//! is not in the log). If the write fails — after the SDK's own retries — the action stands
//! and the entry goes to the function's log as an `ERROR` line with the whole entry (the
//! record of last resort, and what an alarm on the log group would catch).

use serde_json::{json, Value};
use tracing::error;

use messaging_aws::MessagingTable;
use messaging_core::audit::{may_read_audit, AuditAction, AuditEntry};
use messaging_core::protocol::ListAudit;
use messaging_core::signed::Signer;
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ErrorCode, Principal, ProtocolError, TenantId};

use crate::websocket::{Call, FrameService};

/// Adds `entry` to `tenant`'s log; a failure is logged with the entry, never raised.
pub async fn record(table: &MessagingTable, tenant: &TenantId, entry: AuditEntry) {
    if let Err(e) = table.record_audit(tenant, &entry).await {
        let entry = serde_json::to_string(&entry).unwrap_or_default();
        error!(error = %e, tenant = %tenant, entry, "audit entry not stored");
    }
}

impl<S: FrameService> Call<'_, S> {
    /// Records `action` by the caller, as `complete` fills in what it was about.
    pub async fn audit(
        &self,
        action: AuditAction,
        complete: impl FnOnce(AuditEntry) -> AuditEntry,
    ) {
        let p = self.principal();
        let entry = complete(AuditEntry::by_user(p, action, rfc3339_millis(now_millis())));
        record(self.service.table(), &p.tenant, entry).await;
    }
}

/// One page of the caller's tenant's audit log, newest first: `{entries, nextCursor}`.
/// OWNER only; the cursor is bound to the caller (`messaging_core::signed`).
pub async fn page(
    table: &MessagingTable,
    cursors: &Signer,
    p: &Principal,
    list: ListAudit,
) -> Result<Value, ProtocolError> {
    if !may_read_audit(p.role) {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!(
                "only the tenant's OWNER reads its audit log; you are {}",
                p.role
            ),
        ));
    }
    let scope = "audit";
    let before = match &list.cursor {
        Some(cursor) => Some(cursors.open(cursor, &p.tenant, &p.user, scope)?),
        None => None,
    };
    let (entries, next) = table
        .audit_page(
            &p.tenant,
            before.as_deref(),
            usize::from(list.limit),
            now_millis() / 1_000,
        )
        .await?;
    let next_cursor = next.map(|sk| cursors.issue(&p.tenant, &p.user, scope, &sk));
    Ok(json!({ "entries": entries, "nextCursor": next_cursor }))
}
