//! The functions the gateway invokes, by binary name (the template's
//! `Metadata.BuildProperties.Binary`). Events go in and responses come out as JSON, exactly as
//! Lambda passes them, into the same handler code the Lambda binaries wrap.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::sqs::SqsEvent;
use messaging_handlers::services::Services;
use messaging_handlers::{
    broadcast, connect, disconnect, file_share, http_api, image_preview, lifecycle, notify_batch,
    route, search_indexer, service_api,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A function's result: its JSON response, or its error message (what Lambda reports as a
/// function error).
pub type Invocation = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;
type Handler = Arc<dyn Fn(Value) -> Invocation + Send + Sync>;

#[derive(Clone, Default)]
pub struct Functions {
    handlers: HashMap<String, Handler>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

impl Functions {
    /// Registers `binary`, whose handler takes the event type `E` and answers `R`.
    pub fn register<E, R, F, Fut>(&mut self, binary: &str, handler: F)
    where
        E: DeserializeOwned + Send + 'static,
        R: Serialize,
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, String>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handlers.insert(
            binary.to_owned(),
            Arc::new(move |event: Value| {
                let handler = handler.clone();
                Box::pin(async move {
                    // Through bytes, as the Lambda runtime hands the payload over.
                    let bytes = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
                    let event: E = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("invalid event: {e}"))?;
                    let response = handler(event).await?;
                    serde_json::to_value(&response).map_err(|e| e.to_string())
                })
            }),
        );
    }

    pub fn contains(&self, binary: &str) -> bool {
        self.handlers.contains_key(binary)
    }

    pub async fn invoke(&self, binary: &str, event: Value) -> Result<Value, String> {
        match self.handlers.get(binary) {
            Some(handler) => handler(event).await,
            None => Err(format!("no local implementation of function {binary:?}")),
        }
    }

    /// The StackPro Messaging functions.
    pub fn stackpro(services: Services) -> Self {
        let Services {
            connect,
            disconnect,
            route,
            file_share,
            http_api: http,
            service_api,
            image_preview,
            lifecycle: jobs,
            broadcast,
            notify_batch: notify,
            search_indexer,
        } = services;
        let jobs = Arc::new(jobs);
        let indexer = Arc::new(search_indexer);
        let files = Arc::new(file_share);
        let http = Arc::new(http);
        let service_api = Arc::new(service_api);
        let previews = Arc::new(image_preview);
        let notify = Arc::new(notify);
        let (c, d, r, b) = (
            Arc::new(connect),
            Arc::new(disconnect),
            Arc::new(route),
            Arc::new(broadcast),
        );
        let mut functions = Self::default();
        functions.register("connect", move |e: ApiGatewayWebsocketProxyRequest| {
            let c = c.clone();
            async move { Ok(connect::handle(&c, &e).await) }
        });
        functions.register("disconnect", move |e: ApiGatewayWebsocketProxyRequest| {
            let d = d.clone();
            async move { disconnect::handle(&d, &e).await.map_err(|e| e.to_string()) }
        });
        functions.register("route", move |e: ApiGatewayWebsocketProxyRequest| {
            let r = r.clone();
            async move { Ok(route::handle(&r, &e).await) }
        });
        functions.register("file-share", move |e: ApiGatewayWebsocketProxyRequest| {
            let f = files.clone();
            async move { Ok(file_share::handle(&f, &e).await) }
        });
        // Through lambda_http's own adapter, as the Lambda binary runs it: payload-2.0 event
        // in, http::Request to the handler, payload-2.0 response out.
        functions.register("http-api", move |e: lambda_http::request::LambdaRequest| {
            let http = http.clone();
            async move {
                use lambda_http::Service;
                let handler = lambda_http::service_fn(move |request: lambda_http::Request| {
                    let http = http.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http_api::handle(&http, request).await)
                    }
                });
                let mut adapter = lambda_http::Adapter::from(handler);
                let event = lambda_http::LambdaEvent::new(e, lambda_http::Context::default());
                adapter.call(event).await.map_err(|e| e.to_string())
            }
        });
        functions.register(
            "service-api",
            move |e: lambda_http::request::LambdaRequest| {
                let service = service_api.clone();
                async move {
                    use lambda_http::Service;
                    let handler = lambda_http::service_fn(move |request: lambda_http::Request| {
                        let service = service.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                service_api::handle(&service, request).await,
                            )
                        }
                    });
                    let mut adapter = lambda_http::Adapter::from(handler);
                    let event = lambda_http::LambdaEvent::new(e, lambda_http::Context::default());
                    adapter.call(event).await.map_err(|e| e.to_string())
                }
            },
        );
        functions.register("image-preview", move |e: SqsEvent| {
            let p = previews.clone();
            async move { Ok(image_preview::handle(&p, e).await) }
        });
        // Like its Lambda: the queue's records run steps, the daily schedule starts sweeps.
        functions.register("lifecycle", move |e: Value| {
            let jobs = jobs.clone();
            async move {
                lifecycle::handle_event(&jobs, e)
                    .await
                    .map_err(|e| e.to_string())
            }
        });
        functions.register("broadcast", move |e: SqsEvent| {
            let b = b.clone();
            async move { Ok(broadcast::handle(&b, e).await) }
        });
        functions.register(
            "search-indexer",
            move |e: aws_lambda_events::dynamodb::Event| {
                let indexer = indexer.clone();
                async move { Ok(search_indexer::handle(&indexer, e).await) }
            },
        );
        // Like its Lambda: the queue's records go to the worker, the schedule's event to the
        // coordinator.
        functions.register("notify-batch", move |e: Value| {
            let notify = notify.clone();
            async move {
                if e.get("Records").is_some() {
                    let records: SqsEvent = serde_json::from_value(e).map_err(|e| e.to_string())?;
                    let response = notify_batch::handle_work(&notify, records, None).await;
                    return serde_json::to_value(response).map_err(|e| e.to_string());
                }
                let scheduled: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
                    serde_json::from_value(e).map_err(|e| e.to_string())?;
                notify_batch::handle(&notify, scheduled)
                    .await
                    .map(|report| Value::String(format!("{report:?}")))
                    .map_err(|e| e.to_string())
            }
        });
        functions
    }
}
