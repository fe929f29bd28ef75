//! The files bucket: presigned URLs only. Functions never read or write file bytes; clients
//! upload and download directly from S3 with a URL that names one object, one method and
//! expires in minutes.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};

use messaging_core::protocol::PresignedUrl;
use messaging_core::time::now_millis;

use crate::error::AwsError;

/// How long a presigned URL works.
pub const URL_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Presigns S3 URLs with SigV4 directly (query-string signing, as the S3 SDK's presigner
/// does: the same URL for the same request and instant, which
/// `tests::urls_are_the_s3_sdks_to_the_byte` checks against it). The functions never call
/// S3 itself, so they carry no S3 client: it and its checksum tables were 1.5 MB of the
/// file-share binary (docs/performance.md, "Binaries").
#[derive(Debug, Clone)]
pub struct FileStorage {
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    /// `Some` locally (moto, another local S3): path-style URLs under it. `None`:
    /// virtual-hosted-style URLs at S3's regional endpoint.
    endpoint: Option<String>,
    bucket: String,
}

impl FileStorage {
    /// Path-style addressing when an endpoint is configured (moto, other local S3s);
    /// virtual-hosted style against AWS.
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        Self {
            credentials: sdk.credentials_provider(),
            region: sdk
                .region()
                .map(|r| r.as_ref().to_owned())
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: sdk
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_owned()),
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A GET of `key` that downloads it under `file_name`.
    pub async fn download_url(&self, key: &str, file_name: &str) -> Result<PresignedUrl, AwsError> {
        let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(file_name));
        self.presign(
            "GET",
            key,
            &[
                ("x-id", "GetObject"),
                ("response-content-disposition", disposition.as_str()),
            ],
            &[],
            SystemTime::now(),
        )
        .await
    }

    /// A GET of an image's preview (`key`: `preview_object_key`), shown inline.
    pub async fn preview_url(&self, key: &str) -> Result<PresignedUrl, AwsError> {
        self.presign("GET", key, &[("x-id", "GetObject")], &[], SystemTime::now())
            .await
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
        if i64::try_from(size).is_err() {
            return Err(AwsError::Failed(format!(
                "upload of {size} bytes is larger than S3 takes"
            )));
        }
        self.presign(
            "PUT",
            key,
            &[("x-id", "PutObject")],
            &[
                ("content-length", size.to_string()),
                ("content-type", content_type.to_owned()),
            ],
            SystemTime::now(),
        )
        .await
    }

    /// `method` on `key` with these query parameters (in this order, as the SDK writes them)
    /// and these headers, which the client must send as they are (they are signed), valid
    /// for [`URL_LIFETIME`] from `at`.
    async fn presign(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        at: SystemTime,
    ) -> Result<PresignedUrl, AwsError> {
        let credentials = self
            .credentials
            .as_ref()
            .ok_or_else(|| AwsError::Failed("presign: no credentials configured".into()))?
            .provide_credentials()
            .await
            .map_err(|e| AwsError::Failed(format!("presign: credentials: {e}")))?;
        let path: Vec<String> = key.split('/').map(percent_encode).collect();
        let (base, host) = match &self.endpoint {
            Some(endpoint) => (
                format!("{endpoint}/{}", percent_encode(&self.bucket)),
                endpoint.split("://").nth(1).unwrap_or(endpoint).to_owned(),
            ),
            None => {
                let host = format!("{}.s3.{}.amazonaws.com", self.bucket, self.region);
                (format!("https://{host}"), host)
            }
        };
        let mut url = format!("{base}/{}", path.join("/"));
        for (name, value) in query {
            push_param(&mut url, name, value);
        }
        let mut signed_headers = vec![("host", host.as_str())];
        signed_headers.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));

        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(URL_LIFETIME);
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(at)
            .settings(settings)
            .build()
            .map_err(presign_failed)?
            .into();
        let signable = SignableRequest::new(
            method,
            &url,
            signed_headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(presign_failed)?;
        let (instructions, _) = sign(signable, &params)
            .map_err(presign_failed)?
            .into_parts();
        for (name, value) in instructions.params() {
            push_param(&mut url, name, value);
        }
        let expires_at = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_else(|_| now_millis())
            + URL_LIFETIME.as_millis() as i64;
        Ok(PresignedUrl {
            method: method.to_owned(),
            url,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            expires_at,
        })
    }
}

fn presign_failed(e: impl std::fmt::Display) -> AwsError {
    AwsError::Failed(format!("presign: {e}"))
}

/// Appends `name=value` to `url`'s query, both encoded.
fn push_param(url: &mut String, name: &str, value: &str) {
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&percent_encode(name));
    url.push('=');
    url.push_str(&percent_encode(value));
}

/// Every byte but the unreserved characters (`A-Z a-z 0-9 - _ . ~`) as `%XX`: SigV4's URI
/// encoding, and RFC 5987's encoding of a file name for `Content-Disposition` (whose
/// attr-chars include these).
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

