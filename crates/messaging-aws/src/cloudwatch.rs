//! Gauges through CloudWatch `PutMetricData` (per-event counts go out as Embedded Metric
//! Format log lines instead, with no API call: see `messaging_handlers::metrics`).

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use messaging_core::TenantId;

use crate::error::{classify, AwsError};

/// Data points per PutMetricData request (the classic API limit, which every endpoint and
/// emulator accepts).
pub const DATA_PER_REQUEST: usize = 20;

#[derive(Debug, Clone)]
pub struct Gauges {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
}

impl Gauges {
    pub fn new(client: aws_sdk_cloudwatch::Client, namespace: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
        }
    }

    /// Publishes one value of `metric` per tenant (dimension `TenantId`), a request per
    /// [`DATA_PER_REQUEST`] tenants.
    pub async fn put_per_tenant(
        &self,
        metric: &str,
        values: &HashMap<TenantId, usize>,
    ) -> Result<(), AwsError> {
        let data: Vec<MetricDatum> = values
            .iter()
            .map(|(tenant, value)| {
                MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        Dimension::builder()
                            .name("TenantId")
                            .value(tenant.as_str())
                            .build(),
                    )
                    .unit(StandardUnit::Count)
                    .value(*value as f64)
                    .build()
            })
            .collect();
        for chunk in data.chunks(DATA_PER_REQUEST) {
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| classify("CloudWatch PutMetricData", e))?;
        }
        Ok(())
    }
}
