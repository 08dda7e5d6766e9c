//! Quorum writes (`replication.write_quorum: N`, N > 1): a PutObject or
//! CopyObject body is read once and streamed in parallel to N distinct
//! backends, each copy under its own plan and intent (and sealed with its own
//! data key when encryption applies). The chunks fan out through one bounded
//! channel per copy, so memory stays at a few chunks per copy whatever the
//! object size. The write is acknowledged only when all N copies are durable
//! and committed in one transaction; otherwise every intent is aborted (the
//! bytes written so far are deleted), nothing is committed, the previous
//! version stays current, and the client gets 503 SlowDown to retry.
//!
//! Delta-encoded writes stay single-copy (the replication job copies them
//! later), and multipart uploads are replicated by the job, not by quorum.

use std::io;
use std::sync::LazyLock;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use prometheus::IntCounterVec;
use s3s::{S3Error, S3Result, s3_error};
use strata_backend::ByteStream;
use strata_backend::sealed::put_blob;
use strata_core::{CpError, ObjectMeta, Segment, WritePlan};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::blob::{segment, tags};
use super::body::{Verified, take_digests};
use super::{Placed, Target, WriteRequest};
use crate::errors::{from_cp, from_upload};
use crate::pipeline::{DigestSlot, Digests};
use crate::s3::StrataS3;

/// Chunks buffered per copy: memory is bounded by this, times the chunk
/// size, times N.
const CHANNEL_CHUNKS: usize = 4;

static QUORUM_WRITES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        prometheus::Opts::new(
            "strata_quorum_writes_total",
            "Writes that needed N copies before their acknowledgement, by outcome: acknowledged, \
             no_backends (fewer than N could be planned), backend_failed, client_error, commit_failed",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "quorum metric not registered");
    }
    c
});

pub(super) fn outcome(o: &str) {
    QUORUM_WRITES.with_label_values(&[o]).inc();
}

/// How many copies a write needs before its acknowledgement, per bucket.
#[derive(Debug, Clone, Default)]
pub struct WriteQuorum {
    default: u32,
    buckets: std::sync::Arc<std::collections::BTreeMap<String, u32>>,
}

impl WriteQuorum {
    /// `replication.write_quorum` and `replication.bucket_write_quorum`.
    pub fn from_config(r: &strata_core::config::ReplicationConfig) -> WriteQuorum {
        WriteQuorum {
            default: r.write_quorum,
            buckets: std::sync::Arc::new(r.bucket_write_quorum.clone()),
        }
    }

    /// The quorum of writes to `bucket` (at least 1).
    pub fn for_bucket(&self, bucket: &str) -> u32 {
        self.buckets.get(bucket).copied().unwrap_or(self.default).max(1)
    }
}

/// The further copies of a quorum write: each plan with what was written under it.
pub(super) type Copies = Vec<(WritePlan, Vec<Segment>)>;

/// What a client is told when N copies cannot be written: retry later.
fn not_enough(n: usize) -> S3Error {
    s3_error!(
        SlowDown,
        "Fewer than {n} storage backends could take a copy of this object; please retry."
    )
}

/// Why the fan-out stopped.
enum Pumped {
    /// The body ended cleanly.
    Done,
    /// A copy's backend stopped reading: the quorum is lost.
    CopyLost,
    /// The client's body failed (or did not match its checksums).
    Body(io::Error),
}

/// Feeds every chunk of `body` to every sender, in order. On any failure the
/// remaining copies get an error (so none is stored as if complete).
async fn pump<S>(mut body: S, senders: Vec<mpsc::Sender<io::Result<Bytes>>>) -> Pumped
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    let fail_all = |senders: &[mpsc::Sender<io::Result<Bytes>>]| {
        for tx in senders {
            let _ = tx.try_send(Err(io::Error::other("quorum write abandoned")));
        }
    };
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                for tx in &senders {
                    // Bytes clones share the buffer: no copy per backend.
                    if tx.send(Ok(chunk.clone())).await.is_err() {
                        fail_all(&senders);
                        return Pumped::CopyLost;
                    }
                }
            }
            Err(e) => {
                fail_all(&senders);
                return Pumped::Body(e);
            }
        }
    }
    Pumped::Done
}

