//! The search indexer: the table's stream (new and old images; the event source mapping's
//! filter passes message items only) in batches, out as search blocks, one set per tenant
//! per batch (`messaging_aws::MessagingTable::index_tenants`).
//!
//! Indexing here, not in the send, takes the index's writes off the message path: a send
//! writes no search item, and a batch of messages of one tenant costs a few block writes
//! instead of one write per word (`docs/search.md`, `docs/performance.md`).
//!
//! What is indexed: a new message (INSERT) and a message whose text changed (MODIFY with a
//! new `editedAt`), under its current text. Reactions, thread counts and deletes change no
//! text and index nothing: a reader checks every hit against the message as it is now, so a
//! deleted or edited message is never found by its old words.
//!
//! Failures: a tenant whose blocks could not be written reports its first record as the
//! batch's failure (ReportBatchItemFailures), so Lambda retries from there; the records
//! after it are indexed again, and a block written twice with the same content has the same
//! key (its id is its content's hash).

use std::collections::BTreeMap;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use messaging_aws::dynamodb::items::MessageItem;
use messaging_aws::dynamodb::line_of;
use messaging_aws::dynamodb::table::tenant_from_pk;
use messaging_aws::MessagingTable;
use messaging_core::search::Line;
use messaging_core::TenantId;
use tracing::{error, info, warn};

use crate::config::{self, ConfigError};

pub struct SearchIndexerService {
    pub table: MessagingTable,
}

impl SearchIndexerService {
    /// As the Lambda builds it: `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
        })
    }
}

/// What one batch did (logged, and returned for tests and benchmarks).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    pub records: usize,
    pub lines: usize,
    pub tenants: usize,
    pub blocks: usize,
    /// What the blocks cost to write (DynamoDB write units, from their sizes).
    pub write_units: usize,
    pub failed_tenants: usize,
}

/// The message a record leaves behind, if it is one whose text should be indexed now.
fn line_to_index(record: &EventRecord) -> Option<(TenantId, Line)> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let image = |image: &serde_dynamo::Item| -> Option<MessageItem> {
        if image.is_empty() {
            return None;
        }
        serde_dynamo::from_item(image.clone()).ok()
    };
    let new = image(&record.change.new_image)?;
    let line = line_of(&new.message)?;
    if let Some(old) = image(&record.change.old_image) {
        // Same text as before (a reaction, a thread count): nothing new to find it by.
        if line_of(&old.message).is_some_and(|o| o.stamp == line.stamp) {
            return None;
        }
    }
    Some((tenant_from_pk(&new.pk)?, line))
}

/// Indexes one batch of stream records.
pub async fn handle(service: &SearchIndexerService, event: Event) -> DynamoDbEventResponse {
    let (response, report) = index(service, &event).await;
    info!(?report, "search index batch");
    response
}

/// Indexes one batch; the response names the first record of each tenant that failed.
pub async fn index(
    service: &SearchIndexerService,
    event: &Event,
) -> (DynamoDbEventResponse, IndexReport) {
    let mut by_tenant: BTreeMap<TenantId, (Vec<Line>, Option<String>)> = BTreeMap::new();
    let mut report = IndexReport {
        records: event.records.len(),
        ..IndexReport::default()
    };
    for record in &event.records {
        let Some((tenant, line)) = line_to_index(record) else {
            continue;
        };
        let entry = by_tenant.entry(tenant).or_default();
        if entry.1.is_none() {
            entry.1 = record.change.sequence_number.clone();
        }
        entry.0.push(line);
        report.lines += 1;
    }
    report.tenants = by_tenant.len();
    let mut failures: Vec<String> = Vec::new();
    let tenants: Vec<(&TenantId, &[Line])> = by_tenant
        .iter()
        .map(|(tenant, (lines, _))| (tenant, lines.as_slice()))
        .collect();
    let written = service.table.index_tenants(&tenants).await;
    for ((tenant, (lines, first)), result) in by_tenant.iter().zip(written) {
        match result {
            Ok((blocks, units)) => {
                report.blocks += blocks;
                report.write_units += units;
            }
            Err(e) => {
                report.failed_tenants += 1;
                error!(error = %e, %tenant, lines = lines.len(), "search blocks not written; the batch is retried from this tenant's first record");
                match first {
                    Some(sequence) => failures.push(sequence.clone()),
                    None => warn!("a stream record without a sequence number"),
                }
            }
        }
    }
    // Lambda retries from the lowest sequence number reported; numbers of one shard compare
    // as (decimal) numbers of growing length.
    failures.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .take(1)
        .map(|sequence| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            failure
        })
        .collect();
    (response, report)
}
