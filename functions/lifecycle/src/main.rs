//! The lifecycle Lambda: its queue's job steps (SQS, with ReportBatchItemFailures) and the
//! daily schedule that starts retention sweeps. See `messaging_handlers::lifecycle`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{config, lifecycle, telemetry};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = lifecycle::LifecycleService::from_env(&sdk)?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(lifecycle::handle_event(service, event.payload).await?)
    }))
    .await
}
