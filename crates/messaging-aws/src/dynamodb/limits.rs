//! Rate limits: a tenant's own limits, and the shared counters the sandboxes add their counts
//! to (see `messaging_core::limits` for the counting).

use messaging_core::limits::{RateLimits, WINDOW_MILLIS};
use messaging_core::{TenantId, UserId};

use super::items::RateLimitsItem;
use super::requests::{epoch_seconds, key_map, n};
use super::table;
use super::MessagingTable;
use crate::error::{classify, AwsError};

/// A counter outlives its window by this much (then DynamoDB's TTL removes it).
const COUNTER_TTL_MILLIS: i64 = 2 * 60 * 1000;

impl MessagingTable {
    /// The limits an operator set for `tenant`, if any (the defaults apply otherwise).
    pub async fn rate_limits(&self, tenant: &TenantId) -> Result<Option<RateLimits>, AwsError> {
        let key = table::tenant(tenant).rate_limits();
        Ok(self
            .get_as::<RateLimitsItem>(&key, "rate limits")
            .await?
            .map(|item| item.limits))
    }

    /// Sets (or, with `None`, removes) `tenant`'s own limits. Sandboxes see them within a
    /// minute.
    pub async fn set_rate_limits(
        &self,
        tenant: &TenantId,
        limits: Option<&RateLimits>,
    ) -> Result<(), AwsError> {
        let key = table::tenant(tenant).rate_limits();
        match limits {
            Some(limits) => {
                let item = RateLimitsItem {
                    pk: key.pk,
                    sk: key.sk,
                    limits: *limits,
                };
                self.put_item(&item, "rate limits").await
            }
            None => self.delete_keys(&[key]).await,
        }
    }

    /// Adds `add` sends to the counter of the window starting at `window` (the tenant's, or
    /// `user`'s) and returns its new total: one UpdateItem.
    pub async fn add_sends(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        window: i64,
        add: u32,
    ) -> Result<u32, AwsError> {
        let key = table::tenant(tenant).rate_counter(user, window);
        let output = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(&key)))
            .update_expression("ADD #count :add SET #ttl = :ttl")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":add", n(add))
            .expression_attribute_values(
                ":ttl",
                n(epoch_seconds(window + WINDOW_MILLIS + COUNTER_TTL_MILLIS)),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem(rate counter)", e))?;
        let total = output
            .attributes
            .as_ref()
            .and_then(|a| a.get("count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::from(add));
        Ok(u32::try_from(total).unwrap_or(u32::MAX))
    }
}
