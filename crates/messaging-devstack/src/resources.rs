//! The template's stateful resources on an emulator (table, queues, files bucket, a verified
//! SES sender), and the functions' parts wired to them: what `stackpro-dev bootstrap`, the
//! tests and the benchmarks all start from.

use std::collections::BTreeMap;

use anyhow::Context;
use messaging_aws::{BroadcastQueue, FileStorage, MessagingTable, Secrets, WorkQueue};
use messaging_handlers::config;
use messaging_handlers::notify_batch::DEFAULT_WINDOW_MILLIS;
use messaging_handlers::services::Parts;

use crate::template::{
    configure_bucket_notifications, create_buckets, create_queues, create_table, Template,
};
use crate::tokens;

/// The portal address in local emails (`{clientId}` replaced).
pub const LOCAL_PORTAL_URL: &str = "https://{clientId}.stackpro.test";
/// The unsubscribe endpoint in local emails.
pub const LOCAL_UNSUBSCRIBE_URL: &str = "https://api.stackpro.test/unsubscribe";
/// Emails per second locally (moto has no sending quota).
pub const LOCAL_SEND_RATE: f64 = 50.0;
/// Notification workers locally (the gateway runs the queue's event source).
pub const LOCAL_NOTIFY_WORKERS: usize = 2;
/// `@connections` posts in flight per broadcast job locally.
pub const LOCAL_FANOUT_CONCURRENCY: usize = 16;

/// The names of one copy of the stack's resources on an emulator.
#[derive(Debug, Clone)]
pub struct LocalResources {
    pub table_name: String,
    /// Queue URLs by logical id (`BroadcastQueue`, `BroadcastDeadLetterQueue`).
    pub queues: BTreeMap<String, String>,
    pub bucket: String,
    /// The verified SES identity notification emails come from.
    pub sender: String,
    /// The template's secrets by logical id: their ARNs, holding the local values.
    pub secrets: BTreeMap<String, String>,
}

/// The local value of each of the template's secrets (the deployed stack generates the signing
/// secret and stores `JwtVerificationKey`).
pub fn local_secret_value(logical_id: &str) -> Option<&'static str> {
    match logical_id {
        "SigningSecret" => Some(tokens::LOCAL_CURSOR_SECRET),
        "JwtKeySecret" => Some(tokens::LOCAL_SECRET),
        _ => None,
    }
}

impl LocalResources {
    /// Creates the template's table, queues, files bucket and secrets as `{prefix}-…`, and
    /// verifies `sender` with SES (which refuses to send from an unverified identity, moto too).
    pub async fn create(
        sdk: &aws_config::SdkConfig,
        template: &Template,
        prefix: &str,
        sender: &str,
    ) -> anyhow::Result<Self> {
        let table_name = format!("{prefix}-messaging");
        create_table(
            &aws_sdk_dynamodb::Client::new(sdk),
            &template.table()?,
            &table_name,
        )
        .await?;
        let queues =
            create_queues(&aws_sdk_sqs::Client::new(sdk), &template.queues()?, prefix).await?;
        // Path-style, as FileStorage signs its URLs when an endpoint is configured.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        );
        let bucket_definitions = template.buckets()?;
        let buckets = create_buckets(&s3, &bucket_definitions, prefix).await?;
        configure_bucket_notifications(
            &s3,
            &aws_sdk_sqs::Client::new(sdk),
            &bucket_definitions,
            &buckets,
            &queues,
        )
        .await
        .context("the buckets' notifications")?;
        aws_sdk_sesv2::Client::new(sdk)
            .create_email_identity()
            .email_identity(sender)
            .send()
            .await
            .context("verifying the SES sender")?;
        let secrets_manager = Secrets::new(aws_sdk_secretsmanager::Client::new(sdk));
        let mut secrets = BTreeMap::new();
        for (id, _) in template.of_type("AWS::SecretsManager::Secret")? {
            let value = local_secret_value(&id)
                .with_context(|| format!("template.yaml's secret {id} has no local value"))?;
            let arn = secrets_manager
                .create(&format!("{prefix}-{id}"), value)
                .await
                .with_context(|| format!("creating the secret {id}"))?;
            secrets.insert(id, arn);
        }
        Ok(Self {
            table_name,
            queues,
            bucket: buckets
                .get("FilesBucket")
                .cloned()
                .context("template.yaml has no FilesBucket")?,
            sender: sender.to_owned(),
            secrets,
        })
    }

    /// The ARN of the table's stream (`None` if the template gives it none).
    pub async fn stream_arn(&self, sdk: &aws_config::SdkConfig) -> anyhow::Result<Option<String>> {
        table_stream_arn(sdk, &self.table_name).await
    }

    /// The URL of the queue with this logical id.
    pub fn queue_url(&self, logical_id: &str) -> anyhow::Result<&str> {
        self.queues
            .get(logical_id)
            .map(String::as_str)
            .with_context(|| format!("template.yaml has no queue {logical_id}"))
    }

    /// The ARN of the secret with this logical id.
    pub fn secret_arn(&self, logical_id: &str) -> anyhow::Result<&str> {
        self.secrets
            .get(logical_id)
            .map(String::as_str)
            .with_context(|| format!("template.yaml has no secret {logical_id}"))
    }

    /// Every function's parts on these resources: the local token verifier and signer,
    /// `@connections` at `connections_endpoint`, and the local settings above.
    pub fn parts(
        &self,
        sdk: &aws_config::SdkConfig,
        connections_endpoint: &str,
    ) -> anyhow::Result<Parts> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        Ok(Parts {
            table: MessagingTable::new(aws_sdk_dynamodb::Client::new(sdk), &self.table_name),
            queue: BroadcastQueue::new(sqs.clone(), self.queue_url("BroadcastQueue")?),
            dead_letters: BroadcastQueue::new(sqs, self.queue_url("BroadcastDeadLetterQueue")?),
            connections: config::connections_api_at(sdk, connections_endpoint)?,
            storage: FileStorage::new(sdk, &self.bucket),
            objects: messaging_aws::Objects::new(sdk, &self.bucket),
            signer: tokens::local_cursor_signer(),
            verifier: tokens::local_verifier()?.into(),
            fanout_concurrency: LOCAL_FANOUT_CONCURRENCY,
            direct_fanout: config::DEFAULT_DIRECT_FANOUT,
            mailer: config::mailer_from(sdk, &self.sender),
            sns: config::sns(sdk),
            gauges: config::gauges(sdk),
            portal_url: LOCAL_PORTAL_URL.into(),
            unsubscribe_url: LOCAL_UNSUBSCRIBE_URL.into(),
            max_send_rate: LOCAL_SEND_RATE,
            sms_enabled: true,
            window_millis: DEFAULT_WINDOW_MILLIS,
            rate_limits: Default::default(),
            notify_queue: WorkQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                self.queue_url("NotifyQueue")?,
            ),
            notify_workers: LOCAL_NOTIFY_WORKERS,
            lifecycle_queue: WorkQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                self.queue_url("LifecycleQueue")?,
            ),
        })
    }
}

/// The ARN of `table`'s stream on the emulator (`None` if it has none).
pub async fn table_stream_arn(
    sdk: &aws_config::SdkConfig,
    table: &str,
) -> anyhow::Result<Option<String>> {
    let described = aws_sdk_dynamodb::Client::new(sdk)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .with_context(|| format!("describing the table {table}"))?;
    Ok(described.table.and_then(|t| t.latest_stream_arn))
}
