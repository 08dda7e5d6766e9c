//! The shared write step of every upload (PutObject, UploadPart, copies):
//! what the body is checked against (Content-MD5, `x-amz-checksum-*`), the
//! catalog tags stored with a blob, the segment a write produced, and
//! streaming a body to the backend a plan names, aborting the intent on any
//! failure so nothing becomes visible.

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use s3s::TrailingHeaders;
use s3s::{S3Result, StdError, s3_error};
use strata_core::blobtags::{self, BlobFacts, BlobRole, Tags};
use strata_core::{ObjectMeta, Segment, WritePlan};

use super::StrataS3;
use crate::checksum::{Algo, decode_content_md5};
use crate::errors::from_upload;
use crate::pipeline::{Digests, Expect, verify};
use strata_backend::sealed::put_blob;

/// The checksum fields every upload input carries.
pub struct DeclaredChecksums<'a> {
    pub crc32: Option<&'a String>,
    pub crc32c: Option<&'a String>,
    pub crc64nvme: Option<&'a String>,
    pub sha1: Option<&'a String>,
    pub sha256: Option<&'a String>,
}

/// What a write creates: an object version or one part of an upload.
pub enum Target<'a> {
    Object {
        bucket: &'a str,
        key: &'a str,
    },
    Part {
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        part_number: u32,
    },
}

impl Target<'_> {
    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        match self {
            Target::Object { bucket, .. } | Target::Part { bucket, .. } => bucket,
        }
    }

    /// The object key (of the upload, for a part).
    pub fn key(&self) -> &str {
        match self {
            Target::Object { key, .. } | Target::Part { key, .. } => key,
        }
    }

    /// The blob role recorded in the blob's tags.
    pub fn role(&self) -> BlobRole {
        match self {
            Target::Object { .. } => BlobRole::Object,
            Target::Part {
                upload_id, part_number, ..
            } => BlobRole::Part {
                upload_id: (*upload_id).to_owned(),
                part_number: *part_number,
            },
        }
    }
}

/// Builds what the body will be checked against from the request.
pub fn expectations(
    content_md5: Option<&String>,
    declared: DeclaredChecksums<'_>,
    headers: &HeaderMap,
    trailers: Option<TrailingHeaders>,
) -> S3Result<Expect> {
    let md5 = match content_md5 {
        None => None,
        Some(v) => Some(decode_content_md5(v).ok_or_else(|| s3_error!(InvalidDigest))?),
    };
    let given = [
        (Algo::Crc32, declared.crc32),
        (Algo::Crc32c, declared.crc32c),
        (Algo::Crc64Nvme, declared.crc64nvme),
        (Algo::Sha1, declared.sha1),
        (Algo::Sha256, declared.sha256),
    ];
    let mut checksum = None;
    for (algo, v) in given {
        if let Some(v) = v {
            if checksum.is_some() {
                return Err(s3_error!(InvalidRequest, "Expecting a single x-amz-checksum- header."));
            }
            checksum = Some((algo, v.clone()));
        }
    }
    let trailer_algo = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("x-amz-checksum-"))
        .map(|name| Algo::parse(name).ok_or_else(|| s3_error!(InvalidRequest, "Unsupported trailer checksum.")))
        .transpose()?;
    let trailer = match (checksum.is_some(), trailer_algo, trailers) {
        (false, Some(algo), Some(t)) => Some((algo, t)),
        (false, Some(_), None) => {
            return Err(s3_error!(
                InvalidRequest,
                "x-amz-trailer requires an aws-chunked body with trailers."
            ));
        }
        _ => None,
    };
    let length = headers
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok(Expect {
        md5,
        checksum,
        trailer,
        length,
    })
}

/// The catalog facts stored with a blob. `size` and `etag` are recorded when
/// they are known before the bytes are sent (a declared length, a Content-MD5).
pub fn tags(plan: &WritePlan, bucket: &str, key: &str, role: BlobRole, meta: &ObjectMeta, expect: &Expect) -> Tags {
    let mut meta = meta.clone();
    meta.size = expect.length.unwrap_or(meta.size);
    if let Some(md5) = expect.md5 {
        meta.etag = hex::encode(md5);
    }
    tags_with(plan, bucket, key, role, &meta)
}

/// The catalog facts stored with a blob whose `meta` already carries the
/// size and ETag that are known (e.g. from a spooled, verified body).
pub fn tags_with(plan: &WritePlan, bucket: &str, key: &str, role: BlobRole, meta: &ObjectMeta) -> Tags {
    if plan.cipher.is_some() {
        // A sealed blob tells its backend nothing about the object: no
        // bucket, key, headers, metadata, size or ETag. (The reaper drops
        // such blobs rather than promoting them.)
        return blobtags::encode(&BlobFacts {
            bucket: String::new(),
            key: String::new(),
            object_id: plan.object_id.clone(),
            role,
            meta: ObjectMeta::default(),
            codec: "aes256-gcm".into(),
        });
    }
    blobtags::encode(&BlobFacts {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        object_id: plan.object_id.clone(),
        role,
        meta: meta.clone(),
        codec: "none".into(),
    })
}

/// The segment a write under `plan` produced: its plaintext length and
/// SHA-256, and the stored form of its key.
pub fn segment(plan: &WritePlan, d: &Digests) -> Segment {
    Segment {
        backend_id: plan.backend_id.clone(),
        backend_key: plan.backend_key.clone(),
        length: d.size,
        sha256: Some(d.sha256_hex.clone()),
        cipher: plan.cipher.as_ref().map(strata_core::BlobKey::stored),
        ..Default::default()
    }
}

impl StrataS3 {
    /// Streams a body to the backend a plan names and returns its verified
    /// digests and segment. On any failure the intent is aborted and nothing
    /// becomes visible.
    pub(super) async fn write_body<S>(
        &self,
        plan: &WritePlan,
        tags: &Tags,
        body: S,
        expect: Expect,
    ) -> S3Result<(Digests, Segment)>
    where
        S: Stream<Item = Result<Bytes, StdError>> + Unpin + Send + Sync + 'static,
    {
        let Some(backend) = self.backends.get(&plan.backend_id).cloned() else {
            self.abort(plan).await;
            tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
            return Err(s3_error!(InternalError));
        };
        let (stream, slot) = verify(body, expect);
        let put = put_blob(
            &*backend,
            &plan.backend_key,
            tags,
            Box::pin(stream),
            plan.cipher.as_ref(),
        );
        if let Err(e) = put.await {
            self.abort(plan).await;
            return Err(from_upload(e));
        }
        let digests = slot.lock().expect("digest slot").take();
        let Some(digests) = digests else {
            self.abort(plan).await;
            return Err(s3_error!(InternalError));
        };
        let segment = segment(plan, &digests);
        Ok((digests, segment))
    }

    /// Drops an intent after a failed write. If the bytes landed, the reaper
    /// (or the cleanup path) removes them; the catalog never points at them.
    pub(super) async fn abort(&self, plan: &WritePlan) {
        if let Some(b) = self.backends.get(&plan.backend_id)
            && let Err(e) = b.delete(&plan.backend_key).await
        {
            tracing::warn!(error = %e, key = %plan.backend_key, "could not remove bytes of an aborted write");
            return; // keep the intent so the reaper can resolve it
        }
        if let Err(e) = self.cp.abort_write(&plan.intent_id).await {
            tracing::warn!(error = %e, "could not drop the intent of an aborted write");
        }
    }
}
