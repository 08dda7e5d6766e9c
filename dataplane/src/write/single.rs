//! Single-copy placement with failover. A client body whose declared length
//! fits `max_spool_bytes` is spooled (and fully verified) first when failover
//! is on, so a write whose backend fails can be re-planned on another one; a
//! copy source is simply read again. A backend failure (`Io`, `Remote`)
//! aborts that attempt and moves on to the next eligible backend, up to
//! `max_attempts`; a client-side failure never does. Any other body streams
//! straight to its one planned backend.

use s3s::{S3Error, S3Result, s3_error};
use strata_backend::sealed::put_blob;
use strata_backend::{BackendError, ByteStream};
use strata_core::blobtags::Tags;
use strata_core::{CpError, ObjectMeta, WritePlan};

use super::blob::{segment, tags};
use super::body::{Body, take_digests};
use super::{Placed, WriteRequest};
use crate::errors::{from_backend, from_cp, from_upload};
use crate::pipeline::Digests;
use crate::s3::StrataS3;
use crate::spool::{SpoolError, SpoolFile};

/// Where the bytes of each attempt come from; both can be read again.
enum Source<'a> {
    /// A spooled, verified client body.
    Spool { file: &'a SpoolFile, digests: &'a Digests },
    /// The request's copy source, read again for each attempt.
    Copy,
}

/// Why one attempt failed.
enum Failure {
    /// The backend failed; another one may do better.
    Backend(BackendError),
    /// Anything else: the client's fault or ours, the same on every backend.
    Fatal(S3Error),
}

impl StrataS3 {
    /// Stores one copy of the request's bytes, first under `plan`.
    pub(super) async fn place_single(&self, req: &mut WriteRequest<'_>, plan: WritePlan) -> S3Result<Placed> {
        if let Body::Copy { .. } = req.body {
            let tag_meta = req.known_meta();
            return self.until_stored(req, plan, &tag_meta, Source::Copy).await;
        }
        let declared = req.body.declared_len().or(req.body.size_hint());
        let failover = match (&self.failover, declared) {
            (Some(f), Some(n)) if n <= f.max_spool_bytes => f.clone(),
            (f, _) => {
                tracing::debug!(
                    bucket = req.target.bucket(), key = req.target.key(), declared_length = ?declared,
                    failover_enabled = f.is_some(), "body streams to one backend without failover"
                );
                return self.stream_to(req, plan).await;
            }
        };
        let spooled = match req.body.open(self) {
            Ok((verified, slot)) => match failover.spool(verified, declared.unwrap_or(u64::MAX)).await {
                Ok(file) => take_digests(&slot)
                    .map(|d| (file, d))
                    .ok_or_else(|| s3_error!(InternalError)),
                Err(e) => Err(spool_error(e)),
            },
            Err(e) => Err(e),
        };
        let (file, digests) = match spooled {
            Ok(s) => s,
            Err(e) => {
                self.abort(&plan).await;
                return Err(e);
            }
        };
        let tag_meta = req.meta_of(&digests);
        let source = Source::Spool {
            file: &file,
            digests: &digests,
        };
        self.until_stored(req, plan, &tag_meta, source).await
    }

    /// Streams the body to the backend `plan` names, without failover. On
    /// any failure the intent is aborted and nothing becomes visible.
    async fn stream_to(&self, req: &mut WriteRequest<'_>, plan: WritePlan) -> S3Result<Placed> {
        let Some(backend) = self.backends.get(&plan.backend_id).cloned() else {
            self.abort(&plan).await;
            tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
            return Err(s3_error!(InternalError));
        };
        let tags = tags(&plan, &req.target, &req.known_meta());
        let (stream, slot) = match req.body.open(self) {
            Ok(v) => v,
            Err(e) => {
                self.abort(&plan).await;
                return Err(e);
            }
        };
        let put = put_blob(
            &*backend,
            &plan.backend_key,
            &tags,
            Box::pin(stream),
            plan.cipher.as_ref(),
        );
        if let Err(e) = put.await {
            self.abort(&plan).await;
            return Err(from_upload(e));
        }
        let Some(digests) = take_digests(&slot) else {
            self.abort(&plan).await;
            return Err(s3_error!(InternalError));
        };
        let segment = segment(&plan, &digests);
        Ok(Placed {
            plan,
            digests,
            segment,
            copies: Vec::new(),
        })
    }

    /// Tries `first`, then re-planned backends, until one takes the bytes.
    async fn until_stored(
        &self,
        req: &mut WriteRequest<'_>,
        first: WritePlan,
        tag_meta: &ObjectMeta,
        source: Source<'_>,
    ) -> S3Result<Placed> {
        let max = self.failover.as_ref().map_or(1, |f| f.max_attempts as usize);
        let hint = req.body.size_hint();
        let mut plan = first;
        let mut tried: Vec<String> = Vec::new();
        let mut original: Option<BackendError> = None;
        loop {
            tried.push(plan.backend_id.clone());
            let tags = tags(&plan, &req.target, tag_meta);
            let err = match self.attempt(&plan, &tags, &source, &mut req.body).await {
                Ok(digests) => {
                    let segment = segment(&plan, &digests);
                    let copies = Vec::new();
                    return Ok(Placed {
                        plan,
                        digests,
                        segment,
                        copies,
                    });
                }
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
            let next = match self.plan_for(&req.target, hint, &tried, &req.sealing).await {
                Ok(p) => p,
                Err(CpError::NoCapacity(reason)) => {
                    tracing::warn!(tried = ?tried, %reason, "no other backend can take the write");
                    return Err(from_backend(original.unwrap_or(BackendError::NotFound)));
                }
                Err(e) => return Err(from_cp(e)),
            };
            tracing::warn!(
                from_backend = %plan.backend_id, to_backend = %next.backend_id,
                bucket = req.target.bucket(), key = req.target.key(), error = %reason,
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
        tags: &Tags,
        source: &Source<'_>,
        body: &mut Body<'_>,
    ) -> Result<Digests, Failure> {
        let Some(backend) = self.backends.get(&plan.backend_id).cloned() else {
            tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
            return Err(Failure::Fatal(s3_error!(InternalError)));
        };
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
                    Ok(n) if n == stored_len(digests) => Ok((*digests).clone()),
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
            Source::Copy => {
                let (stream, slot) = body.open(self).map_err(Failure::Fatal)?;
                let stream: ByteStream = Box::pin(stream);
                if let Err(e) = put_blob(&*backend, &plan.backend_key, tags, stream, plan.cipher.as_ref()).await {
                    return Err(classify(e));
                }
                take_digests(&slot).ok_or_else(|| Failure::Fatal(s3_error!(InternalError)))
            }
        }
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
    use super::super::Target;
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
