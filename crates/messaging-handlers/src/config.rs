//! Configuration from the environment, read once per process at start-up.

use aws_config::{BehaviorVersion, SdkConfig};
use messaging_aws::{BroadcastQueue, ConnectionsApi, Gauges, Mailer, MessagingTable, Secrets, Sns};
use messaging_core::signed::Signer;
use messaging_core::token::{TokenConfigError, TokenVerifier};

use crate::identity::{JwksError, Verifier};

/// A start-up configuration problem; the message names the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (see template.yaml for its value)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("JWT settings are invalid: {0}")]
    Token(#[from] TokenConfigError),
    #[error("JWT settings are invalid: {0}")]
    Jwks(#[from] JwksError),
    #[error("a start-up read was stopped before it finished: {0}")]
    Stopped(String),
    #[error("the secret {id} ({name}) could not be read: {reason}")]
    Secret {
        name: String,
        id: String,
        reason: String,
    },
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    name,
                    reason: e.to_string(),
                })
        }
        _ => Ok(default),
    }
}

/// A function's AWS configuration, from exactly what a Lambda sandbox sets: `AWS_REGION`, the
/// execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), `AWS_ENDPOINT_URL` when set (the local stack; empty in the template),
/// the standard retry policy and the time any call may take ([`messaging_aws::timeouts`]).
/// Unlike [`aws`], no profile file, container or instance metadata and no STS is looked for
/// at start: a sandbox has none of them, and leaving them out keeps their code out of every
/// function binary (docs/performance.md, "Binaries").
pub fn function_aws() -> Result<SdkConfig, ConfigError> {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_config::retry::RetryConfig;
    use aws_config::Region;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;

    let region = required("AWS_REGION")?;
    // Checked here so a sandbox without credentials says so at start, not at its first call.
    required("AWS_ACCESS_KEY_ID")?;
    required("AWS_SECRET_ACCESS_KEY")?;
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.trim().to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(RetryConfig::standard())
        .timeout_config(messaging_aws::timeouts());
    if let Ok(endpoint) = required("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint.trim());
    }
    Ok(builder.build())
}

/// The local tools' AWS configuration (the gateway, the devstack): the SDK's whole default
/// chain (profiles included), `AWS_ENDPOINT_URL`, and the time any call may take
/// ([`messaging_aws::timeouts`]).
pub async fn aws() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(messaging_aws::timeouts())
        .load()
        .await
}

/// `TABLE_NAME`.
pub fn table(sdk: &SdkConfig) -> Result<MessagingTable, ConfigError> {
    Ok(MessagingTable::new(
        aws_sdk_dynamodb::Client::new(sdk),
        required("TABLE_NAME")?,
    ))
}

/// `BROADCAST_QUEUE_URL`.
pub fn broadcast_queue(sdk: &SdkConfig) -> Result<BroadcastQueue, ConfigError> {
    Ok(BroadcastQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        required("BROADCAST_QUEUE_URL")?,
    ))
}

/// `BROADCAST_DLQ_URL`.
pub fn broadcast_dead_letter_queue(sdk: &SdkConfig) -> Result<BroadcastQueue, ConfigError> {
    Ok(BroadcastQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        required("BROADCAST_DLQ_URL")?,
    ))
}

/// `WEBSOCKET_MANAGEMENT_ENDPOINT`: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
pub fn connections_api(sdk: &SdkConfig) -> Result<ConnectionsApi, ConfigError> {
    connections_api_at(sdk, &required("WEBSOCKET_MANAGEMENT_ENDPOINT")?)
}

/// The `@connections` client for an explicit endpoint (the local gateway knows its own).
pub fn connections_api_at(sdk: &SdkConfig, endpoint: &str) -> Result<ConnectionsApi, ConfigError> {
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            name: "WEBSOCKET_MANAGEMENT_ENDPOINT",
            reason: "must be an http(s) URL such as https://abc123.execute-api.us-east-1.amazonaws.com/prod".into(),
        });
    }
    // No SDK retries: broadcast's post loop retries itself (broadcast::post_in_order), so a
    // 429 is met by the run's pause at once instead of the SDK's own backoff (1 s, then 2 s,
    // per post, out of a retry quota the whole sandbox shares): docs/scale.md.
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
        .build();
    Ok(ConnectionsApi::new(
        aws_sdk_apigatewaymanagement::Client::from_conf(config),
    ))
}

