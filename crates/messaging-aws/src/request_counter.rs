//! Counts the requests an SDK client sends, by operation: how tests and benchmarks show what
//! one message costs in DynamoDB, SQS and API Gateway calls; and records the operations the
//! service refused with 403 (how the IAM test shows a call that a function's policy lacks).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// An interceptor to add to a client's config; clones share their counts.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    /// DynamoDB reads sent without `ConsistentRead` (half the read units), by operation.
    eventual: Arc<Mutex<BTreeMap<String, u64>>>,
    denied: Arc<Mutex<Vec<String>>>,
}

/// `service:Operation` of the request the config bag describes.
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}:{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests sent per operation name (every attempt counts, as AWS bills it).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Of [`Self::snapshot`]'s DynamoDB reads (GetItem, Query, BatchGetItem), those sent
    /// eventually consistent, by operation.
    pub fn eventually_consistent(&self) -> BTreeMap<String, u64> {
        self.eventual.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn reset(&self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.clear();
        }
        if let Ok(mut eventual) = self.eventual.lock() {
            eventual.clear();
        }
    }

    /// `service:Operation (what the service said)` of every request answered 403 (access
    /// denied), in order.
    pub fn denied(&self) -> Vec<String> {
        self.denied.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "unknown".into());
        // DynamoDB's JSON body says `"ConsistentRead":true` for a strongly consistent read.
        if matches!(operation.as_str(), "GetItem" | "Query" | "BatchGetItem") {
            let consistent = context.request().body().bytes().is_some_and(|b| {
                b.windows(b"\"ConsistentRead\":true".len())
                    .any(|w| w == b"\"ConsistentRead\":true")
            });
            if !consistent {
                if let Ok(mut eventual) = self.eventual.lock() {
                    *eventual.entry(operation.clone()).or_default() += 1;
                }
            }
        }
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(operation).or_default() += 1;
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if response.status().as_u16() == 403 {
            // The service's own words (an error code and message) when the body is at hand.
            let said = response
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                .unwrap_or_default();
            if let Ok(mut denied) = self.denied.lock() {
                denied.push(format!("{} ({})", operation(cfg), said.trim()));
            }
        }
        Ok(())
    }
}
