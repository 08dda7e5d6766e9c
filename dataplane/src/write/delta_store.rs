//! Storing what the delta placement chose: the spooled body as it is, a
//! delta container, or a new reference for the deltaspace (stored
//! zstd-compressed when that is smaller) with the object as an identity
//! delta of it. Each blob is uploaded from a local file and tagged with its
//! codec.

use std::path::Path;

use bytes::Bytes;
use s3s::{S3Result, s3_error};
use strata_backend::sealed::put_blob;
use strata_backend::{BackendError, ByteStream};
use strata_core::{DeltaDecision, Encoding, ObjectMeta, Segment, WritePlan};

use super::Target;
use super::blob::{coded_tags, segment};
use super::delta::{Decided, DeltaWrite, Scratch, local_error};
use crate::errors::{from_backend, from_cp};
use crate::pipeline::Digests;
use crate::s3::StrataS3;

/// A local file stored as one blob, in its stored form.
pub(super) struct FileBlob<'a> {
    pub(super) path: &'a Path,
    /// Bytes of the file that are stored.
    pub(super) len: u64,
    /// How the bytes encode the object (`None`: they are the object).
    pub(super) encoding: Option<Encoding>,
    /// The tags' codec when it is not the encoding's (a reference).
    pub(super) codec: Option<&'a str>,
}

impl DeltaWrite<'_> {
    /// Stores the spooled body as it is.
    pub(super) async fn passthrough(&self, reason: String) -> S3Result<Decided> {
        let blob = FileBlob {
            path: self.spool,
            len: self.digests.size,
            encoding: None,
            codec: None,
        };
        let segment = (self.s3).upload_file(self.target, self.plan, &self.tag_meta, blob, self.digests);
        Ok(Decided {
            segment: segment.await?,
            decision: DeltaDecision {
                decision: "passthrough".into(),
                reason,
                ref_id: None,
                logical_bytes: self.digests.size,
                stored_bytes: self.digests.size,
            },
            extra_stored: 0,
        })
    }

    /// Makes the body its deltaspace's new reference (stored zstd-compressed
    /// when that is smaller), and the object a copy of it.
    pub(super) async fn new_reference(&self) -> S3Result<Decided> {
        let (s3, engine, dplan, plan, digests) = (self.s3, self.engine, &self.dplan, self.plan, self.digests);
        let size = digests.size;
        let rplan = (s3.cp)
            .plan_reference(self.target.bucket(), &dplan.space, Some(size))
            .await
            .map_err(from_cp)?;
        let zpath = engine.cache.scratch();
        let _z = Scratch(vec![zpath.clone()]);
        let clen = strata_delta::compress_file(self.spool, &zpath, engine.params.level)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "compressing a reference failed");
                s3_error!(InternalError)
            })?;
        let (path, len, encoding) = if clen < size {
            (zpath.as_path(), clen, Some(Encoding::Zstd { encoded_len: clen }))
        } else {
            (self.spool, size, None)
        };
        let rtarget = Target::Object {
            bucket: self.target.bucket(),
            key: &dplan.space,
        };
        let blob = FileBlob {
            path,
            len,
            encoding,
            codec: Some("reference"),
        };
        let ref_segment = match s3
            .upload_file(&rtarget, &rplan, &ObjectMeta::default(), blob, digests)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                s3.abort(&rplan).await;
                return Err(e);
            }
        };
        let stored = len;
        let committed = (s3.cp).commit_reference(&rplan, &dplan.space, &digests.sha256_hex, ref_segment);
        let dref = match committed.await {
            Ok(r) => r,
            Err(e) => {
                s3.abort(&rplan).await;
                return Err(from_cp(e));
            }
        };
        if let Err(e) = engine.cache.adopt(&dref.ref_id, self.spool, size).await {
            tracing::debug!(error = %e, "could not keep the new reference in the cache");
        }
        let container = strata_delta::identity_container(size);
        let clen = container.len() as u64;
        let encoding = Encoding::Delta {
            encoded_len: clen,
            ref_id: dref.ref_id.clone(),
        };
        let backend = (s3.backends.get(&plan.backend_id).cloned()).ok_or_else(|| s3_error!(InternalError))?;
        let tags = coded_tags(plan, self.target, &self.tag_meta, Some(&encoding), None);
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from(container))]));
        put_blob(&*backend, &plan.backend_key, &tags, body, plan.cipher.as_ref())
            .await
            .map_err(from_backend)?;
        let mut segment = segment(plan, digests);
        segment.encoding = Some(encoding);
        Ok(Decided {
            segment,
            decision: DeltaDecision {
                decision: "reference".into(),
                reason: format!(
                    "first object of deltaspace {} (or due a new reference); reference stored {}",
                    dplan.space,
                    if stored < size { "zstd-compressed" } else { "as it is" }
                ),
                ref_id: Some(dref.ref_id),
                logical_bytes: size,
                // The reference's own bytes are counted once, as a live
                // reference, in the report; this object is the container.
                stored_bytes: clen,
            },
            extra_stored: stored,
        })
    }
}

impl StrataS3 {
    /// Uploads `blob` as the blob of `plan`; its segment describes the
    /// object (`digests`) in the blob's encoding.
    pub(super) async fn upload_file(
        &self,
        target: &Target<'_>,
        plan: &WritePlan,
        tag_meta: &ObjectMeta,
        blob: FileBlob<'_>,
        digests: &Digests,
    ) -> S3Result<Segment> {
        let backend = self.backends.get(&plan.backend_id).cloned().ok_or_else(|| {
            tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
            s3_error!(InternalError)
        })?;
        let f = tokio::fs::File::open(blob.path).await.map_err(local_error)?;
        let body: ByteStream = Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
        let tags = coded_tags(plan, target, tag_meta, blob.encoding.as_ref(), blob.codec);
        let expected = match plan.cipher {
            Some(_) => strata_crypto::sealed_len(blob.len),
            None => blob.len,
        };
        match put_blob(&*backend, &plan.backend_key, &tags, body, plan.cipher.as_ref()).await {
            Ok(n) if n == expected => {}
            Ok(n) => {
                tracing::error!(stored = n, expected, "backend stored a different length");
                return Err(s3_error!(InternalError));
            }
            Err(BackendError::Body(e)) => return Err(local_error(e)),
            Err(e) => return Err(from_backend(e)),
        }
        let mut segment = segment(plan, digests);
        segment.encoding = blob.encoding;
        Ok(segment)
    }
}
