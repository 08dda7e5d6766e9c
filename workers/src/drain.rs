//! Drain: moves every copy off the backends whose persisted state is
//! `draining`, then marks them `drained`. The state lives in the metadata
//! store (`strata backends drain|undrain`), so a drain survives restarts of
//! every role and resumes from its saved cursor.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use strata_backend::Backends;
use strata_core::{ControlPlane, CpError, ObjectRecord};
use strata_store::{BackendState, BackendStateRecord, JobProgress, MetaStore};

use crate::blobcopy::all_copies;
use crate::mover::{Moved, move_copy};
use crate::{Clock, Job, Outcome, system_clock};

use crate::metrics::{
    BACKEND_STATE, DRAIN_REMAINING_BYTES as REMAINING_BYTES, DRAIN_REMAINING_OBJECTS as REMAINING_OBJECTS,
};

use strata_core::drain_progress_name as progress_name;

/// Sets `strata_backend_state` for every configured backend from `states`.
pub fn export_states(backends: &Backends, states: &[BackendStateRecord]) {
    for b in backends.all() {
        let current = (states.iter().find(|s| s.backend_id == b.id())).map_or(BackendState::Active, |s| s.state);
        for st in BackendState::ALL {
            BACKEND_STATE
                .with_label_values(&[b.id(), st.as_str()])
                .set(i64::from(st == current));
        }
    }
}

/// Moves the copies off draining backends, `batch` objects per backend and
/// cycle, `concurrency` objects at a time.
///
/// For each copy that has a segment on the draining backend, the control
/// plane chooses a target like any write (draining backends and the
/// object's other holders excluded); the copy's verified plaintext is
/// streamed there (encoded or customer-sealed single segments are copied as
/// stored, with their blob facts), and `replace_copy` swaps it in by
/// compare-and-set, queueing the old blob for cleanup. An object replaced
/// meanwhile loses nothing: the new blob is queued instead. When no other
/// backend has room but the object has a copy elsewhere, the draining copy
/// is dropped (by compare-and-set, never the last copy). Parts of open
/// multipart uploads are not moved: they leave with the upload (completed,
/// aborted or cleaned up as stale), and `drained` waits for them.
pub struct DrainJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    pub period: Duration,
    pub batch: u32,
    pub concurrency: usize,
    pub clock: Clock,
}

/// What one cycle did for one backend.
#[derive(Default)]
struct Tally {
    moved: u64,
    bytes: u64,
    dropped: u64,
    no_room: u64,
    skipped: u64,
    failed: u64,
    first_error: Option<String>,
}

impl DrainJob {
    pub fn new(store: Arc<dyn MetaStore>, cp: Arc<dyn ControlPlane>, backends: Backends, period: Duration) -> Self {
        DrainJob {
            store,
            cp,
            backends,
            period,
            batch: 64,
            concurrency: 4,
            clock: system_clock(),
        }
    }

    /// Moves every copy of `listed` that touches `backend`.
    async fn drain_object(
        &self,
        listed: &ObjectRecord,
        backend: &str,
        avoid: &[String],
    ) -> Result<(Moved, u64), String> {
        let rec = match self.cp.locate(&listed.bucket, &listed.key).await {
            Ok(r) if r.object_id == listed.object_id => r,
            Ok(_) | Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok((Moved::Skipped, 0)),
            Err(e) => return Err(format!("locate {}/{}: {e}", listed.bucket, listed.key)),
        };
        // Copies are moved one at a time, re-reading the record in between
        // (a drop renumbers the later copies).
        let mut rec = rec;
        let mut last = Moved::Skipped;
        for _ in 0..=rec.copies.len() {
            let Some(index) = all_copies(&rec).position(|c| c.iter().any(|s| s.backend_id == backend)) else {
                break;
            };
            last = move_copy(
                self.store.as_ref(),
                self.cp.as_ref(),
                &self.backends,
                &rec,
                index,
                avoid,
                true,
                (self.clock)(),
            )
            .await?;
            if !matches!(last, Moved::Swapped | Moved::Dropped) {
                break;
            }
            rec = match self.cp.locate(&rec.bucket, &rec.key).await {
                Ok(r) if r.object_id == listed.object_id => r,
                _ => break,
            };
        }
        Ok((last, rec.meta.size))
    }

