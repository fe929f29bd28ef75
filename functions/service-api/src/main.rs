//! The server API Lambda (the portal's backend, signed with SigV4 behind `AWS_IAM` routes):
//! see `messaging_handlers::service_api`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use lambda_http::{run, service_fn, Error, Request};
use messaging_handlers::{config, service_api, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = service_api::ServiceApiService::from_env(&sdk)?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(service_api::handle(service, request).await)
    }))
    .await
}
