//! Structured logging: JSON lines without timestamps (CloudWatch stamps them), level from
//! `RUST_LOG`. Fields carry tenant, user and connection ids; never tokens or message text.
//!
//! Whatever `RUST_LOG` asks for, the libraries that log payloads at debug or trace stay at
//! info: lambda_runtime logs every raw event at trace (a `$connect` event carries the access
//! token in its query string, a frame carries message text), the AWS SDK and hyper log request
//! and response bodies.

use tracing_subscriber::filter::{Directive, EnvFilter};

/// Targets capped at info, whatever `RUST_LOG` says.
const PAYLOAD_LOGGERS: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sigv4",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter for a `RUST_LOG` value (`info` when empty or unreadable), with the payload
/// loggers capped at info.
pub fn filter(rust_log: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in PAYLOAD_LOGGERS {
        if let Ok(cap) = format!("{target}=info").parse::<Directive>() {
            filter = filter.add_directive(cap);
        }
    }
    filter
}

/// Installs the global subscriber once; later calls are no-ops.
pub fn init_tracing() {
    let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter(&rust_log))
        .with_current_span(true)
        // The span list includes lambda_runtime's invocation span, which carries requestId.
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn even_at_trace_no_raw_event_or_request_body_is_logged() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(super::filter("trace"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "?token=SECRET", "raw JSON event received from Lambda");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", body = "SECRET text", "response");
            tracing::trace!(target: "messaging_handlers::route", "our own trace");
            tracing::info!(target: "lambda_runtime", "runtime info");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains("our own trace") && text.contains("runtime info"),
            "{text}"
        );
    }
}