impl StrataS3 {
    /// Writes the request's bytes to `n` distinct backends at once, `first`
    /// included: the body is read once and fanned out. On failure every plan
    /// has been aborted.
    pub(super) async fn place_quorum(
        &self,
        req: &mut WriteRequest<'_>,
        first: WritePlan,
        n: usize,
    ) -> S3Result<Placed> {
        let tag_meta = req.known_meta();
        let (verified, slot) = match req.body.open(self) {
            Ok(v) => v,
            Err(e) => {
                self.abort(&first).await;
                return Err(e);
            }
        };
        let more = match self.more_plans(req, &first, n).await {
            Ok(p) => p,
            Err(e) => {
                self.abort(&first).await;
                return Err(e);
            }
        };
        let plans: Vec<WritePlan> = std::iter::once(first).chain(more).collect();
        let (digests, segments) = match self.fan_out(&req.target, &plans, &tag_meta, verified, slot).await {
            Ok(r) => r,
            Err(e) => {
                self.abort_all(&plans).await;
                return Err(e);
            }
        };
        let mut pairs = plans.into_iter().zip(segments);
        let (plan, segment) = pairs.next().expect("at least one plan");
        let copies = pairs.map(|(p, s)| (p, vec![s])).collect();
        Ok(Placed {
            plan,
            digests,
            segment,
            copies,
        })
    }

    /// Plans the copies after `first` on distinct backends (open breakers
    /// left out), each under its own intent. Every plan made is aborted when
    /// fewer than `n` can be made.
    async fn more_plans(&self, req: &WriteRequest<'_>, first: &WritePlan, n: usize) -> S3Result<Vec<WritePlan>> {
        let (target, hint) = (&req.target, req.body.size_hint());
        let open = self.guard.as_ref().map(|g| g.open_backends()).unwrap_or_default();
        let mut plans: Vec<WritePlan> = Vec::new();
        while plans.len() + 1 < n {
            let exclude: Vec<String> = std::iter::once(&first.backend_id)
                .chain(plans.iter().map(|p| &p.backend_id))
                .chain(&open)
                .cloned()
                .collect();
            match self.plan_for(target, hint, &exclude, &req.sealing).await {
                Ok(p) => plans.push(p),
                Err(e) => {
                    self.abort_all(&plans).await;
                    return Err(match e {
                        CpError::NoCapacity(why) => {
                            outcome("no_backends");
                            tracing::warn!(
                                bucket = target.bucket(), key = target.key(), quorum = n, planned = plans.len() + 1,
                                open_breakers = ?open, reason = %why, "not enough backends for a quorum write",
                            );
                            not_enough(n)
                        }
                        e => from_cp(e),
                    });
                }
            }
        }
        Ok(plans)
    }

    /// Streams the verified body once to every plan's backend in parallel;
    /// every copy must be stored. The caller aborts the plans on failure.
    async fn fan_out(
        &self,
        target: &Target<'_>,
        plans: &[WritePlan],
        tag_meta: &ObjectMeta,
        verified: Verified,
        slot: DigestSlot,
    ) -> S3Result<(Digests, Vec<Segment>)> {
        let mut senders = Vec::with_capacity(plans.len());
        let mut puts = Vec::with_capacity(plans.len());
        for plan in plans {
            let Some(backend) = self.backends.get(&plan.backend_id).cloned() else {
                tracing::error!(backend = %plan.backend_id, "plan names a backend this data plane does not have");
                return Err(s3_error!(InternalError));
            };
            let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
            senders.push(tx);
            let tags = tags(plan, target, tag_meta);
            let stream: ByteStream = Box::pin(ReceiverStream::new(rx));
            let (key, cipher) = (plan.backend_key.clone(), plan.cipher.clone());
            puts.push(async move { put_blob(&*backend, &key, &tags, stream, cipher.as_ref()).await });
        }
        let (pumped, stored) = tokio::join!(pump(verified, senders), futures::future::join_all(puts));
        let lost = match pumped {
            Pumped::Done => false,
            Pumped::Body(e) => {
                outcome("client_error");
                return Err(from_upload(strata_backend::BackendError::Body(e)));
            }
            Pumped::CopyLost => true,
        };
        let failed: Vec<(&str, String)> = (plans.iter().zip(&stored))
            .filter_map(|(p, r)| r.as_ref().err().map(|e| (p.backend_id.as_str(), e.to_string())))
            .collect();
        if lost || !failed.is_empty() {
            outcome("backend_failed");
            tracing::warn!(
                bucket = target.bucket(), key = target.key(), quorum = plans.len(), failed = ?failed,
                "a quorum write lost a copy; nothing is committed",
            );
            return Err(not_enough(plans.len()));
        }
        let Some(digests) = take_digests(&slot) else {
            return Err(s3_error!(InternalError));
        };
        let segments = plans.iter().map(|p| segment(p, &digests)).collect();
        Ok((digests, segments))
    }
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;