/// The files bucket's objects read and written by the one function that handles their bytes
/// (`image-preview`: the uploaded image in, its preview out). Every other function only
/// presigns ([`FileStorage`]).
#[derive(Debug, Clone)]
pub struct Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// What reading an object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Bytes(Vec<u8>),
    /// Larger than the caller reads: its size.
    TooLarge(u64),
    Missing,
}

impl Objects {
    /// Path-style addressing when an endpoint is configured (moto), as [`FileStorage`].
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
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

    /// `key`'s bytes if it is at most `max_bytes` long: at most `max_bytes + 1` are
    /// transferred (a ranged GET), whatever the object's size.
    pub async fn read_at_most(&self, key: &str, max_bytes: u64) -> Result<Read, AwsError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{max_bytes}"))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Ok(Read::Missing);
                }
                return Err(crate::error::classify("GetObject", e));
            }
        };
        // `Content-Range: bytes 0-N/TOTAL`: the object's whole size.
        let total = output
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok());
        if let Some(total) = total.filter(|t| *t > max_bytes) {
            return Ok(Read::TooLarge(total));
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| AwsError::Unavailable(format!("GetObject body: {e}")))?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Ok(Read::TooLarge(bytes.len() as u64));
        }
        Ok(Read::Bytes(bytes.to_vec()))
    }

    /// Writes `bytes` as `key`, served as `content_type`.
    pub async fn write(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control("private, max-age=300")
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| crate::error::classify("PutObject", e))?;
        Ok(())
    }

    /// Removes `key` (nothing there is fine).
    pub async fn remove(&self, key: &str) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| crate::error::classify("DeleteObject", e))?;
        Ok(())
    }

    /// Starts a multipart upload of `key` (`s3:PutObject`): its upload id.
    pub async fn start_upload(&self, key: &str, content_type: &str) -> Result<String, AwsError> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| crate::error::classify("CreateMultipartUpload", e))?;
        output
            .upload_id
            .ok_or_else(|| AwsError::Unavailable("CreateMultipartUpload: no upload id".into()))
    }

    /// Uploads part `number` (1-based; again under the same number replaces it:
    /// `s3:PutObject`): the part's ETag, which completing the upload names.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        bytes: Vec<u8>,
    ) -> Result<String, AwsError> {
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| crate::error::classify("UploadPart", e))?;
        output
            .e_tag
            .ok_or_else(|| AwsError::Unavailable("UploadPart: no ETag".into()))
    }

    /// Completes the upload with its parts' ETags, in part order (`s3:PutObject`; the
    /// caller kept the ETags, so no ListParts). Completing one that was completed already (a
    /// step run twice) finds no such upload, and is fine when the object is there.
    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), AwsError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let parts = etags
            .iter()
            .enumerate()
            .map(|(i, etag)| {
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(etag)
                    .build()
            })
            .collect();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    aws_sdk_s3::error::ProvideErrorMetadata::code(s) == Some("NoSuchUpload")
                }) =>
            {
                match self.exists(key).await? {
                    true => Ok(()),
                    false => Err(AwsError::Failed(format!(
                        "the upload of {key} is gone and the object is not there"
                    ))),
                }
            }
            Err(e) => Err(crate::error::classify("CompleteMultipartUpload", e)),
        }
    }

    /// Deletes every version (and delete marker) of the objects under `prefix` — only of
    /// `prefix` itself when `exact` — up to 1,000 a call (`s3:ListBucketVersions`,
    /// `s3:DeleteObjectVersion`): the bucket is versioned, and a plain delete would leave the
    /// bytes as a noncurrent version. Returns how many versions it deleted and whether there
    /// may be more.
    pub async fn delete_versions(
        &self,
        prefix: &str,
        exact: bool,
    ) -> Result<(u64, bool), AwsError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let listed = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1_000)
            .send()
            .await
            .map_err(|e| crate::error::classify("ListObjectVersions", e))?;
        let more = listed.is_truncated.unwrap_or(false);
        let versions = listed
            .versions
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.key, v.version_id))
            .chain(
                listed
                    .delete_markers
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| (m.key, m.version_id)),
            );
        let objects: Vec<ObjectIdentifier> = versions
            .filter_map(|(key, version)| {
                let key = key?;
                if exact && key != prefix {
                    return None;
                }
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version)
                    .build()
                    .ok()
            })
            .collect();
        if objects.is_empty() {
            return Ok((0, more));
        }
        let count = objects.len() as u64;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| AwsError::Failed(format!("DeleteObjects: {e}")))?;
        let output = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| crate::error::classify("DeleteObjects", e))?;
        if let Some(error) = output.errors.unwrap_or_default().first() {
            return Err(AwsError::Unavailable(format!(
                "DeleteObjects: {} ({})",
                error.key.as_deref().unwrap_or_default(),
                error.code.as_deref().unwrap_or_default()
            )));
        }
        Ok((count, more))
    }

    /// Whether no version of any object is left under `prefix` (`s3:ListBucketVersions`).
    pub async fn is_empty_under(&self, prefix: &str) -> Result<bool, AwsError> {
        let listed = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| crate::error::classify("ListObjectVersions", e))?;
        Ok(listed.versions.unwrap_or_default().is_empty()
            && listed.delete_markers.unwrap_or_default().is_empty())
    }

    /// Whether `key` is there (`s3:GetObject`, as HEAD).
    pub async fn exists(&self, key: &str) -> Result<bool, AwsError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(crate::error::classify("HeadObject", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    use aws_sdk_s3::presigning::PresigningConfig;
    use proptest::prelude::*;

    use super::{FileStorage, URL_LIFETIME};

    fn sdk(endpoint: Option<&str>, session_token: Option<&str>) -> aws_config::SdkConfig {
        let mut builder = aws_config::SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                session_token.map(str::to_owned),
                None,
                "test",
            )))
            .behavior_version(BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        builder.build()
    }

    /// The S3 SDK's own presigner, configured as this module was before it replaced it.
    fn sdk_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(sdk.endpoint_url().is_some())
                .build(),
        )
    }

    fn presigning(at: SystemTime) -> PresigningConfig {
        PresigningConfig::builder()
            .start_time(at)
            .expires_in(URL_LIFETIME)
            .build()
            .unwrap()
    }

    async fn both_uploads(
        sdk: &aws_config::SdkConfig,
        key: &str,
        content_type: &str,
        size: u64,
        at: SystemTime,
    ) -> (String, String) {
        let ours = FileStorage::new(sdk, "portal-files")
            .presign(
                "PUT",
                key,
                &[("x-id", "PutObject")],
                &[
                    ("content-length", size.to_string()),
                    ("content-type", content_type.to_owned()),
                ],
                at,
            )
            .await
            .unwrap();
        let theirs = sdk_client(sdk)
            .put_object()
            .bucket("portal-files")
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            .presigned(presigning(at))
            .await
            .unwrap();
        let headers: std::collections::BTreeMap<_, _> = theirs
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(ours.headers, headers.into_iter().collect());
        (ours.url, theirs.uri().to_owned())
    }

    async fn both_downloads(
        sdk: &aws_config::SdkConfig,
        key: &str,
        file_name: &str,
        at: SystemTime,
    ) -> (String, String) {
        let disposition = format!(
            "attachment; filename*=UTF-8''{}",
            super::percent_encode(file_name)
        );
        let ours = FileStorage::new(sdk, "portal-files")
            .presign(
                "GET",
                key,
                &[
                    ("x-id", "GetObject"),
                    ("response-content-disposition", disposition.as_str()),
                ],
                &[],
                at,
            )
            .await
            .unwrap();
        let theirs = sdk_client(sdk)
            .get_object()
            .bucket("portal-files")
            .key(key)
            .response_content_disposition(disposition)
            .presigned(presigning(at))
            .await
            .unwrap();
        (ours.url, theirs.uri().to_owned())
    }

    #[tokio::test]
    async fn urls_are_the_s3_sdks_to_the_byte() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        for (endpoint, token) in [
            (None, None),
            (None, Some("session/token+=")),
            (Some("http://127.0.0.1:5000"), None),
        ] {
            let sdk = sdk(endpoint, token);
            let (ours, theirs) =
                both_uploads(&sdk, "tenants/acme/files/f-1", "application/pdf", 1234, at).await;
            assert_eq!(ours, theirs);
            let (ours, theirs) = both_downloads(
                &sdk,
                "tenants/acme/files/f-1",
                "Q3 report (final) é.pdf",
                at,
            )
            .await;
            assert_eq!(ours, theirs);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any key, type and name a caller can reach this with (they are validated before)
        /// and more: the URL is still the SDK's.
        #[test]
        fn any_key_type_and_name_sign_as_the_sdk_does(
            key in "[a-zA-Z0-9/_.~ -]{1,40}",
            content_type in "[a-z]{1,10}/[a-z0-9.+-]{1,20}",
            name in "\\PC{1,30}",
            size in 0u64..10_000_000_000,
        ) {
            let key = format!("tenants/t/files/{}", key.trim_matches('/'));
            let at = SystemTime::now();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let sdk = sdk(None, Some("token"));
                let (ours, theirs) = both_uploads(&sdk, &key, &content_type, size, at).await;
                prop_assert_eq!(ours, theirs);
                let (ours, theirs) = both_downloads(&sdk, &key, &name, at).await;
                prop_assert_eq!(ours, theirs);
                Ok(())
            })?;
        }
    }

    #[tokio::test]
    async fn an_upload_url_signs_the_type_and_the_exact_length() {
        let storage = FileStorage::new(&sdk(None, None), "bucket");
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
