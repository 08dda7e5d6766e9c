//! Failover-aware writes. Planning happens here, so a write whose backend
//! fails can be re-planned on another one: PutObject and UploadPart bodies are
//! spooled (and fully verified) first when failover is on and their declared
//! length fits, and copies simply re-read their source. A backend failure
//! (`Io`, `Remote`) aborts that attempt and moves on to the next eligible
//! backend, up to `max_attempts`; a client-side failure never does.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use s3s::{S3Error, S3Result, StdError, s3_error};
use strata_backend::sealed::put_blob;
use strata_backend::{BackendError, ByteStream};
use strata_core::{CpError, CpResult, ObjectMeta, ObjectRecord, Segment, WritePlan};

use super::StrataS3;
use super::sse::Sealing;
use super::writer::{self, Target};
use crate::errors::{from_backend, from_cp, from_upload};
use crate::pipeline::{Digests, Expect, verify};
use crate::spool::{SpoolError, SpoolFile};

/// Where the bytes of each attempt come from; both can be read again.
enum Source<'a> {
    Spool {
        file: &'a SpoolFile,
        digests: &'a Digests,
    },
    Copy {
        src: &'a ObjectRecord,
        start: u64,
        end: u64,
    },
}

/// Why one attempt failed.
enum Failure {
    /// The backend failed; another one may do better.
    Backend(BackendError),
    /// Anything else: the client's fault or ours, the same on every backend.
    Fatal(S3Error),
}

impl StrataS3 {
    pub(super) async fn plan_for(
        &self,
        t: &Target<'_>,
        hint: Option<u64>,
        exclude: &[String],
        sealing: &Sealing,
    ) -> CpResult<WritePlan> {
        let plan = match t {
            Target::Object { bucket, key } => self.cp.plan_write(bucket, key, hint, exclude).await?,
            Target::Part {
                bucket,
                upload_id,
                part_number,
                ..
            } => {
                self.cp
                    .plan_part(bucket, upload_id, *part_number, hint, exclude)
                    .await?
            }
        };
        self.seal_plan(plan, sealing).await
    }

    /// The first plan of a write: backends whose breaker is open are left
    /// out, unless that leaves nothing, in which case they are tried anyway
    /// (a half-open trial may succeed; failing fast is better than 507).
    pub(super) async fn first_plan(&self, t: &Target<'_>, hint: Option<u64>, sealing: &Sealing) -> CpResult<WritePlan> {
        let open = self.guard.as_ref().map(|g| g.open_backends()).unwrap_or_default();
        if open.is_empty() {
            return self.plan_for(t, hint, &[], sealing).await;
        }
        match self.plan_for(t, hint, &open, sealing).await {
            Err(CpError::NoCapacity(_)) => self.plan_for(t, hint, &[], sealing).await,
            other => other,
        }
    }

    /// Plans and writes a client body. `meta` feeds the blob tags. With
    /// failover on and a declared length within `max_spool_bytes`, the body
    /// is spooled and verified before any backend sees it; otherwise it
    /// streams straight to one backend.
    pub(super) async fn write_with_failover<S>(
        &self,
        target: &Target<'_>,
        hint: Option<u64>,
        meta: &ObjectMeta,
        body: S,
        expect: Expect,
        sealing: &Sealing,
    ) -> S3Result<(WritePlan, Digests, Segment)>
    where
        S: Stream<Item = Result<Bytes, StdError>> + Unpin + Send + Sync + 'static,
    {
        let plan = self.first_plan(target, hint, sealing).await.map_err(from_cp)?;
        self.write_planned(target, hint, plan, meta, body, expect, sealing)
            .await
    }

