//! The scheduled notification batch (every 5 minutes): see `messaging_handlers::notify_batch`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{config, notify_batch, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::aws().await;
    let service = notify_batch::NotifyBatchService::from_env(&sdk).await?;
    let service = &service;
    run(service_fn(
        move |event: LambdaEvent<CloudWatchEvent>| async move {
            let report = notify_batch::handle(service, event.payload).await?;
            Ok::<_, Error>(serde_json::json!({
                "pending": report.pending, "emails": report.emails, "suppressed": report.suppressed,
                "held": report.held, "failed": report.failed,
            }))
        },
    ))
    .await
}
