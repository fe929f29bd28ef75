//! Broadcast Lambda (SQS consumer with ReportBatchItemFailures): see
//! `messaging_handlers::broadcast`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{broadcast, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = broadcast::BroadcastService::from_env(&sdk)?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = i64::try_from(event.context.deadline).ok();
        Ok::<_, Error>(broadcast::handle_until(service, event.payload, deadline).await)
    }))
    .await
}