    /// [`StrataS3::write_with_failover`] with its first plan already made.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_planned<S>(
        &self,
        target: &Target<'_>,
        hint: Option<u64>,
        plan: WritePlan,
        meta: &ObjectMeta,
        body: S,
        expect: Expect,
        sealing: &Sealing,
    ) -> S3Result<(WritePlan, Digests, Segment)>
    where
        S: Stream<Item = Result<Bytes, StdError>> + Unpin + Send + Sync + 'static,
    {
        let declared = expect.length.or(hint);
        let failover = match (&self.failover, declared) {
            (Some(f), Some(n)) if n <= f.max_spool_bytes => f.clone(),
            (f, _) => {
                tracing::debug!(
                    bucket = target.bucket(), key = target.key(), declared_length = ?declared,
                    failover_enabled = f.is_some(), "body streams to one backend without failover"
                );
                let tags = writer::tags(&plan, target.bucket(), target.key(), target.role(), meta, &expect);
                let (digests, segment) = self.write_body(&plan, &tags, body, expect).await?;
                return Ok((plan, digests, segment));
            }
        };
        let (verified, slot) = verify(body, expect);
        let file = match failover.spool(verified, declared.unwrap_or(u64::MAX)).await {
            Ok(f) => f,
            Err(e) => {
                self.abort(&plan).await;
                return Err(spool_error(e));
            }
        };
        let Some(digests) = slot.lock().map(|mut d| d.take()).ok().flatten() else {
            self.abort(&plan).await;
            return Err(s3_error!(InternalError));
        };
        let mut tag_meta = meta.clone();
        tag_meta.size = digests.size;
        tag_meta.etag = digests.md5_hex.clone();
        let source = Source::Spool {
            file: &file,
            digests: &digests,
        };
        self.place(target, hint, &tag_meta, plan, source, sealing).await
    }

    /// Plans and writes `[start, end)` of `src`, re-verifying the source's
    /// stored checksum when the whole object is copied. A failed target
    /// backend is replaced by re-reading the source.
    pub(super) async fn copy_with_failover(
        &self,
        target: &Target<'_>,
        src: &ObjectRecord,
        start: u64,
        end: u64,
        tag_meta: &ObjectMeta,
        sealing: &Sealing,
    ) -> S3Result<(WritePlan, Digests, Segment)> {
        let plan = self
            .first_plan(target, Some(end - start), sealing)
            .await
            .map_err(from_cp)?;
        self.copy_planned(target, src, start, end, tag_meta, plan, sealing)
            .await
    }

    /// [`StrataS3::copy_with_failover`] with its first plan already made.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_planned(
        &self,
        target: &Target<'_>,
        src: &ObjectRecord,
        start: u64,
        end: u64,
        tag_meta: &ObjectMeta,
        plan: WritePlan,
        sealing: &Sealing,
    ) -> S3Result<(WritePlan, Digests, Segment)> {
        let hint = Some(end - start);
        self.place(target, hint, tag_meta, plan, Source::Copy { src, start, end }, sealing)
            .await
    }

    /// Tries `plan`, then re-planned backends, until one takes the bytes.
    async fn place(
        &self,
        target: &Target<'_>,
        hint: Option<u64>,
        tag_meta: &ObjectMeta,
        first: WritePlan,
        source: Source<'_>,
        sealing: &Sealing,
    ) -> S3Result<(WritePlan, Digests, Segment)> {
        let max = self.failover.as_ref().map_or(1, |f| f.max_attempts as usize);
        let mut plan = first;
        let mut tried: Vec<String> = Vec::new();
        let mut original: Option<BackendError> = None;
        loop {
            tried.push(plan.backend_id.clone());
            let tags = writer::tags_with(&plan, target.bucket(), target.key(), target.role(), tag_meta);
            let err = match self.attempt(&plan, &tags, &source).await {
                Ok((digests, segment)) => return Ok((plan, digests, segment)),
                Err(Failure::Fatal(e)) => {
                    self.abort(&plan).await;
                    return Err(e);
                }
                Err(Failure::Backend(e)) => e,
            };
            self.abort(&plan).await;
            let reason = err.to_string();
            original.get_or_insert(err);
            if tried.len() >= max {
                tracing::warn!(tried = ?tried, "write failed on every backend it may try");
                return Err(from_backend(original.unwrap_or(BackendError::NotFound)));
            }
            let next = match self.plan_for(target, hint, &tried, sealing).await {
                Ok(p) => p,
                Err(CpError::NoCapacity(reason)) => {
                    tracing::warn!(tried = ?tried, %reason, "no other backend can take the write");
                    return Err(from_backend(original.unwrap_or(BackendError::NotFound)));
                }
                Err(e) => return Err(from_cp(e)),
            };
            tracing::warn!(
                from_backend = %plan.backend_id, to_backend = %next.backend_id,
                bucket = target.bucket(), key = target.key(), error = %reason,
                "backend failed during a write; moving it to another backend"
            );
            if let Some(f) = &self.failover {
                f.metrics.failovers.with_label_values(&[plan.backend_id.as_str()]).inc();
            }
            plan = next;
        }
    }

    /// One attempt to store the source's bytes under `plan`.
    async fn attempt(
        &self,
        plan: &WritePlan,
        tags: &strata_core::blobtags::Tags,
        source: &Source<'_>,
    ) -> Result<(Digests, Segment), Failure> {
        let Some(backend) = self.backends.get(&plan.backend_id).cloned() else {
            tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
            return Err(Failure::Fatal(s3_error!(InternalError)));
        };
        let segment = |d: &Digests| writer::segment(plan, d);
        let stored_len = |d: &Digests| match plan.cipher {
            Some(_) => strata_crypto::sealed_len(d.size),
            None => d.size,
        };
        match source {
            Source::Spool { file, digests } => {
                let stream = file.stream().await.map_err(|e| {
                    tracing::error!(error = %e, "cannot open a spool file");
                    Failure::Fatal(s3_error!(InternalError))
                })?;
                match put_blob(&*backend, &plan.backend_key, tags, stream, plan.cipher.as_ref()).await {
                    Ok(n) if n == stored_len(digests) => Ok(((*digests).clone(), segment(digests))),
                    Ok(n) => {
                        tracing::error!(
                            stored = n,
                            expected = stored_len(digests),
                            "backend stored a different length"
                        );
                        Err(Failure::Fatal(s3_error!(InternalError)))
                    }
                    Err(BackendError::Body(e)) => {
                        tracing::error!(error = %e, "cannot read a spool file");
                        Err(Failure::Fatal(s3_error!(InternalError)))
                    }
                    Err(e) => Err(classify(e)),
                }
            }
            Source::Copy { src, start, end } => {
                let body = self.read_range(src, *start, *end).map_err(Failure::Fatal)?;
                let (stream, slot) = verify(
                    body.map_err(|e| Box::new(e) as StdError),
                    copy_expect(src, *start, *end),
                );
                let stream: ByteStream = Box::pin(stream);
                if let Err(e) = put_blob(&*backend, &plan.backend_key, tags, stream, plan.cipher.as_ref()).await {
                    return Err(classify(e));
                }
                match slot.lock().map(|mut d| d.take()).ok().flatten() {
                    Some(d) => {
                        let seg = segment(&d);
                        Ok((d, seg))
                    }
                    None => Err(Failure::Fatal(s3_error!(InternalError))),
                }
            }
        }
    }
}

