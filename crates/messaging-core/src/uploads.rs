//! The files bucket's notifications, as S3 sends them to the uploads queue (an SQS message
//! body per notification): which objects were created. Pure, so it is fuzzed
//! (`fuzz/fuzz_targets/s3_notification.rs`): the bucket's notifications are S3's, but the
//! object keys in them are as clients uploaded them.

use serde::Deserialize;

use crate::encoding::form_decode;

/// Most records one notification may carry (S3 sends one).
pub const MAX_NOTIFICATION_RECORDS: usize = 100;

/// An object created in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The object's key, decoded (S3 form-encodes it in notifications).
    pub key: String,
    pub size: u64,
    pub version_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
    /// `s3:TestEvent`: sent once when the notification is configured.
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    event_name: String,
    s3: Entity,
}

#[derive(Deserialize)]
struct Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    version_id: Option<String>,
}

/// The objects a notification says were created (none for S3's test event and for other
/// event kinds), or why it is not one.
pub fn parse_s3_notification(body: &str) -> Result<Vec<ObjectCreated>, String> {
    let notification: Notification =
        serde_json::from_str(body).map_err(|e| format!("not an S3 notification: {e}"))?;
    if notification.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if notification.records.len() > MAX_NOTIFICATION_RECORDS {
        return Err(format!(
            "{} records; an S3 notification carries one",
            notification.records.len()
        ));
    }
    Ok(notification
        .records
        .into_iter()
        .filter(|r| r.event_name.starts_with("ObjectCreated:"))
        .map(|r| ObjectCreated {
            bucket: r.s3.bucket.name,
            key: form_decode(&r.s3.object.key),
            size: r.s3.object.size,
            version_id: r.s3.object.version_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_objects_are_read_and_everything_else_is_not() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"files"},"object":{"key":"tenants/acme/files/f1","size":1234,"versionId":"v1"}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"files"},"object":{"key":"tenants/acme/files/f2"}}},
            {"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"files"},"object":{"key":"a+b%2Fc%zz"}}}]}"#;
        let created = parse_s3_notification(body).unwrap();
        assert_eq!(created.len(), 2);
        assert_eq!(created[0].key, "tenants/acme/files/f1");
        assert_eq!(
            (created[0].size, created[0].version_id.as_deref()),
            (1234, Some("v1"))
        );
        assert_eq!(created[1].key, "a b/c%zz");
        assert_eq!(
            parse_s3_notification(
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"files"}"#
            ),
            Ok(Vec::new())
        );
        assert!(parse_s3_notification("3").is_err() && parse_s3_notification("not json").is_err());
        assert!(parse_s3_notification(r#"{"Records":[{"s3":{}}]}"#).is_err());
    }
}
