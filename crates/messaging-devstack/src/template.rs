//! Creates the resources `template.yaml` defines (read by `messaging-template`) on an emulator.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

pub use messaging_template::*;

/// Creates the table as the template defines it, under `name`.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    definition: &TableDefinition,
    name: &str,
) -> anyhow::Result<()> {
    let key = |(attr, kind): &(String, String)| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(KeyType::from(kind.as_str()))
            .build()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attr, kind) in &definition.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    for element in &definition.key_schema {
        request = request.key_schema(key(element)?);
    }
    for index in &definition.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(index.projection.as_str()))
                    .build(),
            );
        for element in &index.key_schema {
            gsi = gsi.key_schema(key(element)?);
        }
        request = request.global_secondary_indexes(gsi.build()?);
    }
    if let Some(view) = &definition.stream_view_type {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()?,
        );
    }
    request.send().await?;
    if let Some(attribute) = &definition.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// Creates every queue of the template, named `{prefix}-{LogicalId}` (`.fifo` for FIFO queues), wiring redrive policies
/// to the created dead-letter queues. Returns queue URLs by logical id.
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    queues: &[QueueDefinition],
    prefix: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut urls = BTreeMap::new();
    let mut arns = BTreeMap::new();
    for queue in queues {
        let suffix = if queue.is_fifo() { ".fifo" } else { "" };
        let mut request = client
            .create_queue()
            .queue_name(format!("{prefix}-{}{suffix}", queue.logical_id));
        for (name, value) in &queue.attributes {
            request = request.attributes(QueueAttributeName::from(name.as_str()), value);
        }
        if let Some((dlq, max_receive)) = &queue.redrive {
            let arn = arns.get(dlq).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} redrives to {dlq}, which is not defined before it",
                    queue.logical_id
                )
            })?;
            let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receive.to_string() });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await?
            .queue_url
            .ok_or_else(|| anyhow::anyhow!("CreateQueue returned no URL"))?;
        let arn = queue_arn(client, &url).await?;
        arns.insert(queue.logical_id.clone(), arn);
        urls.insert(queue.logical_id.clone(), url);
    }
    Ok(urls)
}

/// Creates the template's buckets (with their CORS methods, from any origin). Returns
/// logical id → bucket name.
pub async fn create_buckets(
    client: &aws_sdk_s3::Client,
    buckets: &[BucketDefinition],
    prefix: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    let mut names = BTreeMap::new();
    for bucket in buckets {
        let name = bucket.local_name(prefix);
        client.create_bucket().bucket(&name).send().await?;
        if !bucket.cors_methods.is_empty() {
            let rule = CorsRule::builder()
                .set_allowed_methods(Some(bucket.cors_methods.clone()))
                .allowed_origins("*")
                .allowed_headers("*")
                .max_age_seconds(3600)
                .build()?;
            client
                .put_bucket_cors()
                .bucket(&name)
                .cors_configuration(CorsConfiguration::builder().cors_rules(rule).build()?)
                .send()
                .await?;
        }
        names.insert(bucket.logical_id.clone(), name);
    }
    Ok(names)
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow::anyhow!("queue {url} has no ARN"))
}

/// Gives the created buckets the template's notifications to queues (moto sends them to its
/// SQS as S3 does): `names` from [`create_buckets`], `queues` (URLs) from [`create_queues`].
pub async fn configure_bucket_notifications(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    buckets: &[BucketDefinition],
    names: &BTreeMap<String, String>,
    queues: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    for bucket in buckets {
        if bucket.queue_notifications.is_empty() {
            continue;
        }
        let mut configuration = NotificationConfiguration::builder();
        for notification in &bucket.queue_notifications {
            let url = queues.get(&notification.queue).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} notifies {}, which is no queue",
                    bucket.logical_id,
                    notification.queue
                )
            })?;
            let arn = queue_arn(sqs, url).await?;
            let mut queue = QueueConfiguration::builder()
                .queue_arn(arn)
                .events(Event::from(notification.event.as_str()));
            if let Some(prefix) = &notification.prefix {
                queue = queue.filter(
                    NotificationConfigurationFilter::builder()
                        .key(
                            S3KeyFilter::builder()
                                .filter_rules(
                                    FilterRule::builder()
                                        .name(FilterRuleName::Prefix)
                                        .value(prefix)
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                );
            }
            configuration = configuration.queue_configurations(queue.build()?);
        }
        s3.put_bucket_notification_configuration()
            .bucket(&names[&bucket.logical_id])
            .notification_configuration(configuration.build())
            .send()
            .await?;
    }
    Ok(())
}
