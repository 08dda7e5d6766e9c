//! Single objects: PutObject, GetObject, HeadObject, DeleteObject and
//! DeleteObjects. A PUT plans with the control plane, streams the verified
//! body to a backend (through delta compression, a quorum fan-out or
//! failover when they apply) and commits; a GET locates the record and reads
//! its copies through `reader`. Versioning is not supported (`null` only).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::{Commit, ObjectMeta, ObjectRecord};

use super::meta::{Conditions, Headers, check_key, etag, parse_http_date, timestamp, user_metadata};
use super::sse;
use super::writer::Target;
use super::writer::{DeclaredChecksums, expectations};
use super::{StrataS3, conditional};
use crate::checksum::Algo;
use crate::errors::from_cp;

/// Fills the fields that GET and HEAD share from a catalog record.
macro_rules! describe {
    ($out:ident, $meta:expr, $checksums:expr) => {{
        let m: &ObjectMeta = $meta;
        $out.e_tag = Some(etag(&m.etag));
        $out.last_modified = Some(timestamp(m.last_modified_unix_ms));
        // S3 reports this type for objects stored without one.
        $out.content_type = Some(m.content_type.clone().unwrap_or_else(|| "binary/octet-stream".into()));
        $out.content_encoding = m.content_encoding.clone();
        $out.content_disposition = m.content_disposition.clone();
        $out.content_language = m.content_language.clone();
        $out.cache_control = m.cache_control.clone();
        $out.expires = m.expires.as_deref().and_then(parse_http_date);
        $out.metadata = user_metadata(&m.user_metadata);
        $out.accept_ranges = Some("bytes".into());
        $out.parts_count = (m.parts_count > 0).then_some(m.parts_count as i32);
        if $checksums {
            $out.checksum_crc32 = m.checksums.get(Algo::Crc32.name()).cloned();
            $out.checksum_crc32c = m.checksums.get(Algo::Crc32c.name()).cloned();
            $out.checksum_crc64nvme = m.checksums.get(Algo::Crc64Nvme.name()).cloned();
            $out.checksum_sha1 = m.checksums.get(Algo::Sha1.name()).cloned();
            $out.checksum_sha256 = m.checksums.get(Algo::Sha256.name()).cloned();
        }
    }};
}

/// Applies the `response-*` query overrides of a GET or HEAD.
macro_rules! overrides {
    ($out:ident, $input:expr) => {{
        let i = $input;
        if let Some(v) = &i.response_content_type {
            $out.content_type = Some(v.clone());
        }
        if let Some(v) = &i.response_content_disposition {
            $out.content_disposition = Some(v.clone());
        }
        if let Some(v) = &i.response_content_encoding {
            $out.content_encoding = Some(v.clone());
        }
        if let Some(v) = &i.response_content_language {
            $out.content_language = Some(v.clone());
        }
        if let Some(v) = &i.response_cache_control {
            $out.cache_control = Some(v.clone());
        }
        if let Some(v) = &i.response_expires {
            $out.expires = Some(v.clone());
        }
    }};
}

/// SSE-S3 and SSE-KMS requests are not implemented (encryption at rest is
/// configured per bucket and backend instead; SSE-C is supported). A client
/// that asks for them must not be told its object was stored that way.
pub(super) fn no_sse(requested: bool) -> S3Result<()> {
    if requested {
        return Err(s3_error!(
            NotImplemented,
            "SSE-S3 and SSE-KMS requests are not supported; use SSE-C, or bucket encryption in the Strata configuration."
        ));
    }
    Ok(())
}

/// `AES256` when the object's blobs are sealed under a Strata master key.
pub(super) fn at_rest(rec: &ObjectRecord) -> Option<ServerSideEncryption> {
    let sealed = rec
        .segments
        .iter()
        .any(|s| s.cipher.as_ref().is_some_and(|c| !c.is_customer()));
    sealed.then(|| ServerSideEncryption::from_static(ServerSideEncryption::AES256))
}

/// Versioning is not supported; `null` is the only version id that exists.
fn no_versions(v: Option<&str>) -> S3Result<()> {
    match v {
        None | Some("null") => Ok(()),
        Some(_) => Err(s3_error!(NotImplemented, "Object versioning is not supported.")),
    }
}

fn byte_range(range: Option<&Range>, size: u64) -> S3Result<Option<(u64, u64)>> {
    match range {
        None => Ok(None),
        Some(r) => match r.check(size) {
            Ok(r) => Ok(Some((r.start, r.end))),
            Err(_) => Err(s3_error!(InvalidRange, "The requested range is not satisfiable")),
        },
    }
}