/// `FANOUT_CONCURRENCY`: PostToConnection calls in flight per broadcast job.
pub fn fanout_concurrency() -> Result<usize, ConfigError> {
    let value: usize = parsed("FANOUT_CONCURRENCY", 64)?;
    if value == 0 || value > 1024 {
        return Err(ConfigError::Invalid {
            name: "FANOUT_CONCURRENCY",
            reason: "must be 1 to 1024".into(),
        });
    }
    Ok(value)
}

/// `DIRECT_FANOUT`: how many of a conversation's connections (its first page of subscriptions,
/// the sender's own among them) the route function posts a new message to itself; the rest,
/// and any retry, go through the broadcast queue.
/// 0 queues every message (strict per-conversation transport order, one more hop and about
/// $1.75 more per million messages; see docs/performance.md).
pub fn direct_fanout() -> Result<usize, ConfigError> {
    let value: usize = parsed("DIRECT_FANOUT", DEFAULT_DIRECT_FANOUT)?;
    if value > MAX_DIRECT_FANOUT {
        return Err(ConfigError::Invalid {
            name: "DIRECT_FANOUT",
            reason: format!("must be 0 to {MAX_DIRECT_FANOUT}"),
        });
    }
    Ok(value)
}

/// The template's default `DirectFanout`.
pub const DEFAULT_DIRECT_FANOUT: usize = 128;
/// At most this many posts before a sender's ACK.
pub const MAX_DIRECT_FANOUT: usize = 1_000;

/// A secret setting. Deployed, `{name}_ID` names a Secrets Manager secret (the template's, by
/// ARN; the local stack's, by name) read once here, so the value is never in the function's
/// environment. Without it, `{name}` itself (unit tests and `sam local invoke` only).
pub async fn secret(
    sdk: &SdkConfig,
    name: &'static str,
    id_name: &'static str,
) -> Result<String, ConfigError> {
    match std::env::var(id_name) {
        Ok(id) if !id.trim().is_empty() => secret_from(sdk, name, id.trim()).await,
        _ => required(name),
    }
}

/// The secret `id` (ARN or name) from Secrets Manager; `name` is the setting, for the error.
pub async fn secret_from(sdk: &SdkConfig, name: &str, id: &str) -> Result<String, ConfigError> {
    let secrets = Secrets::new(aws_sdk_secretsmanager::Client::new(sdk));
    let value = secrets.value(id).await.map_err(|e| ConfigError::Secret {
        name: name.to_owned(),
        id: id.to_owned(),
        reason: e.to_string(),
    })?;
    if value.trim().is_empty() {
        return Err(ConfigError::Secret {
            name: name.to_owned(),
            id: id.to_owned(),
            reason: "it is empty".into(),
        });
    }
    Ok(value)
}

/// Starts `read` (a setting that costs a round trip, such as a secret) on the runtime now, so
/// that what the caller builds meanwhile (clients, limits) overlaps its wait: a cold start
/// then waits for the longer of the two, not their sum. Await the result for the value.
pub fn start<T: Send + 'static>(
    read: impl std::future::Future<Output = Result<T, ConfigError>> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, ConfigError>> {
    let running = tokio::spawn(read);
    async move {
        match running.await {
            Ok(value) => value,
            Err(stopped) if stopped.is_panic() => std::panic::resume_unwind(stopped.into_panic()),
            Err(stopped) => Err(ConfigError::Stopped(stopped.to_string())),
        }
    }
}

/// [`signer`], started now ([`start`]).
pub fn start_signer(
    sdk: &SdkConfig,
) -> impl std::future::Future<Output = Result<Signer, ConfigError>> {
    let sdk = sdk.clone();
    start(async move { signer(&sdk).await })
}

