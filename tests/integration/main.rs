//! Integration tests: the real handlers, real AWS SDK clients, moto. Run with
//! `./infra/local/test.sh`.

mod broadcast;
mod browser;
mod collaboration;
mod connect;
mod events_fixtures;
mod faults;
mod files;
mod gateway_conformance;
mod gateway_e2e;
mod http_api;
mod iam;
mod isolation;
mod limits;
mod matrix;
mod messages;
mod moto_semantics;
mod notifications;
mod route;
mod sdk_e2e;
mod search;
mod template_lint;
mod throttle;
