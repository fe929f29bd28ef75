//! The notification batch: the coordinator on its EventBridge schedule (every 5 minutes), the
//! worker on the notify queue's event source. See `messaging_handlers::notify_batch`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{config, notify_batch, telemetry};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = notify_batch::NotifyBatchService::from_env(&sdk).await?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // SQS delivers `Records`; the schedule a `Scheduled Event`.
        if event.payload.get("Records").is_some() {
            let records: SqsEvent = serde_json::from_value(event.payload)?;
            let deadline = i64::try_from(event.context.deadline).ok();
            let response = notify_batch::handle_work(service, records, deadline).await;
            return Ok::<_, Error>(serde_json::to_value(response)?);
        }
        let scheduled: CloudWatchEvent = serde_json::from_value(event.payload)?;
        let report = notify_batch::handle(service, scheduled).await?;
        Ok(serde_json::json!({ "tenants": report.tenants, "queued": report.queued }))
    }))
    .await
}