impl StrataS3 {
    pub(super) async fn op_put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let i = req.input;
        check_key(&i.key)?;
        no_sse(i.server_side_encryption.is_some() || i.ssekms_key_id.is_some())?;
        let sealing = sse::sealing(sse::sse_c_headers!(i))?;
        let declared = DeclaredChecksums {
            crc32: i.checksum_crc32.as_ref(),
            crc32c: i.checksum_crc32c.as_ref(),
            crc64nvme: i.checksum_crc64nvme.as_ref(),
            sha1: i.checksum_sha1.as_ref(),
            sha256: i.checksum_sha256.as_ref(),
        };
        let expect = expectations(i.content_md5.as_ref(), declared, &req.headers, req.trailing_headers)?;
        let condition = conditional::condition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        self.precheck(&i.bucket, &i.key, &condition).await?;
        let size_hint = i.content_length.and_then(|l| u64::try_from(l).ok());
        let body = i
            .body
            .unwrap_or_else(|| StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>()));
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
        let target = Target::Object {
            bucket: &i.bucket,
            key: &i.key,
        };
        let plan = self.first_plan(&target, size_hint, &sealing).await.map_err(from_cp)?;
        let (plan, digests, segment, copies) = match (&self.delta, plan.delta.is_some()) {
            (Some(engine), true) => {
                let (p, d, s) = (self.write_delta(engine, &target, plan, &meta, body, expect, &sealing)).await?;
                (p, d, s, Vec::new())
            }
            // Quorum writes: N copies at once (see quorum.rs).
            _ if self.quorum_applies(&i.bucket, &plan) => {
                self.write_with_quorum(&target, size_hint, plan, &meta, body, expect, &sealing)
                    .await?
            }
            _ => {
                let (p, d, s) = (self.write_planned(&target, size_hint, plan, &meta, body, expect, &sealing)).await?;
                (p, d, s, Vec::new())
            }
        };
        meta.size = digests.size;
        meta.etag = digests.md5_hex.clone();
        if let Some((algo, v)) = &digests.checksum {
            meta.checksums.insert(algo.name().to_owned(), v.clone());
        }
        let commit = Commit {
            copies,
            condition,
            ..Commit::new(&i.bucket, &i.key, meta, vec![segment])
        };
        let obsolete = self.commit_copies(&plan, commit).await?;
        self.cleanup(obsolete);
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        let mut out = PutObjectOutput {
            e_tag: Some(etag(&digests.md5_hex)),
            sse_customer_algorithm,
            sse_customer_key_md5,
            server_side_encryption: plan
                .cipher
                .as_ref()
                .filter(|c| !c.is_customer())
                .map(|_| ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..Default::default()
        };
        match digests.checksum {
            Some((Algo::Crc32, v)) => out.checksum_crc32 = Some(v),
            Some((Algo::Crc32c, v)) => out.checksum_crc32c = Some(v),
            Some((Algo::Crc64Nvme, v)) => out.checksum_crc64nvme = Some(v),
            Some((Algo::Sha1, v)) => out.checksum_sha1 = Some(v),
            Some((Algo::Sha256, v)) => out.checksum_sha256 = Some(v),
            None => {}
        }
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let i = &req.input;
        no_versions(i.version_id.as_deref())?;
        let mut rec = self.locate(&i.bucket, &i.key).await?;
        Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        }
        .check(&rec.meta, true)?;
        let ck = sse::customer_key(sse::sse_c_headers!(i))?;
        sse::open_customer(&mut rec, ck.as_deref())?;
        let size = rec.meta.size;
        let range = byte_range(i.range.as_ref(), size)?;
        let (start, end) = range.unwrap_or((0, size));
        let body = self.open_range(&rec, start, end).await?;
        let mut out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some((end - start) as i64),
            ..Default::default()
        };
        let with_checksums = range.is_none() && i.checksum_mode.as_ref().is_some_and(|m| m.as_str() == "ENABLED");
        describe!(out, &rec.meta, with_checksums);
        out.server_side_encryption = at_rest(&rec);
        if let Some(md5) = sse::customer_md5(&rec) {
            out.sse_customer_algorithm = Some("AES256".into());
            out.sse_customer_key_md5 = Some(md5.to_owned());
        }
        overrides!(out, i);
        if range.is_some() {
            out.content_range = Some(format!("bytes {start}-{}/{size}", end.saturating_sub(1)));
        }
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = &req.input;
        no_versions(i.version_id.as_deref())?;
        let mut rec = self.locate(&i.bucket, &i.key).await?;
        Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        }
        .check(&rec.meta, true)?;
        let ck = sse::customer_key(sse::sse_c_headers!(i))?;
        sse::open_customer(&mut rec, ck.as_deref())?;
        let size = rec.meta.size;
        let range = byte_range(i.range.as_ref(), size)?;
        let (start, end) = range.unwrap_or((0, size));
        let mut out = HeadObjectOutput {
            content_length: Some((end - start) as i64),
            ..Default::default()
        };
        let with_checksums = i.checksum_mode.as_ref().is_some_and(|m| m.as_str() == "ENABLED");
        describe!(out, &rec.meta, with_checksums);
        out.server_side_encryption = at_rest(&rec);
        if let Some(md5) = sse::customer_md5(&rec) {
            out.sse_customer_algorithm = Some("AES256".into());
            out.sse_customer_key_md5 = Some(md5.to_owned());
        }
        overrides!(out, i);
        if range.is_some() {
            out.content_range = Some(format!("bytes {start}-{}/{size}", end.saturating_sub(1)));
        }
        Ok(S3Response::new(out))
    }

    pub(super) async fn locate(&self, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
        check_key(key)?;
        self.cp.locate(bucket, key).await.map_err(from_cp)
    }

    pub(super) async fn op_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let i = &req.input;
        check_key(&i.key)?;
        no_versions(i.version_id.as_deref())?;
        let obsolete = self.cp.delete_object(&i.bucket, &i.key).await.map_err(from_cp)?;
        self.cleanup(obsolete);
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    pub(super) async fn op_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let i = req.input;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "The request may list at most 1000 keys."));
        }
        self.cp.head_bucket(&i.bucket).await.map_err(from_cp)?;
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for obj in i.delete.objects {
            let result = match check_key(&obj.key) {
                Err(e) => Err(e),
                Ok(()) => self.cp.delete_object(&i.bucket, &obj.key).await.map_err(from_cp),
            };
            match result {
                Ok(obsolete) => {
                    self.cleanup(obsolete);
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(obj.key),
                            ..Default::default()
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(obj.key),
                    message: e.message().map(str::to_owned),
                    version_id: None,
                }),
            }
        }
        let out = DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}
