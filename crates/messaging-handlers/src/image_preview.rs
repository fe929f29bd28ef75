//! The `image-preview` function: the files bucket tells the uploads queue of every object
//! created under `tenants/` (S3 event notifications); for each uploaded image this function
//! reads the object (at most `MAX_SOURCE_BYTES`, a ranged GET), makes its preview with
//! `messaging_images::preview` (format from the bytes, dimensions from the header before any
//! pixel, decoding under allocation limits) and records the outcome on the file:
//! `image: {preview: "ready", width, height}` with the JPEG at `previews/{t}/{f}.jpg`
//! (outside `tenants/`, so writing it notifies nothing), or `image: {preview: "refused",
//! reason}` and no preview object (an earlier version's is removed). Readers then get the preview through
//! GET_DOWNLOAD_URL `variant: "preview"`, under the file's `read` permission.
//!
//! Records are independent: a failure worth retrying (S3, DynamoDB) fails that record only
//! (`batchItemFailures`), and SQS hands it over again, then to the dead-letter queue. Anything
//! else (another bucket, a key that is not a file's, a file no longer registered, a type
//! without previews) is logged and dropped: it would fail the same way every time.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::{info, warn};

use messaging_aws::{
    file_of_object_key, preview_object_key, AwsError, MessagingTable, Objects, Read,
};
use messaging_core::files::{is_previewed, ImageInfo, PreviewStatus};
use messaging_core::uploads::{parse_s3_notification, ObjectCreated};
use messaging_images::{preview, Refused, MAX_SOURCE_BYTES};

use crate::config::{self, ConfigError};

#[derive(Clone)]
pub struct ImagePreviewService {
    pub table: MessagingTable,
    pub objects: Objects,
}

impl ImagePreviewService {
    /// As the Lambda builds it: `TABLE_NAME`, `FILES_BUCKET`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            objects: Objects::new(sdk, config::required("FILES_BUCKET")?),
        })
    }
}

/// What one uploaded object came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A preview stored: the image's size.
    Previewed { width: u32, height: u32 },
    /// No preview, for this reason (recorded on the file).
    Refused(String),
    /// Not ours to preview (logged): another bucket, a key that is no file's, a file no longer
    /// registered, a type without previews, an object already replaced.
    Skipped(&'static str),
}

/// Handles one batch of the uploads queue.
pub async fn handle(service: &ImagePreviewService, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let objects = match parse_s3_notification(record.body.as_deref().unwrap_or_default()) {
            Ok(objects) => objects,
            Err(e) => {
                warn!(message = %id, error = %e, "not an S3 notification; dropped");
                continue;
            }
        };
        for object in objects {
            match preview_object(service, &object).await {
                Ok(outcome) => info!(key = %object.key, ?outcome, "uploaded object looked at"),
                Err(e) => {
                    warn!(key = %object.key, error = %e, "preview failed; the record is handed over again");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id.clone();
                    failures.push(failure);
                    break;
                }
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Looks at one created object; `Err` only for failures worth retrying.
pub async fn preview_object(
    service: &ImagePreviewService,
    object: &ObjectCreated,
) -> Result<Outcome, AwsError> {
    if object.bucket != service.objects.bucket() {
        return Ok(Outcome::Skipped("another bucket"));
    }
    let Some((tenant, file)) = file_of_object_key(&object.key) else {
        return Ok(Outcome::Skipped("not a file's object key"));
    };
    let Some(stored) = service.table.file(&tenant, &file).await? else {
        return Ok(Outcome::Skipped("no such file registered"));
    };
    let mime = stored.view.mime_type.clone();
    if !is_previewed(&mime) {
        return Ok(Outcome::Skipped("a type without previews"));
    }
    let preview_key = preview_object_key(&tenant, &file);
    let made = if object.size > MAX_SOURCE_BYTES {
        Err(Refused::TooLarge { size: object.size })
    } else {
        match service
            .objects
            .read_at_most(&object.key, MAX_SOURCE_BYTES)
            .await?
        {
            Read::Missing => return Ok(Outcome::Skipped("the object is gone")),
            Read::TooLarge(size) => Err(Refused::TooLarge { size }),
            // Decoding is CPU work: off the runtime's threads.
            Read::Bytes(bytes) => tokio::task::spawn_blocking(move || preview(&bytes, &mime))
                .await
                .map_err(|e| AwsError::Failed(format!("preview task: {e}")))?,
        }
    };
    let (info, outcome) = match made {
        Ok(made) => {
            service
                .objects
                .write(&preview_key, made.jpeg, "image/jpeg")
                .await?;
            (
                ImageInfo {
                    preview: PreviewStatus::Ready,
                    width: Some(made.width),
                    height: Some(made.height),
                    reason: None,
                },
                Outcome::Previewed {
                    width: made.width,
                    height: made.height,
                },
            )
        }
        Err(refused) => {
            // Nothing of this upload is shown: an earlier version's preview goes too.
            service.objects.remove(&preview_key).await?;
            // A refused image's header is not trusted for its size either.
            let reason = refused.to_string();
            (
                ImageInfo {
                    preview: PreviewStatus::Refused,
                    width: None,
                    height: None,
                    reason: Some(reason.clone()),
                },
                Outcome::Refused(reason),
            )
        }
    };
    if !service.table.set_image_info(&tenant, &file, &info).await? {
        return Ok(Outcome::Skipped("the file was removed meanwhile"));
    }
    Ok(outcome)
}
