//! The files bucket: presigned URLs only. Functions never read or write file bytes; clients
//! upload and download directly from S3 with a URL that names one object, one method and
//! expires in minutes.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use messaging_core::protocol::PresignedUrl;
use messaging_core::time::now_millis;

use crate::error::AwsError;

/// How long a presigned URL works.
pub const URL_LIFETIME: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone)]
pub struct FileStorage {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl FileStorage {
    /// Path-style addressing when an endpoint is configured (moto, other local S3s);
    /// virtual-hosted style against AWS.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn presigning() -> Result<PresigningConfig, AwsError> {
        PresigningConfig::expires_in(URL_LIFETIME)
            .map_err(|e| AwsError::Failed(format!("presigning config: {e}")))
    }

    fn url(method: &str, request: aws_sdk_s3::presigning::PresignedRequest) -> PresignedUrl {
        PresignedUrl {
            method: method.to_owned(),
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            expires_at: now_millis() + URL_LIFETIME.as_millis() as i64,
        }
    }

    /// A GET of `key` that downloads it under `file_name`.
    pub async fn download_url(&self, key: &str, file_name: &str) -> Result<PresignedUrl, AwsError> {
        let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(file_name));
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(disposition)
            .presigned(Self::presigning()?)
            .await
            .map_err(|e| AwsError::Failed(format!("presign GetObject: {e}")))?;
        Ok(Self::url("GET", request))
    }

    /// A PUT of `key` with exactly this content type and exactly `size` bytes (both headers
    /// signed, so S3 refuses another type or length: the upload is the size that was
    /// registered, never more).
    pub async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
    ) -> Result<PresignedUrl, AwsError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(i64::try_from(size).map_err(|_| {
                AwsError::Failed(format!("upload of {size} bytes is larger than S3 takes"))
            })?)
            .presigned(Self::presigning()?)
            .await
            .map_err(|e| AwsError::Failed(format!("presign PutObject: {e}")))?;
        Ok(Self::url("PUT", request))
    }
}

/// RFC 5987 encoding of a file name for `Content-Disposition`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_upload_url_signs_the_type_and_the_exact_length() {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("a", "b", None, None, "test"),
            ))
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let storage = super::FileStorage::new(&sdk, "bucket");
        let url = storage
            .upload_url("tenants/t/files/f", "application/pdf", 1234)
            .await
            .unwrap();
        assert_eq!(url.method, "PUT");
        assert_eq!(
            url.headers.get("content-length").map(String::as_str),
            Some("1234")
        );
        let signed = url
            .url
            .split("X-Amz-SignedHeaders=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap_or_default()
            .replace("%3B", ";");
        assert!(
            signed.split(';').any(|h| h == "content-length")
                && signed.split(';').any(|h| h == "content-type"),
            "signed headers: {signed}"
        );
    }

    #[test]
    fn file_names_are_encoded_for_content_disposition() {
        assert_eq!(
            super::percent_encode("Q3 report (final).pdf"),
            "Q3%20report%20%28final%29.pdf"
        );
        assert_eq!(
            super::percent_encode("naïve\"\r\n.txt"),
            "na%C3%AFve%22%0D%0A.txt"
        );
    }
}
