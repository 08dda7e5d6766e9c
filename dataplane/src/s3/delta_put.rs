//! PutObject with delta compression. The body is spooled to local disk (and
//! verified) first, so that the choice between a delta, a new reference and
//! the plain bytes can be made on the whole content with bounded memory.
//! Every path records its decision with the control plane.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::{S3Error, S3Result, StdError, s3_error};
use strata_backend::sealed::put_blob;
use strata_backend::{BackendError, ByteStream};
use strata_core::blobtags::Tags;
use strata_core::{DeltaDecision, DeltaPlan, Encoding, ObjectMeta, Segment, WritePlan};
use tokio::io::AsyncWriteExt;

use super::StrataS3;
use super::sse::Sealing;
use super::writer::{self, Target};
use crate::delta::DeltaEngine;
use crate::errors::{from_backend, from_cp, from_upload};
use crate::pipeline::{Digests, Expect, verify};

/// Scratch files removed when dropped, on every path.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What was written for the object's own blob.
struct Written {
    segment: Segment,
    decision: DeltaDecision,
    /// Bytes stored besides the object's own blob (a new reference's).
    extra_stored: u64,
}

impl StrataS3 {
    /// Writes a PutObject body under `plan` (whose `delta` is set), choosing
    /// a delta, a new reference or the plain bytes.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_delta<S>(
        &self,
        engine: &Arc<DeltaEngine>,
        target: &Target<'_>,
        plan: WritePlan,
        meta: &ObjectMeta,
        body: S,
        expect: Expect,
        sealing: &Sealing,
    ) -> S3Result<(WritePlan, Digests, Segment)>
    where
        S: Stream<Item = Result<Bytes, StdError>> + Unpin + Send + Sync + 'static,
    {
        let mut scratch = Scratch(Vec::new());
        let spool = engine.cache.scratch();
        scratch.0.push(spool.clone());
        let mut streaming = self
            .start_stream_encode(engine, &plan, expect.length, sealing, &mut scratch)
            .await;
        let digests = match spool_body(
            &spool,
            body,
            expect,
            streaming.as_mut().map(|s| (&mut s.enc, engine.deny_media)),
        )
        .await
        {
            Ok(d) => d,
            Err(e) => {
                self.abort(&plan).await;
                return Err(e);
            }
        };
        // The container encoded while the body arrived, when that went well
        // (any failure falls back to encoding the spooled body).
        let pre = match streaming {
            Some(StreamEncode {
                enc: Some(enc),
                out,
                permit,
            }) => {
                let finished = enc.finish().await;
                drop(permit);
                match finished {
                    Ok(stats) => Some((out, stats)),
                    Err(e) => {
                        tracing::debug!(error = %e, "streamed delta encoding failed; encoding the spooled body");
                        None
                    }
                }
            }
            _ => None,
        };
        let mut tag_meta = meta.clone();
        tag_meta.size = digests.size;
        tag_meta.etag = digests.md5_hex.clone();
        let dplan = plan.delta.clone().unwrap_or_default();
        let written = self
            .choose(
                engine,
                target,
                &plan,
                &dplan,
                &spool,
                &digests,
                &tag_meta,
                sealing,
                &mut scratch,
                pre,
            )
            .await;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                self.abort(&plan).await;
                return Err(e);
            }
        };
        crate::delta::count_decision(
            &written.decision.decision,
            target.bucket(),
            written.decision.logical_bytes,
            written.decision.stored_bytes + written.extra_stored,
        );
        tracing::debug!(
            bucket = target.bucket(), key = target.key(), decision = %written.decision.decision,
            reason = %written.decision.reason, logical = written.decision.logical_bytes,
            stored = written.decision.stored_bytes, "delta decision"
        );
        if let Err(e) = self.cp.record_delta(&plan, written.decision).await {
            tracing::warn!(error = %e, "could not record a delta decision");
        }
        Ok((plan, digests, written.segment))
    }

    #[allow(clippy::too_many_arguments)]
    async fn choose(
        &self,
        engine: &Arc<DeltaEngine>,
        target: &Target<'_>,
        plan: &WritePlan,
        dplan: &DeltaPlan,
        spool: &Path,
        digests: &Digests,
        tag_meta: &ObjectMeta,
        sealing: &Sealing,
        scratch: &mut Scratch,
        pre: Option<(PathBuf, strata_delta::EncodeStats)>,
    ) -> S3Result<Written> {
        let size = digests.size;
        let head = read_head(spool).await;
        let sniff = strata_delta::sniff(&head);
        let skip = if matches!(sealing, Sealing::Customer(_)) {
            Some("SSE-C object".to_owned())
        } else if size < engine.min_size {
            Some(format!("below min_size ({size} < {})", engine.min_size))
        } else if size > engine.max_object_size {
            Some(format!(
                "above delta.max_object_size ({size} > {})",
                engine.max_object_size
            ))
        } else if engine.deny_media && sniff.whole_stream_compressed() {
            Some(format!("whole-stream compressed content ({})", sniff.name()))
        } else {
            None
        };
        if let Some(reason) = skip {
            return self.passthrough(target, plan, spool, digests, tag_meta, reason).await;
        }
        let Some(reference) = &dplan.reference else {
            return self
                .new_reference(engine, target, plan, dplan, spool, digests, tag_meta)
                .await;
        };
        let ref_path = match engine.cache.get(&reference.ref_id, &*self.cp, &self.backends).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(ref_id = %reference.ref_id, error = %e, "reference unavailable; storing the object whole");
                let reason = format!("reference {} unavailable", reference.ref_id);
                return self.passthrough(target, plan, spool, digests, tag_meta, reason).await;
            }
        };
        let (out, stats) = match pre {
            // Encoded while the body arrived, against the same reference.
            Some((out, stats)) if stats.logical_len == size => (out, Ok(stats)),
            _ => {
                let out = engine.cache.scratch();
                scratch.0.push(out.clone());
                let stats = {
                    let _permit = engine.permits.acquire().await.map_err(|_| s3_error!(InternalError))?;
                    strata_delta::encode_file(spool, &ref_path, &out, &engine.params).await
                };
                (out, stats)
            }
        };
        let stats = stats.map_err(|e| {
            tracing::error!(error = %e, "delta encoding failed");
            s3_error!(InternalError)
        })?;
        let ratio = stats.encoded_len as f64 / size.max(1) as f64;
        let limit = f64::from(dplan.max_delta_permille) / 1000.0;
        if stats.encoded_len.saturating_mul(1000) > size.saturating_mul(u64::from(dplan.max_delta_permille)) {
            let reason = format!("delta ratio {ratio:.3} > max_delta_ratio {limit:.2}");
            return self.passthrough(target, plan, spool, digests, tag_meta, reason).await;
        }
        let encoding = Encoding::Delta {
            encoded_len: stats.encoded_len,
            ref_id: reference.ref_id.clone(),
        };
        let segment = self
            .upload_file(
                target,
                plan,
                &out,
                stats.encoded_len,
                digests,
                tag_meta,
                Some(encoding),
                None,
            )
            .await?;
        Ok(Written {
            segment,
            decision: DeltaDecision {
                decision: "delta".into(),
                reason: format!(
                    "delta ratio {ratio:.3} <= max_delta_ratio {limit:.2} ({} ms)",
                    stats.millis
                ),
                ref_id: Some(reference.ref_id.clone()),
                logical_bytes: size,
                stored_bytes: stats.encoded_len,
            },
            extra_stored: 0,
        })
    }

    /// Starts encoding the body against its deltaspace's reference while it
    /// arrives, when that can pay: the plan names a reference, the declared
    /// length is known and eligible, and an encode permit is free now (a
    /// slow client never makes other encodes wait). `None` means encode the
    /// spooled body afterwards, as before.
    async fn start_stream_encode(
        &self,
        engine: &Arc<DeltaEngine>,
        plan: &WritePlan,
        declared: Option<u64>,
        sealing: &Sealing,
        scratch: &mut Scratch,
    ) -> Option<StreamEncode> {
        let reference = plan.delta.as_ref()?.reference.as_ref()?;
        let len = declared?;
        if matches!(sealing, Sealing::Customer(_)) || len < engine.min_size || len > engine.max_object_size {
            return None;
        }
        let permit = engine.permits.clone().try_acquire_owned().ok()?;
        let ref_path = engine
            .cache
            .get(&reference.ref_id, &*self.cp, &self.backends)
            .await
            .ok()?;
        let out = engine.cache.scratch();
        scratch.0.push(out.clone());
        match strata_delta::StreamEncoder::new(&ref_path, &out, len, &engine.params).await {
            Ok(enc) => Some(StreamEncode {
                enc: Some(enc),
                out,
                permit,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "could not start a streamed delta encoding");
                None
            }
        }
    }

    /// Stores the spooled body as it is.
    async fn passthrough(
        &self,
        target: &Target<'_>,
        plan: &WritePlan,
        spool: &Path,
        digests: &Digests,
        tag_meta: &ObjectMeta,
        reason: String,
    ) -> S3Result<Written> {
        let segment = self
            .upload_file(target, plan, spool, digests.size, digests, tag_meta, None, None)
            .await?;
        Ok(Written {
            segment,
            decision: DeltaDecision {
                decision: "passthrough".into(),
                reason,
                ref_id: None,
                logical_bytes: digests.size,
                stored_bytes: digests.size,
            },
            extra_stored: 0,
        })
    }

    /// Makes the body its deltaspace's new reference (stored zstd-compressed
    /// when that is smaller), and the object a copy of it.
    #[allow(clippy::too_many_arguments)]
    async fn new_reference(
        &self,
        engine: &Arc<DeltaEngine>,
        target: &Target<'_>,
        plan: &WritePlan,
        dplan: &DeltaPlan,
        spool: &Path,
        digests: &Digests,
        tag_meta: &ObjectMeta,
    ) -> S3Result<Written> {
        let size = digests.size;
        let rplan = (self.cp)
            .plan_reference(target.bucket(), &dplan.space, Some(size))
            .await
            .map_err(from_cp)?;
        let zpath = engine.cache.scratch();
        let _z = Scratch(vec![zpath.clone()]);
        let clen = strata_delta::compress_file(spool, &zpath, engine.params.level)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "compressing a reference failed");
                s3_error!(InternalError)
            })?;
        let (file, len, encoding) = if clen < size {
            (zpath.as_path(), clen, Some(Encoding::Zstd { encoded_len: clen }))
        } else {
            (spool, size, None)
        };
        let ref_tags = ObjectMeta::default();
        let rtarget = Target::Object {
            bucket: target.bucket(),
            key: &dplan.space,
        };
        let uploaded = self
            .upload_file(
                &rtarget,
                &rplan,
                file,
                len,
                digests,
                &ref_tags,
                encoding,
                Some("reference"),
            )
            .await;
        let ref_segment = match uploaded {
            Ok(s) => s,
            Err(e) => {
                self.abort(&rplan).await;
                return Err(e);
            }
        };
        let stored = len;
        let dref = match (self.cp)
            .commit_reference(&rplan, &dplan.space, &digests.sha256_hex, ref_segment)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.abort(&rplan).await;
                return Err(from_cp(e));
            }
        };
        if let Err(e) = engine.cache.adopt(&dref.ref_id, spool, size).await {
            tracing::debug!(error = %e, "could not keep the new reference in the cache");
        }
        let container = strata_delta::identity_container(size);
        let clen = container.len() as u64;
        let encoding = Encoding::Delta {
            encoded_len: clen,
            ref_id: dref.ref_id.clone(),
        };
        let backend = self
            .backends
            .get(&plan.backend_id)
            .cloned()
            .ok_or_else(|| s3_error!(InternalError))?;
        let tags = blob_tags(target, plan, tag_meta, Some(&encoding), None);
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from(container))]));
        put_blob(&*backend, &plan.backend_key, &tags, body, plan.cipher.as_ref())
            .await
            .map_err(from_backend)?;
        let mut segment = writer::segment(plan, digests);
        segment.encoding = Some(encoding);
        Ok(Written {
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

    /// Uploads `len` bytes of `file` as the blob of `plan`.
    #[allow(clippy::too_many_arguments)]
    async fn upload_file(
        &self,
        target: &Target<'_>,
        plan: &WritePlan,
        file: &Path,
        len: u64,
        digests: &Digests,
        tag_meta: &ObjectMeta,
        encoding: Option<Encoding>,
        codec: Option<&str>,
    ) -> S3Result<Segment> {
        let backend = self.backends.get(&plan.backend_id).cloned().ok_or_else(|| {
            tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
            s3_error!(InternalError)
        })?;
        let f = tokio::fs::File::open(file).await.map_err(local_error)?;
        let body: ByteStream = Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
        let tags = blob_tags(target, plan, tag_meta, encoding.as_ref(), codec);
        let expected = match plan.cipher {
            Some(_) => strata_crypto::sealed_len(len),
            None => len,
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
        let mut segment = writer::segment(plan, digests);
        segment.encoding = encoding;
        Ok(segment)
    }
}

/// Tags of a blob: encoded blobs and references say so (`codec`), so that
/// the reaper never mistakes one for an object's bytes.
fn blob_tags(
    target: &Target<'_>,
    plan: &WritePlan,
    meta: &ObjectMeta,
    encoding: Option<&Encoding>,
    codec: Option<&str>,
) -> Tags {
    let mut tags = writer::tags_with(plan, target.bucket(), target.key(), target.role(), meta);
    if plan.cipher.is_none() {
        let codec = codec.unwrap_or(match encoding {
            None => "none",
            Some(Encoding::Zstd { .. }) => "zstd",
            Some(Encoding::Delta { .. }) => "delta",
        });
        tags.insert("codec".into(), codec.into());
    }
    tags
}

/// A delta encoding fed with the body as it is spooled.
struct StreamEncode {
    /// `None` once it failed or the content turned out not to be worth it.
    enc: Option<strata_delta::StreamEncoder>,
    out: PathBuf,
    permit: tokio::sync::OwnedSemaphorePermit,
}

/// Streams the verified body to `path` (and into `enc`, with whether
/// whole-stream compressed media stop it); returns its digests.
async fn spool_body<S>(
    path: &Path,
    body: S,
    expect: Expect,
    mut enc: Option<(&mut Option<strata_delta::StreamEncoder>, bool)>,
) -> S3Result<Digests>
where
    S: Stream<Item = Result<Bytes, StdError>> + Unpin + Send + Sync + 'static,
{
    let (mut verified, slot) = verify(body, expect);
    let mut file = tokio::fs::File::create(path).await.map_err(local_error)?;
    let mut head: Vec<u8> = Vec::new();
    while let Some(chunk) = verified.next().await {
        let b = match chunk {
            Ok(b) => b,
            Err(e) => return Err(from_upload(BackendError::Body(e))),
        };
        file.write_all(&b).await.map_err(local_error)?;
        if let Some((slot, deny_media)) = enc.as_mut()
            && let Some(e) = slot.as_mut()
        {
            if head.len() < HEAD_LEN {
                let n = (HEAD_LEN - head.len()).min(b.len());
                head.extend_from_slice(&b[..n]);
                if head.len() == HEAD_LEN && *deny_media && strata_delta::sniff(&head).whole_stream_compressed() {
                    **slot = None;
                    continue;
                }
            }
            if let Err(err) = e.push(&b).await {
                tracing::debug!(error = %err, "streamed delta encoding stopped; encoding the spooled body");
                **slot = None;
            }
        }
    }
    file.flush().await.map_err(local_error)?;
    slot.lock()
        .ok()
        .and_then(|mut d| d.take())
        .ok_or_else(|| s3_error!(InternalError))
}

/// Bytes of the body the sniffer looks at.
const HEAD_LEN: usize = 64;

async fn read_head(path: &Path) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; HEAD_LEN];
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    let n = f.read(&mut buf).await.unwrap_or(0);
    buf.truncate(n);
    buf
}

fn local_error(e: std::io::Error) -> S3Error {
    tracing::error!(error = %e, "delta scratch file");
    s3_error!(InternalError)
}
