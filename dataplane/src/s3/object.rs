//! Single objects: PutObject, DeleteObject and DeleteObjects (GET and HEAD
//! are in `lookup`). A PUT is parsed into a
//! [`WriteRequest`](crate::write::WriteRequest) and written by the write
//! path, which plans, streams, places (one copy, a quorum or a delta) and
//! commits it. Versioning is not supported (`null` only).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::ObjectRecord;

use super::meta::{Headers, check_key, etag};
use super::request::{checksum_fields, client_body};
use super::{StrataS3, conditional, sse};
use crate::errors::from_cp;
use crate::write::{Target, WriteRequest};

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
        let body = client_body!(i, &req.headers, req.trailing_headers);
        let condition = conditional::condition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        let meta = Headers {
            content_type: i.content_type,
            content_encoding: i.content_encoding,
            content_disposition: i.content_disposition,
            content_language: i.content_language,
            cache_control: i.cache_control,
            expires: i.expires,
            metadata: i.metadata,
        }
        .into_meta();
        let (sse_customer_algorithm, sse_customer_key_md5) = sealing.echo();
        let written = (self.write(WriteRequest {
            target: Target::object(&i.bucket, &i.key),
            meta,
            condition,
            sealing,
            body,
        }))
        .await?;
        let mut out = PutObjectOutput {
            e_tag: Some(etag(&written.digests.md5_hex)),
            sse_customer_algorithm,
            sse_customer_key_md5,
            server_side_encryption: (written.at_rest)
                .then(|| ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..Default::default()
        };
        checksum_fields!(out, written.digests.checksum);
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