    /// One batch of the drain of `backend`; returns whether work remains.
    async fn drain_backend(&self, backend: &str, avoid: &[String]) -> Result<bool, String> {
        let name = progress_name(backend);
        let now = (self.clock)();
        let mut progress = (self.store.get_job(&name).await)
            .map_err(|e| format!("read drain progress: {e}"))?
            .filter(|p| p.state == "running")
            .unwrap_or(JobProgress {
                name: name.clone(),
                state: "running".into(),
                ..Default::default()
            });
        let todo = (self.store)
            .objects_on_backend(backend, &progress.cursor, self.batch)
            .await
            .map_err(|e| format!("list objects on {backend}: {e}"))?;
        let mut tally = Tally::default();
        let results: Vec<_> = futures::stream::iter(todo.iter().cloned())
            .map(|rec| async move {
                let r = self.drain_object(&rec, backend, avoid).await;
                (rec, r)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for (rec, r) in results {
            match r {
                Ok((Moved::Swapped, size)) => {
                    tally.moved += 1;
                    tally.bytes += size;
                }
                Ok((Moved::Dropped, _)) => tally.dropped += 1,
                Ok((Moved::NoRoom, _)) => tally.no_room += 1,
                Ok((Moved::Skipped, _)) => tally.skipped += 1,
                Err(e) => {
                    tracing::warn!(job = "drain", backend, object = %rec.object_id, error = %e, "move failed; will retry");
                    tally.failed += 1;
                    tally.first_error.get_or_insert(e);
                }
            }
        }
        let holdings =
            (self.store.backend_holdings(backend).await).map_err(|e| format!("holdings of {backend}: {e}"))?;
        REMAINING_OBJECTS
            .with_label_values(&[backend])
            .set(holdings.objects as i64);
        REMAINING_BYTES
            .with_label_values(&[backend])
            .set(holdings.segment_bytes as i64);
        progress.cursor = todo.last().map(|r| r.object_id.clone()).unwrap_or_default();
        progress.done += tally.moved + tally.dropped;
        progress.total = progress.done + holdings.objects;
        progress.errors += tally.failed;
        let finished = holdings.segments == 0 && holdings.parts == 0;
        if finished {
            let rec = BackendStateRecord {
                backend_id: backend.to_owned(),
                state: BackendState::Drained,
                since_ms: now,
                changed_by: "job:drain".into(),
                reason: "every copy moved".into(),
            };
            // Only while still draining: an undrain in between wins.
            if (self.store.set_backend_state(&rec, &[BackendState::Draining]).await)
                .map_err(|e| format!("mark {backend} drained: {e}"))?
            {
                progress.state = "done".into();
                tracing::info!(job = "drain", backend, moved = progress.done, "backend drained");
            }
        }
        progress.detail = format!(
            "remaining {} objects, {} bytes, {} multipart parts; last cycle moved {} ({} bytes), dropped {}, no room {}, failed {}",
            holdings.objects,
            holdings.segment_bytes,
            holdings.parts,
            tally.moved,
            tally.bytes,
            tally.dropped,
            tally.no_room,
            tally.failed
        );
        progress.updated_ms = now;
        (self.store.put_job(&progress).await).map_err(|e| format!("save drain progress: {e}"))?;
        tracing::info!(
            job = "drain",
            backend,
            moved = tally.moved,
            bytes = tally.bytes,
            dropped = tally.dropped,
            no_room = tally.no_room,
            skipped = tally.skipped,
            failed = tally.failed,
            remaining_objects = holdings.objects,
            remaining_bytes = holdings.segment_bytes,
            "drain cycle",
        );
        if let Some(e) = tally.first_error
            && tally.moved + tally.dropped == 0
        {
            return Err(e);
        }
        // A full pass that moved nothing waits for the next period.
        Ok(!finished && (tally.moved + tally.dropped > 0 || !todo.is_empty()))
    }
}

#[async_trait]
impl Job for DrainJob {
    fn name(&self) -> &'static str {
        "drain"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let states = (self.store.backend_states().await).map_err(|e| format!("read backend states: {e}"))?;
        export_states(&self.backends, &states);
        // Never move to a backend that takes no writes, even if a control
        // plane's cached view of the states is a moment old.
        let avoid: Vec<String> = (states.iter())
            .filter(|s| !s.state.takes_writes())
            .map(|s| s.backend_id.clone())
            .collect();
        let mut busy = false;
        let mut first_error = None;
        for s in states.iter().filter(|s| s.state == BackendState::Draining) {
            match self.drain_backend(&s.backend_id, &avoid).await {
                Ok(more) => busy |= more,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !busy => Err(e),
            _ if busy => Ok(Outcome::Busy),
            _ => Ok(Outcome::Idle),
        }
    }
}
