//! Search indexer Lambda (the table's DynamoDB stream, ReportBatchItemFailures): see
//! `messaging_handlers::search_indexer`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{config, search_indexer, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = search_indexer::SearchIndexerService::from_env(&sdk)?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(search_indexer::handle(service, event.payload).await)
    }))
    .await
}
