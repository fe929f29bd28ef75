//! Entrypoints of StackPro Messaging: one module per Lambda function, each turning an event
//! into a response. Binaries under `functions/` only build a service from the environment and
//! hand it to the Lambda runtime; tests and the local gateway call the same code, with every
//! service built by [`services::Services`].
//!
//! | module | function | event |
//! |---|---|---|
//! | [`connect`], [`disconnect`] | `$connect`, `$disconnect` | API Gateway WebSocket |
//! | [`route`], [`file_share`] | `$default`, the file routes | API Gateway WebSocket, through [`websocket`] |
//! | [`broadcast`] | fan-out | SQS (the jobs of [`outbox`]) |
//! | [`http_api`] | the portal's HTTP API | API Gateway HTTP API (the [`reads`] of `route`, and unsubscribe links) |
//! | [`service_api`] | the server API (the portal's backend) | API Gateway HTTP API, `AWS_IAM` routes |
//! | [`image_preview`] | image sizes and previews | SQS (the files bucket's object-created notifications) |
//! | [`lifecycle`] | exports and erasures, a step at a time | SQS (its own job steps) |
//! | [`notify_batch`] | the notification batch | EventBridge schedule |
//! | [`search_indexer`] | the search index | the table's DynamoDB stream (message items) |

pub mod audit;
pub mod broadcast;
pub mod coalesce;
pub mod config;
pub mod connect;
pub mod disconnect;
pub mod event;
pub mod file_share;
pub mod http_api;
pub mod identity;
pub mod image_preview;
pub mod lifecycle;
pub mod lifecycle_requests;
pub mod metrics;
pub mod notify_batch;
pub mod outbox;
pub mod reads;
pub mod response;
pub mod route;
pub mod search_indexer;
pub mod service_api;
pub mod services;
pub mod telemetry;
pub mod throttle;
pub use messaging_core::unsubscribe;
pub mod websocket;
