//! CopyObject: checks the source (its conditions, SSE-C opened with the
//! source key) and hands the write path a copy body, which reads it through
//! the normal read path (its copies in health order); the new object gets
//! the metadata copied or replaced and is re-sealed when asked.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::meta::{Conditions, Headers, check_key, etag, timestamp};
use super::sse;
use super::{StrataS3, conditional};
use crate::write::{Body, Sealing, Target, WriteRequest};

/// The source of a copy: bucket and key, never a version (no versioning yet).
pub(super) fn source_of(src: &CopySource) -> S3Result<(&str, &str)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id: None,
        } => Ok((bucket, key)),
        CopySource::Bucket { .. } => Err(s3_error!(NotImplemented, "Versioned copy sources are not supported.")),
        _ => Err(s3_error!(
            NotImplemented,
            "Access-point copy sources are not supported."
        )),
    }
}

impl StrataS3 {
    pub(super) async fn op_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let i = req.input;
        check_key(&i.key)?;
        super::object::no_sse(i.server_side_encryption.is_some() || i.ssekms_key_id.is_some())?;
        let sealing = sse::sealing(sse::sse_c_headers!(i))?;
        let (sb, sk) = source_of(&i.copy_source)?;
        let condition = conditional::condition_from_headers(&req.headers)?;
        let mut src = self.locate(sb, sk).await?;
        let source_key = sse::customer_key(sse::sse_c_headers!(copy_source i))?;
        sse::open_customer(&mut src, source_key.as_deref())?;
        Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        }
        .check(&src.meta, false)?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let reseal = matches!(sealing, Sealing::Customer(_)) || sse::customer_md5(&src).is_some();
        if !replace && !reseal && sb == i.bucket && sk == i.key {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let meta = if replace {
            Headers {
                content_type: i.content_type,
                content_encoding: i.content_encoding,
                content_disposition: i.content_disposition,
                content_language: i.content_language,
                cache_control: i.cache_control,
                expires: i.expires,
                metadata: i.metadata,
            }
            .into_meta()
        } else {
            let mut m = src.meta.clone();
            m.parts_count = 0;
            m
        };
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        let written = (self.write(WriteRequest {
            target: Target::object(&i.bucket, &i.key),
            meta,
            condition,
            sealing,
            body: Body::copy(&src, 0, src.meta.size),
        }))
        .await?;
        let result = CopyObjectResult {
            e_tag: Some(etag(&written.digests.md5_hex)),
            last_modified: Some(timestamp(super::meta::now_ms())),
            ..Default::default()
        };
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            sse_customer_algorithm,
            sse_customer_key_md5,
            ..Default::default()
        }))
    }
}
