//! The portal HTTP API Lambda (history, threads, search without a socket): see
//! `messaging_handlers::http_api`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use lambda_http::{run, service_fn, Error, Request};
use messaging_handlers::{config, http_api, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = http_api::HttpApiService::from_env(&sdk).await?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(http_api::handle(service, request).await)
    }))
    .await
}
