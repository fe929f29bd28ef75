//! The tenant's audit log (`AUDIT#…` items): written after each administrative action, listed
//! newest first by the OWNER.

use serde::{Deserialize, Serialize};

use messaging_core::audit::{AuditEntry, AUDIT_RETENTION_DAYS};
use messaging_core::time::parse_rfc3339_millis;
use messaging_core::TenantId;

use super::requests::{decode_all, epoch_seconds, key_map, with_prefix, Item};
use super::table::{self, Key};
use super::MessagingTable;
use crate::error::{classify, AwsError};

/// `CLIENT#t | AUDIT#{at}#{id}`.
#[derive(Debug, Serialize, Deserialize)]
struct AuditItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(flatten)]
    entry: AuditEntry,
    ttl: i64,
}

impl MessagingTable {
    /// Adds `entry` to `tenant`'s log, placed by its `at`.
    pub async fn record_audit(
        &self,
        tenant: &TenantId,
        entry: &AuditEntry,
    ) -> Result<(), AwsError> {
        let at = parse_rfc3339_millis(&entry.at).unwrap_or_default();
        // Time-ordered and, within one process, strictly increasing: two entries of the same
        // millisecond keep the order they were written in.
        let id = uuid::Uuid::now_v7().simple().to_string();
        let key = table::tenant(tenant).audit_entry(at, &id);
        let item = AuditItem {
            pk: key.pk,
            sk: key.sk,
            entry: entry.clone(),
            ttl: epoch_seconds(at) + AUDIT_RETENTION_DAYS * 24 * 60 * 60,
        };
        // A fresh random id: a taken key is a bug, never overwritten.
        if !self.put_new(&item, "audit entry").await? {
            return Err(AwsError::ConditionFailed(
                "PutItem(audit entry): key taken".into(),
            ));
        }
        Ok(())
    }

    /// Up to `limit` entries of `tenant`'s log, newest first, older than the entry keyed
    /// `before` (a sort key this returned); and the sort key to continue from when there are
    /// more. Entries past their TTL that DynamoDB has not deleted yet are left out.
    pub async fn audit_page(
        &self,
        tenant: &TenantId,
        before: Option<&str>,
        limit: usize,
        now_seconds: i64,
    ) -> Result<(Vec<AuditEntry>, Option<String>), AwsError> {
        let keys = table::tenant(tenant);
        let exclusive: Option<Item> = before.map(|sk| {
            key_map(&Key {
                pk: keys.pk(),
                sk: sk.to_owned(),
            })
        });
        let output = with_prefix(
            self.client.query().table_name(&self.name),
            &keys.pk(),
            keys.audit_prefix(),
        )
        .scan_index_forward(false)
        .limit(limit as i32 + 1)
        .set_exclusive_start_key(exclusive)
        .send()
        .await
        .map_err(|e| classify("Query(audit)", e))?;
        let mut items = decode_all::<AuditItem>(output.items.unwrap_or_default(), "audit entry")?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|item| item.sk.clone())
        } else {
            None
        };
        let entries = items
            .into_iter()
            .filter(|item| item.ttl > now_seconds)
            .map(|item| item.entry)
            .collect();
        Ok((entries, next))
    }
}
