//! Keeps every object on `factor` backends by copying it in the background.
//! Health-aware: copies on a backend whose circuit breaker some data plane
//! has reported open (or half-open) for longer than `unhealthy_after` do not
//! count, so the job makes further copies on healthy backends (see
//! `docs/replication.md`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use strata_backend::Backends;
use strata_core::{ControlPlane, CpError, ObjectRecord, Segment};
use strata_store::MetaStore;

use crate::blobcopy::{all_copies, copy_raw, discard, is_customer_copy, is_encoded_copy, record_digest, write_copy};
use crate::metrics::{REPLICATION_COPIES_MADE as COPIES_MADE, REPLICATION_UNHEALTHY_SKIPPED as UNHEALTHY_SKIPPED};
use crate::mover::raw_copy;
use crate::{Clock, Job, Outcome, system_clock};

/// Copies under-replicated objects to further backends until each has
/// `factor` copies (the primary included).
///
/// For each object the control plane chooses the target like any write
/// (quotas, limits, pins), excluding the backends that already hold a copy,
/// and records an intent (with a fresh data key when the policy seals the
/// target); the verified plaintext of one existing copy that is not sealed
/// under a customer key is streamed to the target (see
/// [`write_copy`](crate::write_copy)) and its digest recorded, then
/// `add_copy` attaches the copy in
/// one transaction with redeeming the intent. A copy of an object replaced
/// meanwhile is queued for cleanup instead. A crash in between leaves an
/// intent that the reaper resolves (attaching the copy or dropping it).
/// A customer-sealed (SSE-C) object of one segment is copied as stored, with
/// its key recorded for the new blob; multi-segment SSE-C objects are skipped.
pub struct ReplicationJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    pub factor: u32,
    pub period: Duration,
    /// Objects looked at per cycle.
    pub batch: u32,
    /// The last object id handled, so that objects that cannot be copied now
    /// (no room) do not block the ones after them.
    cursor: Mutex<String>,
    /// Time of the digest rows written for new copies, and of health checks.
    pub clock: Clock,
    /// How long a backend's breaker must have been open in some data plane
    /// before its copies stop counting. Default 300 s.
    pub unhealthy_after: Duration,
    /// Breaker reports older than this are ignored (a data plane that
    /// stopped reporting). Default 60 s; three report periods is usual.
    pub health_window: Duration,
}

impl ReplicationJob {
    pub fn new(
        store: Arc<dyn MetaStore>,
        cp: Arc<dyn ControlPlane>,
        backends: Backends,
        factor: u32,
        period: Duration,
    ) -> Self {
        ReplicationJob {
            store,
            cp,
            backends,
            factor,
            period,
            batch: 32,
            cursor: Mutex::new(String::new()),
            clock: system_clock(),
            unhealthy_after: Duration::from_secs(300),
            health_window: Duration::from_secs(60),
        }
    }

    /// Backends whose copies do not count now.
    async fn unhealthy(&self) -> Result<Vec<String>, String> {
        let now = (self.clock)();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        (self.store)
            .unhealthy_backends(
                now.saturating_sub(ms(self.unhealthy_after)),
                now.saturating_sub(ms(self.health_window)),
            )
            .await
            .map_err(|e| format!("read backend health: {e}"))
    }

    /// Which copy of `rec` to copy from: the first whose backends are all
    /// configured and that is not sealed under a customer key, or else a
    /// single-segment customer-sealed copy (copied raw).
    fn source(&self, rec: &ObjectRecord, unhealthy: &[String]) -> Option<Source> {
        let readable = |segs: &[Segment]| {
            segs.iter()
                .all(|s| self.backends.get(&s.backend_id).is_some() && !unhealthy.contains(&s.backend_id))
        };
        let copies: Vec<&[Segment]> = all_copies(rec).collect();
        if copies.iter().any(|c| is_encoded_copy(c)) {
            // A delta container or a compressed reference is copied as stored,
            // with its blob facts (codec, reference, key).
            return copies
                .iter()
                .find(|c| c.len() == 1 && is_encoded_copy(c) && readable(c))
                .map(|c| Source::Encoded(c[0].clone()));
        }
        if let Some(i) = (0..copies.len()).find(|&i| readable(copies[i]) && !is_customer_copy(copies[i])) {
            return Some(Source::Plain(i));
        }
        copies
            .iter()
            .find(|c| c.len() == 1 && readable(c))
            .map(|c| Source::Raw(c[0].clone()))
    }

