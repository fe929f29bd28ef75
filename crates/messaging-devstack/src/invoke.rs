//! `stackpro-dev invoke`: one function, one event, no Docker. The handler is built from the
//! environment exactly as its Lambda `main` builds it, and the event goes through JSON as
//! Lambda passes it.

use anyhow::Context;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::sqs::SqsEvent;
use messaging_handlers::{
    broadcast, config, connect, disconnect, file_share, http_api, image_preview, notify_batch,
    route, service_api,
};

pub async fn run(function: &str, event_path: &str) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(event_path).with_context(|| format!("cannot read {event_path}"))?;
    let sdk = config::aws().await;
    let websocket = || -> anyhow::Result<ApiGatewayWebsocketProxyRequest> {
        serde_json::from_str(&text)
            .with_context(|| format!("{event_path} is not an API Gateway WebSocket event"))
    };
    let response = match function {
        "connect" => {
            let service = connect::ConnectService::from_env(&sdk).await?;
            serde_json::to_string_pretty(&connect::handle(&service, &websocket()?).await)?
        }
        "disconnect" => {
            let service = disconnect::DisconnectService::from_env(&sdk)?;
            serde_json::to_string_pretty(&disconnect::handle(&service, &websocket()?).await?)?
        }
        "route" => {
            let service = route::RouteService::from_env(&sdk).await?;
            serde_json::to_string_pretty(&route::handle(&service, &websocket()?).await)?
        }
        "file-share" => {
            let service = file_share::FileShareService::from_env(&sdk).await?;
            serde_json::to_string_pretty(&file_share::handle(&service, &websocket()?).await)?
        }
        "http-api" => {
            use lambda_http::Service;
            let event: lambda_http::request::LambdaRequest = serde_json::from_str(&text)
                .with_context(|| format!("{event_path} is not an HTTP API (payload 2.0) event"))?;
            let service = http_api::HttpApiService::from_env(&sdk).await?;
            let service = &service;
            let handler = lambda_http::service_fn(move |request: lambda_http::Request| async move {
                Ok::<_, std::convert::Infallible>(http_api::handle(service, request).await)
            });
            let response = lambda_http::Adapter::from(handler)
                .call(lambda_http::LambdaEvent::new(event, lambda_http::Context::default()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::to_string_pretty(&response)?
        }
        "service-api" => {
            use lambda_http::Service;
            let event: lambda_http::request::LambdaRequest = serde_json::from_str(&text)
                .with_context(|| format!("{event_path} is not an HTTP API (payload 2.0) event"))?;
            let service = service_api::ServiceApiService::from_env(&sdk)?;
            let service = &service;
            let handler = lambda_http::service_fn(move |request: lambda_http::Request| async move {
                Ok::<_, std::convert::Infallible>(service_api::handle(service, request).await)
            });
            let response = lambda_http::Adapter::from(handler)
                .call(lambda_http::LambdaEvent::new(event, lambda_http::Context::default()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::to_string_pretty(&response)?
        }
        "image-preview" => {
            let records: SqsEvent = serde_json::from_str(&text)
                .with_context(|| format!("{event_path} is not an SQS event"))?;
            let service = image_preview::ImagePreviewService::from_env(&sdk)?;
            serde_json::to_string_pretty(&image_preview::handle(&service, records).await)?
        }
        // Like its Lambda: SQS records go to the worker, a scheduled event to the coordinator.
        "notify-batch" => {
            let service = notify_batch::NotifyBatchService::from_env(&sdk).await?;
            if let Ok(records) = serde_json::from_str::<SqsEvent>(&text) {
                if !records.records.is_empty() {
                    let response = notify_batch::handle_work(&service, records, None).await;
                    return Ok(serde_json::to_string_pretty(&response)?);
                }
            }
            let event: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
                serde_json::from_str(&text).with_context(|| {
                    format!("{event_path} is neither a scheduled event nor SQS records")
                })?;
            format!("{:#?}", notify_batch::handle(&service, event).await?)
        }
        "broadcast" => {
            let event: SqsEvent = serde_json::from_str(&text)
                .with_context(|| format!("{event_path} is not an SQS event"))?;
            let service = broadcast::BroadcastService::from_env(&sdk)?;
            serde_json::to_string_pretty(&broadcast::handle(&service, event).await)?
        }
        other => anyhow::bail!(
            "unknown function {other:?}; expected connect, disconnect, route, file-share, http-api, service-api, image-preview, notify-batch or broadcast"
        ),
    };
    Ok(response)
}
