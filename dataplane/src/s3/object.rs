//! Single objects: PutObject, DeleteObject and DeleteObjects (GetObject and
//! HeadObject are in `lookup`). A PUT plans with the control plane, streams the verified
//! body to a backend (through delta compression, a quorum fan-out or
//! failover when they apply) and commits. Versioning is not supported (`null` only).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::{Commit, ObjectRecord};

use super::meta::{Headers, check_key, etag};
use super::sse;
use super::writer::Target;
use super::writer::{DeclaredChecksums, expectations};
use super::{StrataS3, conditional};
use crate::checksum::Algo;
use crate::errors::from_cp;

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

/// Versioning is not supported; `null` is the only version id that exists.
pub(super) fn no_versions(v: Option<&str>) -> S3Result<()> {
    match v {
        None | Some("null") => Ok(()),
        Some(_) => Err(s3_error!(NotImplemented, "Object versioning is not supported.")),
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
