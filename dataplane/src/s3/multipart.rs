//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort,
//! ListParts and ListMultipartUploads. Each part is written by the write
//! path like a small object (a part target: one copy, committed to its
//! upload); Complete copies nothing, the object record lists one segment per
//! part (docs/decisions.md, "Write path").

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::{CpError, ListUploadsQuery, UploadInfo};

use super::copy::source_of;
use super::list::url_encode;
use super::meta::{Conditions, Headers, check_key, etag, now_ms, timestamp};
use super::object::no_sse;
use super::request::{checksum_fields, client_body};
use super::sse;
use super::{StrataS3, conditional};
use crate::errors::from_cp;
use crate::write::{Body, Target, WriteRequest};

const MAX_PARTS: i32 = 1000;

/// The write target of an UploadPart or UploadPartCopy input `$i`.
macro_rules! part_target {
    ($i:ident, $part_number:expr) => {
        Target::Part {
            bucket: &$i.bucket,
            key: &$i.key,
            upload_id: &$i.upload_id,
            part_number: $part_number,
        }
    };
}

impl StrataS3 {
    /// The upload, checked to belong to this bucket and key.
    async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadInfo> {
        let up = self.cp.get_upload(bucket, upload_id).await.map_err(from_cp)?;
        if up.key != key {
            return Err(s3_error!(NoSuchUpload));
        }
        Ok(up)
    }