/// [`token_verifier`], started now ([`start`]).
pub fn start_token_verifier(
    sdk: &SdkConfig,
) -> impl std::future::Future<Output = Result<Verifier, ConfigError>> {
    let sdk = sdk.clone();
    start(async move { token_verifier(&sdk).await })
}

/// Shortest cursor secret accepted.
pub const MIN_CURSOR_SECRET_BYTES: usize = 32;

/// The signer of page cursors and unsubscribe links, from the secret `CURSOR_SECRET_ID` names
/// (or `CURSOR_SECRET`): at least 32 bytes.
pub async fn signer(sdk: &SdkConfig) -> Result<Signer, ConfigError> {
    signer_from(&secret(sdk, "CURSOR_SECRET", "CURSOR_SECRET_ID").await?)
}

/// The signer for a secret value, refused when shorter than 32 bytes.
pub fn signer_from(secret: &str) -> Result<Signer, ConfigError> {
    if secret.len() < MIN_CURSOR_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name: "CURSOR_SECRET",
            reason: format!("it must be at least {MIN_CURSOR_SECRET_BYTES} bytes"),
        });
    }
    Ok(Signer::new(secret.as_bytes()))
}

/// Token verification from `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_ALGORITHM` and the key, the
/// secret `JWT_VERIFICATION_KEY_ID` names (or `JWT_VERIFICATION_KEY`):
///
/// | JWT_ALGORITHM | key |
/// |---|---|
/// | `HS256` | the shared secret (≥ 32 bytes; development) |
/// | `RS256` / `ES256` | the PEM public key (`\n` may be written as the two characters `\n`) |
/// | `JWKS` | the identity provider's JSON Web Key Set document |
/// | `JWKS_URL` | the address of that document (https), fetched now and again on rotation |
pub async fn token_verifier(sdk: &SdkConfig) -> Result<Verifier, ConfigError> {
    let issuer = required("JWT_ISSUER")?;
    let audience = required("JWT_AUDIENCE")?;
    let algorithm = required("JWT_ALGORITHM")?;
    let key = secret(sdk, "JWT_VERIFICATION_KEY", "JWT_VERIFICATION_KEY_ID").await?;
    let verifier = match algorithm.trim() {
        "HS256" => TokenVerifier::hs256(key.as_bytes(), &issuer, &audience)?.into(),
        alg @ ("RS256" | "ES256") => {
            TokenVerifier::public_key_pem(alg, &key.replace("\\n", "\n"), &issuer, &audience)?
                .into()
        }
        "JWKS" => TokenVerifier::jwks(&key, &issuer, &audience)?.into(),
        "JWKS_URL" => Verifier::from_jwks_url(key.trim(), &issuer, &audience).await?,
        other => {
            return Err(ConfigError::Invalid {
                name: "JWT_ALGORITHM",
                reason: format!("{other:?} is not one of HS256, RS256, ES256, JWKS, JWKS_URL"),
            })
        }
    };
    Ok(verifier)
}

/// `SENDER_EMAIL`: the verified SES identity notification emails come from.
pub fn mailer(sdk: &SdkConfig) -> Result<Mailer, ConfigError> {
    Ok(mailer_from(sdk, required("SENDER_EMAIL")?))
}

/// Mail from `sender` (a verified SES identity).
pub fn mailer_from(sdk: &SdkConfig, sender: impl Into<String>) -> Mailer {
    Mailer::new(aws_sdk_sesv2::Client::new(sdk), sender)
}

/// Push notifications and text messages.
pub fn sns(sdk: &SdkConfig) -> Sns {
    Sns::new(aws_sdk_sns::Client::new(sdk))
}

/// The CloudWatch gauges of the suite's namespace.
pub fn gauges(sdk: &SdkConfig) -> Gauges {
    Gauges::new(
        aws_sdk_cloudwatch::Client::new(sdk),
        crate::metrics::NAMESPACE,
    )
}

