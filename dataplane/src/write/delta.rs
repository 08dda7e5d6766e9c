//! Delta placement. The body is spooled to local disk (and verified) first,
//! encoded against its deltaspace's reference while it arrives when that can
//! pay, so that the choice between a delta, a new reference and the plain
//! bytes is made on the whole content with bounded memory. Every path
//! records its decision with the control plane. Storing each choice is in
//! `delta_store.rs`.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use s3s::{S3Error, S3Result, s3_error};
use strata_backend::BackendError;
use strata_core::{DeltaDecision, DeltaPlan, Encoding, ObjectMeta, Segment, WritePlan};
use tokio::io::AsyncWriteExt;

use super::body::{Verified, take_digests};
use super::delta_store::FileBlob;
use super::{Placed, Sealing, Target, WriteRequest};
use crate::delta::DeltaEngine;
use crate::errors::from_upload;
use crate::pipeline::{DigestSlot, Digests};
use crate::s3::StrataS3;

/// Scratch files removed when dropped, on every path.
pub(super) struct Scratch(pub(super) Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What was stored for the object's own blob, and why.
pub(super) struct Decided {
    pub(super) segment: Segment,
    pub(super) decision: DeltaDecision,
    /// Bytes stored besides the object's own blob (a new reference's).
    pub(super) extra_stored: u64,
}

/// One delta write with its body spooled: what the choice between a delta,
/// a new reference and the plain bytes works with.
pub(super) struct DeltaWrite<'a> {
    pub(super) s3: &'a StrataS3,
    pub(super) engine: &'a DeltaEngine,
    pub(super) target: &'a Target<'a>,
    pub(super) plan: &'a WritePlan,
    pub(super) dplan: DeltaPlan,
    /// The spooled, verified body and its digests.
    pub(super) spool: &'a Path,
    pub(super) digests: &'a Digests,
    /// The object's metadata with its size and ETag, for the blob tags.
    pub(super) tag_meta: ObjectMeta,
}

/// A delta encoding fed with the body as it is spooled.
struct StreamEncode {
    /// `None` once it failed or the content turned out not to be worth it.
    enc: Option<strata_delta::StreamEncoder>,
    out: PathBuf,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl StrataS3 {
    /// Stores the request's bytes under `plan` (whose `delta` is set) as a
    /// delta, a new reference or the plain bytes.
    pub(super) async fn place_delta(
        &self,
        engine: &DeltaEngine,
        req: &mut WriteRequest<'_>,
        plan: WritePlan,
    ) -> S3Result<Placed> {
        let mut scratch = Scratch(Vec::new());
        let spool = engine.cache.scratch();
        scratch.0.push(spool.clone());
        let declared = req.body.declared_len();
        let mut streaming = (self.start_stream_encode(engine, &plan, declared, &req.sealing, &mut scratch)).await;
        let enc = streaming.as_mut().map(|s| (&mut s.enc, engine.deny_media));
        let spooled = match req.body.open(self) {
            Ok((verified, slot)) => spool_body(&spool, verified, slot, enc).await,
            Err(e) => Err(e),
        };
        let digests = match spooled {
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
        let write = DeltaWrite {
            s3: self,
            engine,
            target: &req.target,
            plan: &plan,
            dplan: plan.delta.clone().unwrap_or_default(),
            spool: &spool,
            digests: &digests,
            tag_meta: req.meta_of(&digests),
        };
        let decided = match write.choose(&req.sealing, &mut scratch, pre).await {
            Ok(d) => d,
            Err(e) => {
                self.abort(&plan).await;
                return Err(e);
            }
        };
        let (bucket, key) = (req.target.bucket(), req.target.key());
        let d = &decided.decision;
        crate::delta::count_decision(
            &d.decision,
            bucket,
            d.logical_bytes,
            d.stored_bytes + decided.extra_stored,
        );
        tracing::debug!(
            bucket, key, decision = %d.decision, reason = %d.reason, logical = d.logical_bytes,
            stored = d.stored_bytes, "delta decision"
        );
        if let Err(e) = self.cp.record_delta(&plan, decided.decision).await {
            tracing::warn!(error = %e, "could not record a delta decision");
        }
        Ok(Placed {
            plan,
            digests,
            segment: decided.segment,
            copies: Vec::new(),
        })
    }

    /// Starts encoding the body against its deltaspace's reference while it
    /// arrives, when that can pay: the plan names a reference, the declared
    /// length is known and eligible, and an encode permit is free now (a
    /// slow client never makes other encodes wait). `None` means encode the
    /// spooled body afterwards, as before.
    async fn start_stream_encode(
        &self,
        engine: &DeltaEngine,
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
}

impl DeltaWrite<'_> {
    /// Chooses and stores a delta, a new reference or the plain bytes.
    async fn choose(
        &self,
        sealing: &Sealing,
        scratch: &mut Scratch,
        pre: Option<(PathBuf, strata_delta::EncodeStats)>,
    ) -> S3Result<Decided> {
        let (engine, dplan, size) = (self.engine, &self.dplan, self.digests.size);
        let head = read_head(self.spool).await;
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
            return self.passthrough(reason).await;
        }
        let Some(reference) = &dplan.reference else {
            return self.new_reference().await;
        };
        let (cp, backends) = (&*self.s3.cp, &self.s3.backends);
        let ref_path = match engine.cache.get(&reference.ref_id, cp, backends).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(ref_id = %reference.ref_id, error = %e, "reference unavailable; storing the object whole");
                let reason = format!("reference {} unavailable", reference.ref_id);
                return self.passthrough(reason).await;
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
                    strata_delta::encode_file(self.spool, &ref_path, &out, &engine.params).await
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
            return self.passthrough(reason).await;
        }
        let encoding = Encoding::Delta {
            encoded_len: stats.encoded_len,
            ref_id: reference.ref_id.clone(),
        };
        let blob = FileBlob {
            path: &out,
            len: stats.encoded_len,
            encoding: Some(encoding),
            codec: None,
        };
        let segment = self
            .s3
            .upload_file(self.target, self.plan, &self.tag_meta, blob, self.digests);
        Ok(Decided {
            segment: segment.await?,
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
}

/// Streams the verified body to `path` (and into `enc`, with whether
/// whole-stream compressed media stop it); returns its digests.
async fn spool_body(
    path: &Path,
    mut verified: Verified,
    slot: DigestSlot,
    mut enc: Option<(&mut Option<strata_delta::StreamEncoder>, bool)>,
) -> S3Result<Digests> {
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
    take_digests(&slot).ok_or_else(|| s3_error!(InternalError))
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

pub(super) fn local_error(e: std::io::Error) -> S3Error {
    tracing::error!(error = %e, "delta scratch file");
    s3_error!(InternalError)
}