    pub(super) async fn op_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let i = req.input;
        check_key(&i.key)?;
        no_sse(i.server_side_encryption.is_some() || i.ssekms_key_id.is_some())?;
        // Each part carries the customer key again and is sealed under it.
        let sealing = sse::sealing(sse::sse_c_headers!(i))?;
        let mut meta = Headers {
            content_type: i.content_type,
            content_encoding: i.content_encoding,
            content_disposition: i.content_disposition,
            content_language: i.content_language,
            cache_control: i.cache_control,
            expires: i.expires,
            metadata: i.metadata,
        }
        .into_meta();
        sse::mark_upload(&mut meta, &sealing);
        let up = self.cp.create_upload(&i.bucket, &i.key, meta).await.map_err(from_cp)?;
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        let out = CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(up.upload_id),
            sse_customer_algorithm,
            sse_customer_key_md5,
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let i = req.input;
        let body = client_body!(i, &req.headers, req.trailing_headers);
        let part_number = part_number(i.part_number)?;
        let sealing = sse::sealing(sse::sse_c_headers!(i))?;
        let up = self.upload(&i.bucket, &i.key, &i.upload_id).await?;
        sse::check_part(&up, &sealing)?;
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        let target = part_target!(i, part_number);
        let written = self.write(WriteRequest::part(target, sealing, body)).await?;
        let mut out = UploadPartOutput {
            e_tag: Some(etag(&written.digests.md5_hex)),
            sse_customer_algorithm,
            sse_customer_key_md5,
            ..Default::default()
        };
        checksum_fields!(out, written.digests.checksum);
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let i = req.input;
        let part_number = part_number(i.part_number)?;
        let up = self.upload(&i.bucket, &i.key, &i.upload_id).await?;
        let sealing = sse::sealing(sse::sse_c_headers!(i))?;
        sse::check_part(&up, &sealing)?;
        let (sb, sk) = source_of(&i.copy_source)?;
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
        let (start, end) = match i.copy_source_range.as_deref() {
            None => (0, src.meta.size),
            Some(r) => copy_range(r, src.meta.size)?,
        };
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        let target = part_target!(i, part_number);
        let written = self
            .write(WriteRequest::part(target, sealing, Body::copy(&src, start, end)))
            .await?;
        let result = CopyPartResult {
            e_tag: Some(etag(&written.digests.md5_hex)),
            last_modified: Some(timestamp(now_ms())),
            ..Default::default()
        };
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(result),
            sse_customer_algorithm,
            sse_customer_key_md5,
            ..Default::default()
        }))
    }

    pub(super) async fn op_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let i = req.input;
        let condition = conditional::condition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        match self.cp.get_upload(&i.bucket, &i.upload_id).await {
            Ok(up) if up.key != i.key.as_str() => return Err(s3_error!(NoSuchUpload)),
            // Gone: perhaps completed already; the control plane answers a
            // repeated completion with the object it made.
            Ok(_) | Err(CpError::NoSuchUpload) => {}
            Err(e) => return Err(from_cp(e)),
        }
        let listed = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema."
            ));
        }
        let mut parts = Vec::with_capacity(listed.len());
        for p in listed {
            let (Some(n), Some(e)) = (p.part_number, p.e_tag) else {
                return Err(s3_error!(MalformedXML, "Each part needs a PartNumber and an ETag."));
            };
            let n = u32::try_from(n).map_err(|_| s3_error!(InvalidPart))?;
            parts.push((n, e.value().trim_matches('"').to_owned()));
        }
        let (rec, obsolete) = self
            .cp
            .complete_upload(&i.bucket, &i.upload_id, parts, &condition)
            .await
            .map_err(from_cp)?;
        if rec.key != i.key.as_str() {
            return Err(s3_error!(NoSuchUpload));
        }
        self.cleanup(obsolete);
        let out = CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&rec.meta.etag)),
            location: Some(format!("/{}/{}", i.bucket, url_encode(&i.key))),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let i = req.input;
        self.upload(&i.bucket, &i.key, &i.upload_id).await?;
        let obsolete = self.cp.abort_upload(&i.bucket, &i.upload_id).await.map_err(from_cp)?;
        self.cleanup(obsolete);
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn op_list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let i = req.input;
        self.upload(&i.bucket, &i.key, &i.upload_id).await?;
        let marker = i.part_number_marker.unwrap_or(0).max(0) as u32;
        let max = i.max_parts.unwrap_or(MAX_PARTS).clamp(0, MAX_PARTS) as u32;
        let (_, page) = self
            .cp
            .list_parts(&i.bucket, &i.upload_id, marker, max)
            .await
            .map_err(from_cp)?;
        let parts = page
            .parts
            .into_iter()
            .map(|p| Part {
                part_number: Some(p.part_number as i32),
                e_tag: Some(etag(&p.etag)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.last_modified_unix_ms)),
                ..Default::default()
            })
            .collect();
        let out = ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: page.is_truncated.then_some(page.next_part_number_marker as i32),
            max_parts: Some(max as i32),
            is_truncated: Some(page.is_truncated),
            parts: Some(parts),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let i = req.input;
        let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as u32;
        let query = ListUploadsQuery {
            bucket: i.bucket.clone(),
            prefix: i.prefix.clone().unwrap_or_default(),
            key_marker: i.key_marker.clone().unwrap_or_default(),
            upload_id_marker: i.upload_id_marker.clone().unwrap_or_default(),
            max_uploads: max,
        };
        let page = self.cp.list_uploads(query).await.map_err(from_cp)?;
        let last = page.uploads.last().map(|u| (u.key.clone(), u.upload_id.clone()));
        let uploads = page
            .uploads
            .into_iter()
            .map(|u| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.initiated_unix_ms)),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        let (next_key, next_id) = match (page.is_truncated, last) {
            (true, Some((k, id))) => (Some(k), Some(id)),
            _ => (None, None),
        };
        let out = ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(page.is_truncated),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            uploads: Some(uploads),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}

fn part_number(n: i32) -> S3Result<u32> {
    match u32::try_from(n) {
        Ok(n @ 1..=10_000) => Ok(n),
        _ => Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )),
    }
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size.
fn copy_range(r: &str, size: u64) -> S3Result<(u64, u64)> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last."
        )
    };
    let (a, b) = r
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.parse().map_err(|_| bad())?;
    let last: u64 = b.parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    Ok((first, last + 1))
}