    /// Makes one more copy of `rec`.
    async fn replicate(&self, listed: &ObjectRecord, unhealthy: &[String]) -> Result<Copied, String> {
        let rec = match self.cp.locate(&listed.bucket, &listed.key).await {
            Ok(r) if r.object_id == listed.object_id => r,
            Ok(_) | Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(Copied::Skipped),
            Err(e) => return Err(format!("locate {}/{}: {e}", listed.bucket, listed.key)),
        };
        let Some(source) = self.source(&rec, unhealthy) else {
            tracing::debug!(
                job = "replication", bucket = %rec.bucket, key = %rec.key, object = %rec.object_id,
                "no copy the worker can read (a multi-segment SSE-C object is not replicated)",
            );
            return Ok(Copied::Skipped);
        };
        // Not on a backend that holds any part of a copy already, nor on an
        // unhealthy one. A multipart object whose parts are spread over every
        // backend leaves no such backend: then the copy may go where some
        // parts of another copy are (it still survives the loss of any other
        // backend), but never where a whole copy is.
        let mut exclude: Vec<String> = all_copies(&rec).flatten().map(|s| s.backend_id.clone()).collect();
        exclude.extend(unhealthy.iter().cloned());
        let mut planned = (self.cp)
            .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &exclude)
            .await;
        if matches!(planned, Err(CpError::NoCapacity(_))) && all_copies(&rec).any(|c| c.len() > 1) {
            let mut whole: Vec<String> = all_copies(&rec)
                .filter(|c| c.len() == 1 || c.iter().all(|s| s.backend_id == c[0].backend_id))
                .filter_map(|c| c.first().map(|s| s.backend_id.clone()))
                .collect();
            whole.extend(unhealthy.iter().cloned());
            planned = (self.cp)
                .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &whole)
                .await;
        }
        let plan = match planned {
            Ok(p) => p,
            Err(CpError::NoCapacity(why)) => {
                tracing::debug!(job = "replication", bucket = %rec.bucket, key = %rec.key, %why, "no backend for another copy");
                return Ok(Copied::NoRoom);
            }
            Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(Copied::Skipped),
            Err(e) => return Err(format!("plan a copy: {e}")),
        };
        let segment = match source {
            Source::Plain(i) => write_copy(self.cp.as_ref(), &self.backends, &rec, i, &plan).await?,
            Source::Raw(seg) => copy_raw(self.cp.as_ref(), &self.backends, &rec, &seg, &plan).await?,
            Source::Encoded(seg) => match raw_copy(self.store.as_ref(), &self.backends, &rec, &seg, &plan).await {
                Ok(Some(seg)) => seg,
                Ok(None) => {
                    discard(self.cp.as_ref(), &self.backends, &plan).await;
                    return Ok(Copied::Skipped);
                }
                Err(e) => {
                    discard(self.cp.as_ref(), &self.backends, &plan).await;
                    return Err(e);
                }
            },
        };
        if let Err(e) = record_digest(self.store.as_ref(), &segment, (self.clock)()).await {
            discard(self.cp.as_ref(), &self.backends, &plan).await;
            return Err(e);
        }
        let attached = (self.store)
            .add_copy(&plan.intent_id, &rec.bucket, &rec.key, &rec.object_id, &[segment])
            .await
            .map_err(|e| format!("attach the copy: {e}"))?;
        COPIES_MADE.inc();
        let sick = all_copies(&rec)
            .filter(|c| c.iter().any(|s| unhealthy.contains(&s.backend_id)))
            .count();
        UNHEALTHY_SKIPPED.inc_by(sick as u64);
        tracing::info!(
            job = "replication", bucket = %rec.bucket, key = %rec.key, object = %rec.object_id,
            to = %plan.backend_id, bytes = rec.meta.size, attached, uncounted_unhealthy_copies = sick,
            "copied an object",
        );
        Ok(Copied::Yes)
    }
}

/// Where a copy's bytes come from.
enum Source {
    /// The verified plaintext of this copy.
    Plain(usize),
    /// The stored bytes of this customer-sealed single segment.
    Raw(Segment),
    /// The stored bytes of this encoded (delta or compressed) single segment.
    Encoded(Segment),
}

/// What became of one under-replicated object.
enum Copied {
    Yes,
    NoRoom,
    /// Gone, replaced, or not copyable by the worker.
    Skipped,
}

#[async_trait]
impl Job for ReplicationJob {
    fn name(&self) -> &'static str {
        "replication"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let after = self.cursor.lock().expect("cursor").clone();
        let unhealthy = self.unhealthy().await?;
        if !unhealthy.is_empty() {
            tracing::debug!(job = "replication", ?unhealthy, "copies on these backends do not count");
        }
        let todo = (self.store)
            .under_replicated_healthy(self.factor, &after, self.batch, &unhealthy)
            .await
            .map_err(|e| format!("list under-replicated objects: {e}"))?;
        let Some(last) = todo.last() else {
            self.cursor.lock().expect("cursor").clear();
            return Ok(Outcome::Idle);
        };
        *self.cursor.lock().expect("cursor") = last.object_id.clone();
        let (mut copied, mut no_room, mut failed) = (0, 0, 0);
        let mut first_error = None;
        for rec in &todo {
            match self.replicate(rec, &unhealthy).await {
                Ok(Copied::Yes) => copied += 1,
                Ok(Copied::NoRoom) => no_room += 1,
                Ok(Copied::Skipped) => {}
                Err(e) => {
                    tracing::warn!(job = "replication", object = %rec.object_id, error = %e, "copy failed; will retry");
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        tracing::info!(
            job = "replication",
            looked_at = todo.len(),
            copied,
            no_room,
            failed,
            "replication cycle"
        );
        match first_error {
            Some(e) if copied == 0 => Err(e),
            _ if copied > 0 => Ok(Outcome::Busy),
            _ => Ok(Outcome::Throttled),
        }
    }
}

#[cfg(test)]
#[path = "replication_tests.rs"]
mod tests;
