//! `$connect` Lambda: see `messaging_handlers::connect`.
// The future of `main` nests lambda_runtime's layers over the handler's and the AWS SDK's:
// deeper than rustc's default query depth for computing its layout.
#![recursion_limit = "256"]

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use messaging_handlers::{config, connect, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let sdk = config::function_aws()?;
    let service = connect::ConnectService::from_env(&sdk).await?;
    let service = &service;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(connect::handle(service, &event.payload).await)
        },
    ))
    .await
}
