//! The local stack: what `template.yaml` deploys to AWS, recreated on an emulator (moto) from
//! the template's own definitions, so local and deployed resources cannot drift apart.

pub mod event_source;
pub mod resources;
pub mod stream_source;
pub mod template;
pub mod tokens;

pub use resources::LocalResources;
pub use template::{
    PolicyResource, PolicyStatement, QueueDefinition, ScheduleDefinition, SqsEventSourceDefinition,
    StreamEventSourceDefinition, TableDefinition, Template, TemplateError, WebSocketApi,
    WebSocketRoute,
};

/// The verified SES identity the local stack sends notification emails from.
pub const LOCAL_SENDER: &str = "notifications@stackpro.local";

/// SDK configuration for an emulator at `endpoint`: fixed region and dummy credentials, so
/// the SDK neither needs a profile nor probes the (blocked) instance metadata endpoint.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_as(endpoint, "local", "local")
}

/// [`sdk_config`] signing with these credentials (an IAM user of the emulator's).
pub fn sdk_config_as(
    endpoint: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::{
        BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
    };
    aws_config::SdkConfig::builder()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "stackpro-local",
        )))
        .behavior_version(BehaviorVersion::latest())
        .timeout_config(local_timeouts())
        .build()
}

/// Looser than the functions' [`messaging_aws::timeouts`]: moto runs DynamoDB requests one at
/// a time, and under a loaded test run an attempt can wait its turn for seconds. Bounded all
/// the same, so nothing local ever waits forever; the fault tests use the production values.
fn local_timeouts() -> aws_config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(90))
        .build()
}
