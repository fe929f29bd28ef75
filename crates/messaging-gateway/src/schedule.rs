//! EventBridge schedules (`rate(…)` events in the template), run on the gateway's clock. The
//! period can be shortened for tests and demos.

use std::sync::Arc;
use std::time::Duration;

use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_devstack::ScheduleDefinition;
use serde_json::json;
use tracing::{info, warn};

use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>, schedule: ScheduleDefinition, every: Duration) {
    let mut shutdown = shared.shutdown.clone();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; EventBridge fires after one period
    info!(function = %schedule.function, ?every, "schedule started");
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {}
        }
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": rfc3339_millis(now_millis()).replace(".000Z", "Z"),
            "region": shared.region,
            "resources": [format!("arn:aws:events:{}:123456789012:rule/{}", shared.region, schedule.rule)],
            "detail": {}
        });
        if let Err(e) = shared.functions.invoke(&schedule.function, event).await {
            warn!(error = %e, function = %schedule.function, "scheduled invocation failed");
        }
    }
}