/// `HTTP_API_URL` + `/unsubscribe`: where the links in notification emails point.
pub fn unsubscribe_url() -> Result<String, ConfigError> {
    Ok(format!(
        "{}/unsubscribe",
        required("HTTP_API_URL")?.trim_end_matches('/')
    ))
}

/// SES's default sandbox rate; production accounts raise it (`SES_MAX_SEND_RATE`).
pub const DEFAULT_SES_SEND_RATE: f64 = 1.0;

/// `SES_MAX_SEND_RATE`: emails per second the notification batch may send.
pub fn ses_max_send_rate() -> Result<f64, ConfigError> {
    let rate: f64 = parsed("SES_MAX_SEND_RATE", DEFAULT_SES_SEND_RATE)?;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(ConfigError::Invalid {
            name: "SES_MAX_SEND_RATE",
            reason: "it must be a positive number of emails per second".into(),
        });
    }
    Ok(rate)
}

/// `NOTIFY_QUEUE_URL`: the notification batch's work queue.
/// `LIFECYCLE_QUEUE_URL`: the steps of exports and erasures (`crate::lifecycle`).
pub fn lifecycle_queue(sdk: &SdkConfig) -> Result<messaging_aws::WorkQueue, ConfigError> {
    Ok(messaging_aws::WorkQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        required("LIFECYCLE_QUEUE_URL")?,
    ))
}

pub fn notify_queue(sdk: &SdkConfig) -> Result<messaging_aws::WorkQueue, ConfigError> {
    Ok(messaging_aws::WorkQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        required("NOTIFY_QUEUE_URL")?,
    ))
}

/// `NOTIFY_WORKERS`: notification workers that may run at once (default 2).
pub fn notify_workers() -> Result<usize, ConfigError> {
    let workers: usize = parsed("NOTIFY_WORKERS", 2)?;
    if workers == 0 || workers > 1000 {
        return Err(ConfigError::Invalid {
            name: "NOTIFY_WORKERS",
            reason: "must be 1 to 1000".into(),
        });
    }
    Ok(workers)
}

/// `RATE_LIMITS`: the default rate limits as JSON (`{"userSendsPerMinute": 60, …}`, fields
/// of `messaging_core::limits::RateLimits`; unset ones keep their defaults). Tenants an
/// operator gave their own keep theirs.
pub fn rate_limits() -> Result<messaging_core::limits::RateLimits, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "RATE_LIMITS",
        reason,
    };
    match std::env::var("RATE_LIMITS") {
        Ok(text) if !text.trim().is_empty() => {
            let limits: messaging_core::limits::RateLimits =
                serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            limits.validate().map_err(invalid)?;
            Ok(limits)
        }
        _ => Ok(Default::default()),
    }
}

/// `SMS_ENABLED`: whether notification text messages are sent (`true` / `false`, default false:
/// the template grants SNS publishing to phone numbers only when its `EnableSms` is true).
pub fn sms_enabled() -> Result<bool, ConfigError> {
    parsed("SMS_ENABLED", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_started_read_runs_before_it_is_awaited_and_gives_its_value() {
        let (began, seen) = tokio::sync::oneshot::channel();
        let read = start(async move {
            began.send(()).expect("the test waits for this");
            Ok(42)
        });
        // Nothing has polled `read`: the read still began, on its own task.
        seen.await.expect("the started read ran");
        assert_eq!(read.await.expect("the read's value"), 42);
    }

    #[tokio::test]
    async fn a_started_read_gives_its_error_as_it_is() {
        let read = start(async { Err::<(), _>(ConfigError::Missing("CURSOR_SECRET")) });
        assert!(matches!(
            read.await,
            Err(ConfigError::Missing("CURSOR_SECRET"))
        ));
    }

    #[tokio::test]
    #[should_panic(expected = "the read's own panic")]
    async fn a_started_read_that_panics_panics_its_caller() {
        let read = start(async {
            if std::env::var_os("PATH").is_some() {
                panic!("the read's own panic");
            }
            Ok(())
        });
        let _ = read.await;
    }
}
