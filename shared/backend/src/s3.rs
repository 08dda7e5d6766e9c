//! Object bytes in a bucket of an S3-compatible service, through `aws-sdk-s3`.
//! Keys are stored as `{prefix}{key}`.

mod client;
mod errors;
mod list;
mod upload;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use strata_core::config::{BackendConfig, CredentialSource};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

pub use client::SDK_ONLY_HEADERS;
use errors::{remote, status, transport};

use crate::{Backend, BackendError, BlobHead, BlobMeta, ByteStream};

/// Size of each part of a multipart upload, and the most a `put` buffers.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// The smallest part S3 accepts (except for the last one).
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;
/// The longest key S3 accepts.
const MAX_KEY_LEN: usize = 1024;
/// User-metadata keys Strata writes on backend objects (`x-amz-meta-strata-*`).
const META_PREFIX: &str = "strata-";

/// One bucket (and optional key prefix) on an S3-compatible service.
pub struct S3Backend {
    id: String,
    client: Client,
    endpoint: String,
    bucket: String,
    prefix: String,
    /// Where this backend sits in the config, e.g. `backends[1]`, for messages.
    field: String,
    credential_source: CredentialSource,
    unsigned_payload: bool,
    checksums: bool,
    part_size: usize,
}

impl S3Backend {
    /// Builds the backend from its `type: s3` config; `field` names it in
    /// messages (e.g. `backends[1]`). Makes no request: call [`Backend::check`].
    pub async fn from_config(config: &BackendConfig, field: &str) -> Result<S3Backend, String> {
        let BackendConfig::S3 {
            id,
            endpoint,
            region,
            bucket,
            prefix,
            force_path_style,
            credential_source,
            access_key_id,
            secret_access_key,
            unsigned_payload,
            disable_checksum,
            strip_sdk_headers,
            connect_timeout_secs,
            read_timeout_secs,
            max_attempts,
            limits: _,
            encryption: _,
        } = config
        else {
            return Err(format!("`{field}` is not an s3 backend"));
        };
        let settings = client::ClientSettings {
            endpoint,
            region,
            force_path_style: *force_path_style,
            credential_source: *credential_source,
            access_key_id: access_key_id.as_deref(),
            secret_access_key: secret_access_key.as_ref().map(|s| s.expose()),
            disable_checksum: *disable_checksum,
            strip_sdk_headers: *strip_sdk_headers,
            connect_timeout: Duration::from_secs(*connect_timeout_secs),
            read_timeout: Duration::from_secs(*read_timeout_secs),
            max_attempts: *max_attempts,
        };
        let client = client::build(&settings)
            .await
            .map_err(|e| format!("{e}; fix `{field}`"))?;
        let https = endpoint.starts_with("https://");
        Ok(S3Backend {
            id: id.clone(),
            client,
            endpoint: endpoint.clone(),
            bucket: bucket.clone(),
            prefix: prefix.clone().unwrap_or_default(),
            field: field.to_owned(),
            credential_source: *credential_source,
            unsigned_payload: unsigned_payload.unwrap_or(https),
            checksums: !*disable_checksum,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Changes the multipart part size (and so the memory one `put` holds).
    /// At least 5 MiB, S3's minimum for all but the last part.
    pub fn with_part_size(mut self, bytes: usize) -> S3Backend {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key an object is stored under in the bucket.
    pub fn object_key(&self, key: &str) -> Result<String, BackendError> {
        if key.is_empty() || key.chars().any(char::is_control) || self.prefix.len() + key.len() > MAX_KEY_LEN {
            return Err(BackendError::InvalidKey);
        }
        Ok(format!("{}{key}", self.prefix))
    }

    fn access_denied_hint(&self) -> String {
        match self.credential_source {
            CredentialSource::Static => format!(
                "the credentials are wrong or lack permission; check `{f}.access_key_id` and `{f}.secret_access_key`",
                f = self.field
            ),
            CredentialSource::DefaultChain => format!(
                "the credentials from the AWS default chain are wrong or lack permission; check the environment or profile, or set `{}.credential_source: static`",
                self.field
            ),
        }
    }
}

#[async_trait]
impl Backend for S3Backend {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put(&self, key: &str, meta: &BlobMeta, body: ByteStream) -> Result<u64, BackendError> {
        self.put_stream(key, meta, body).await
    }

    async fn get(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BackendError> {
        let object = self.object_key(key)?;
        if len == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let last = offset
            .checked_add(len - 1)
            .ok_or_else(|| BackendError::Remote(format!("range {offset}+{len} overflows")))?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(GetObjectError::NoSuchKey(_)) => BackendError::NotFound,
                _ if status(&e) == Some(404) => BackendError::NotFound,
                _ => remote("GetObject", &e, &self.endpoint, &self.field),
            })?;
        if offset > 0 && out.content_range.is_none() {
            return Err(BackendError::Remote(format!(
                "GetObject at {} ignored the Range header; this service cannot serve ranged reads",
                self.endpoint
            )));
        }
        // Never more than asked for, even from a service that ignores ranges.
        let reader = out.body.into_async_read().take(len);
        Ok(Box::pin(ReaderStream::with_capacity(reader, READ_CHUNK)))
    }

    async fn head(&self, key: &str) -> Result<BlobHead, BackendError> {
        let object = self.object_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(HeadObjectError::NotFound(_)) => BackendError::NotFound,
                _ if status(&e) == Some(404) => BackendError::NotFound,
                _ => remote("HeadObject", &e, &self.endpoint, &self.field),
            })?;
        let len = out.content_length.unwrap_or_default();
        let size = u64::try_from(len).map_err(|_| BackendError::Remote(format!("HeadObject returned size {len}")))?;
        let meta = (out.metadata.unwrap_or_default().into_iter())
            .filter_map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                k.strip_prefix(META_PREFIX)
                    .map(|k| (k.to_owned(), crate::meta::decode(&v)))
            })
            .collect();
        Ok(BlobHead { size, meta })
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        let object = self.object_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) && e.code() != Some("NoSuchBucket") => Ok(()),
            Err(e) => Err(remote("DeleteObject", &e, &self.endpoint, &self.field)),
        }
    }

    async fn list_page(&self, after: &str, limit: u32) -> Result<Vec<crate::ListedBlob>, BackendError> {
        self.list_blobs(after, limit).await
    }

    async fn check(&self) -> Result<(), BackendError> {
        let e = match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let (b, at, f) = (&self.bucket, &self.endpoint, &self.field);
        let msg = if let Some(m) = transport(&e, at, f) {
            m
        } else {
            match status(&e) {
                Some(404) => format!("bucket `{b}` not found at {at}; create it or fix `{f}.bucket`"),
                Some(403) => format!(
                    "access to bucket `{b}` at {at} denied (HTTP 403): {}",
                    self.access_denied_hint()
                ),
                Some(401) => format!("{at} refused the credentials (HTTP 401): {}", self.access_denied_hint()),
                Some(301 | 307 | 400) => {
                    let region = e
                        .raw_response()
                        .and_then(|r| r.headers().get("x-amz-bucket-region"))
                        .map(|r| format!(" (it is in `{r}`)"))
                        .unwrap_or_default();
                    format!(
                        "bucket `{b}` at {at} answered HTTP {} to HeadBucket; the region is probably wrong{region}: fix `{f}.region`, or `{f}.force_path_style`",
                        status(&e).unwrap_or_default()
                    )
                }
                _ => match remote("HeadBucket", &e, at, f) {
                    BackendError::Remote(m) => m,
                    other => other.to_string(),
                },
            }
        };
        Err(BackendError::Remote(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::config::Config;

    async fn from_yaml(endpoint: &str, extra: &str) -> S3Backend {
        let y = format!(
            "backends:\n- type: s3\n  id: b\n  endpoint: {endpoint}\n  bucket: bkt\n  access_key_id: AK\n  secret_access_key: SK\n{extra}"
        );
        let c = Config::from_yaml(&y).unwrap();
        S3Backend::from_config(&c.backends[0], "backends[0]").await.unwrap()
    }

    #[tokio::test]
    async fn unsigned_payload_defaults_to_on_for_https_only() {
        assert!(from_yaml("https://s3.example.com", "").await.unsigned_payload);
        assert!(!from_yaml("http://127.0.0.1:9000", "").await.unsigned_payload);
        assert!(
            !from_yaml("https://s3.example.com", "  unsigned_payload: false\n")
                .await
                .unsigned_payload
        );
        assert!(
            from_yaml("http://127.0.0.1:9000", "  unsigned_payload: true\n")
                .await
                .unsigned_payload
        );
    }

    #[tokio::test]
    async fn default_chain_builds_without_a_request() {
        let y = "backends:\n- {type: s3, id: b, endpoint: 'https://s3.example.com', bucket: bkt, credential_source: default_chain}\n";
        let c = Config::from_yaml(y).unwrap();
        let b = S3Backend::from_config(&c.backends[0], "backends[0]").await.unwrap();
        assert_eq!(b.credential_source, CredentialSource::DefaultChain);
        assert!(b.access_denied_hint().contains("default chain"));
    }

    #[tokio::test]
    async fn keys_get_the_prefix_and_bad_keys_are_refused() {
        let b = from_yaml("http://127.0.0.1:9000", "  prefix: strata/\n").await;
        assert_eq!(b.object_key("abc").unwrap(), "strata/abc");
        for bad in ["", "a\nb", &"x".repeat(1020)] {
            assert!(matches!(b.object_key(bad), Err(BackendError::InvalidKey)), "{bad:?}");
        }
        assert!(matches!(
            b.get("", 0, 0).await.map(|_| ()),
            Err(BackendError::InvalidKey)
        ));
        let local = Config::from_yaml("backends:\n- {type: local, id: l, path: /x}\n").unwrap();
        assert!(S3Backend::from_config(&local.backends[0], "backends[0]").await.is_err());
    }
}
