//! Per-tenant metrics as CloudWatch Embedded Metric Format log lines: one JSON line on stdout
//! per event, which CloudWatch Logs turns into metrics with no API call on the hot path.
//!
//! Namespace `StackPro/Messaging`, dimension `TenantId` (and the all-tenants total under no
//! dimension, for alarms). Never carries message text, names or tokens: only counts, ids and
//! milliseconds.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use messaging_core::time::now_millis;
use messaging_core::TenantId;

pub const NAMESPACE: &str = "StackPro/Messaging";
/// The gauge of users connected today, per tenant (published by notify-batch through
/// PutMetricData, not EMF: it is a daily count, not an event).
pub const ACTIVE_USERS: &str = "ActiveUsers";

/// The metrics this suite emits (the dashboard and alarms in template.yaml use these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A message stored (the dashboard sums it per day: MessagesPerDay).
    Messages,
    /// A `$connect` accepted.
    Connections,
    /// Frames posted to connections by the broadcast function.
    Deliveries,
    /// Connections found gone (410) and removed.
    PrunedConnections,
    /// Requests that failed on our side (INTERNAL / UNAVAILABLE answers, dead-lettered jobs).
    Errors,
    /// Milliseconds from a message being accepted to its fan-out completing.
    FanoutLatency,
    /// Notifications written for members who were not connected (or mentioned).
    NotificationsQueued,
    /// Emails, pushes and text messages the notification batch sent.
    NotificationsSent,
    /// Frames refused by a rate limit (THROTTLED).
    Throttled,
    /// `@connections` calls API Gateway answered 429 (the account's requests a second spent:
    /// docs/scale.md); each was tried again.
    ThrottledPosts,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Messages => "Messages",
            Metric::Connections => "Connections",
            Metric::Deliveries => "Deliveries",
            Metric::PrunedConnections => "PrunedConnections",
            Metric::Errors => "Errors",
            Metric::FanoutLatency => "FanoutLatency",
            Metric::NotificationsQueued => "NotificationsQueued",
            Metric::NotificationsSent => "NotificationsSent",
            Metric::Throttled => "Throttled",
            Metric::ThrottledPosts => "ThrottledPosts",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::FanoutLatency => "Milliseconds",
            _ => "Count",
        }
    }
}

static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Collects the EMF lines written from now on (tests), instead of printing them.
pub fn capture() {
    *CAPTURE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// The lines collected since [`capture`].
pub fn captured() -> Vec<String> {
    CAPTURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// The EMF line for these values of one tenant.
pub fn line(tenant: &TenantId, values: &[(Metric, f64)], at_millis: i64) -> String {
    let definitions: Vec<Value> = values
        .iter()
        .map(|(m, _)| json!({ "Name": m.name(), "Unit": m.unit() }))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                // Per tenant, and the total across tenants (for alarms).
                "Dimensions": [["TenantId"], []],
                "Metrics": definitions,
            }],
        }),
    );
    root.insert("TenantId".into(), json!(tenant.as_str()));
    for (metric, value) in values {
        root.insert(metric.name().into(), json!(value));
    }
    Value::Object(root).to_string()
}

/// Writes one EMF line (stdout, which Lambda sends to CloudWatch Logs).
pub fn emit(tenant: &TenantId, values: &[(Metric, f64)]) {
    if values.is_empty() {
        return;
    }
    let text = line(tenant, values, now_millis());
    let mut capture = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    match capture.as_mut() {
        Some(lines) => lines.push(text),
        None => println!("{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let tenant = TenantId::parse("acme").unwrap();
        let text = line(
            &tenant,
            &[(Metric::Deliveries, 10.0), (Metric::FanoutLatency, 42.0)],
            1_700_000_000_000,
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["TenantId"], []]));
        assert_eq!(
            directive["Metrics"][1],
            json!({ "Name": "FanoutLatency", "Unit": "Milliseconds" })
        );
        assert_eq!(
            (v["TenantId"].as_str(), v["Deliveries"].as_f64()),
            (Some("acme"), Some(10.0))
        );
    }
}