/// What a copied range is checked against.
fn copy_expect(src: &ObjectRecord, start: u64, end: u64) -> Expect {
    let whole = start == 0 && end == src.meta.size;
    let checksum = src
        .meta
        .checksums
        .iter()
        .find_map(|(name, v)| crate::checksum::Algo::parse(name).map(|a| (a, v.clone())))
        .filter(|_| whole);
    Expect {
        checksum,
        length: Some(end - start),
        ..Expect::default()
    }
}

/// Backend failures are worth another backend; body and key errors are not.
fn classify(e: BackendError) -> Failure {
    match e {
        BackendError::Io(_) | BackendError::Remote(_) => Failure::Backend(e),
        BackendError::Body(_) => Failure::Fatal(from_upload(e)),
        other => Failure::Fatal(from_backend(other)),
    }
}

fn spool_error(e: SpoolError) -> S3Error {
    match e {
        SpoolError::Body(io) => from_upload(BackendError::Body(io)),
        SpoolError::TooLarge => s3_error!(IncompleteBody, "The body is longer than its declared length."),
        SpoolError::Local(io) => {
            tracing::error!(error = %io, "cannot write a spool file");
            s3_error!(InternalError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::blobtags::BlobRole;

    #[test]
    fn only_backend_failures_fail_over() {
        let io = || std::io::Error::other("x");
        assert!(matches!(classify(BackendError::Io(io())), Failure::Backend(_)));
        assert!(matches!(
            classify(BackendError::Remote("down".into())),
            Failure::Backend(_)
        ));
        assert!(matches!(classify(BackendError::Body(io())), Failure::Fatal(_)));
        assert!(matches!(classify(BackendError::InvalidKey), Failure::Fatal(_)));
    }

    #[test]
    fn targets_name_their_role() {
        let t = Target::Part {
            bucket: "b",
            key: "k",
            upload_id: "u",
            part_number: 3,
        };
        assert_eq!((t.bucket(), t.key()), ("b", "k"));
        assert!(matches!(t.role(), BlobRole::Part { part_number: 3, .. }));
        let o = Target::Object { bucket: "b", key: "k" };
        assert!(matches!(o.role(), BlobRole::Object));
    }
}
