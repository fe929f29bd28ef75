//! The image-preview Lambda (SQS consumer of the files bucket's object-created notifications,
//! with ReportBatchItemFailures): see `messaging_handlers::image_preview`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{config, image_preview, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = image_preview::ImagePreviewService::from_env(&sdk)?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(image_preview::handle(service, event.payload).await)
    }))
    .await
}
