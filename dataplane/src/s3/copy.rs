//! CopyObject: reads the source through the normal read path (its copies in
//! health order, SSE-C opened with the source key) and writes it as a new
//! object, with the metadata copied or replaced and re-sealed when asked.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::Commit;

use super::meta::{Conditions, Headers, check_key, etag, timestamp};
use super::sse;
use super::writer::Target;
use super::{StrataS3, conditional};
use crate::errors::from_cp;

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
        let reseal = matches!(sealing, sse::Sealing::Customer(_)) || sse::customer_md5(&src).is_some();
        if !replace && !reseal && sb == i.bucket && sk == i.key {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let mut meta = if replace {
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
        let mut tag_meta = meta.clone();
        tag_meta.size = src.meta.size;
        tag_meta.etag = src.meta.etag.clone();
        let target = Target::Object {
            bucket: &i.bucket,
            key: &i.key,
        };
        let (plan, digests, segment, copies) = match &self.delta {
            // A copy into a delta-enabled place is encoded like any PUT.
            Some(engine) if !matches!(sealing, super::sse::Sealing::Customer(_)) => {
                let plan = self
                    .first_plan(&target, Some(src.meta.size), &sealing)
                    .await
                    .map_err(from_cp)?;
                if plan.delta.is_none() && self.quorum_applies(&i.bucket, &plan) {
                    self.copy_with_quorum(&target, &src, &tag_meta, plan, &sealing).await?
                } else if plan.delta.is_some() {
                    let body = self.read_range(&src, 0, src.meta.size)?;
                    let body = futures::TryStreamExt::map_err(body, |e| Box::new(e) as s3s::StdError);
                    let expect = crate::pipeline::Expect {
                        length: Some(src.meta.size),
                        ..Default::default()
                    };
                    let (p, d, s) =
                        (self.write_delta(engine, &target, plan, &tag_meta, body, expect, &sealing)).await?;
                    (p, d, s, Vec::new())
                } else {
                    let (p, d, s) =
                        (self.copy_planned(&target, &src, 0, src.meta.size, &tag_meta, plan, &sealing)).await?;
                    (p, d, s, Vec::new())
                }
            }
            // Quorum writes: N copies at once (see quorum.rs).
            _ if self.write_quorum.for_bucket(&i.bucket) > 1 => {
                let plan = (self.first_plan(&target, Some(src.meta.size), &sealing).await).map_err(from_cp)?;
                self.copy_with_quorum(&target, &src, &tag_meta, plan, &sealing).await?
            }
            _ => {
                let (p, d, s) = (self.copy_with_failover(&target, &src, 0, src.meta.size, &tag_meta, &sealing)).await?;
                (p, d, s, Vec::new())
            }
        };
        meta.size = digests.size;
        meta.etag = digests.md5_hex.clone();
        meta.checksums.clear();
        if let Some((algo, v)) = &digests.checksum {
            meta.checksums.insert(algo.name().to_owned(), v.clone());
        }
        self.precheck(&i.bucket, &i.key, &condition).await?;
        let commit = Commit {
            copies,
            condition,
            ..Commit::new(&i.bucket, &i.key, meta, vec![segment])
        };
        let obsolete = self.commit_copies(&plan, commit).await?;
        self.cleanup(obsolete);
        let result = CopyObjectResult {
            e_tag: Some(etag(&digests.md5_hex)),
            last_modified: Some(timestamp(super::meta::now_ms())),
            ..Default::default()
        };
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            sse_customer_algorithm,
            sse_customer_key_md5,
            ..Default::default()
        }))
    }
}
