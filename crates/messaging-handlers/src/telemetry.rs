//! Structured logging: JSON lines without timestamps (CloudWatch stamps them), level from
//! `RUST_LOG`. Fields carry tenant, user and connection ids; never tokens or message text.

/// Installs the global subscriber once; later calls are no-ops.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        // The span list includes lambda_runtime's invocation span, which carries requestId.
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .try_init();
}
