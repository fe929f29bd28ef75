//! Entrypoints of StackPro Messaging: one module per Lambda function, each turning an event
//! into a response. Binaries under `functions/` only build a service from the environment and
//! hand it to the Lambda runtime; tests and the local gateway call the same code.

pub mod broadcast;
pub mod config;
pub mod connect;
pub mod disconnect;
pub mod event;
pub mod file_share;
pub mod http_api;
pub mod metrics;
pub mod notify_batch;
pub mod presence;
pub mod response;
pub mod route;
pub mod telemetry;
