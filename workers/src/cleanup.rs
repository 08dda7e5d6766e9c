//! Deletes obsolete bytes listed in the durable cleanup queue.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use strata_backend::{BackendError, Backends};
use strata_store::{CleanupClaim, MetaStore};

use crate::{Clock, Job, Outcome, system_clock};

/// Deletions in flight at once within a batch.
const CONCURRENCY: usize = 8;

/// Drains the cleanup queue: rows whose bytes the data plane could not delete
/// right after a commit (crash, backend error) or never got to.
///
/// Each cycle claims a batch for `lease` (so concurrent cleaners never share a
/// row, and a crashed cleaner's rows come back when the lease ends), deletes
/// each blob from its backend (a blob already gone counts as deleted),
/// acknowledges the successes in one call and records each failure, which
/// retries it with an exponential backoff and dead-letters it after
/// `max_attempts`. A row naming a backend that is not configured fails like a
/// backend error, so it ends in the dead letter table rather than being
/// dropped with its bytes possibly still stored.
pub struct CleanupJob {
    pub store: Arc<dyn MetaStore>,
    pub backends: Backends,
    /// How long a claimed row stays reserved; longer than one batch can take.
    pub lease: Duration,
    /// Failed attempts before a row moves to the dead letter table.
    pub max_attempts: u32,
    /// Rows claimed per cycle.
    pub batch: u32,
    /// Pause between cycles when the queue is drained.
    pub period: Duration,
    pub clock: Clock,
}

impl CleanupJob {
    /// A job with the defaults: lease 10 min, 8 attempts, batches of 100,
    /// every 5 s, on the system clock.
    pub fn new(store: Arc<dyn MetaStore>, backends: Backends) -> CleanupJob {
        CleanupJob {
            store,
            backends,
            lease: Duration::from_secs(600),
            max_attempts: 8,
            batch: 100,
            period: Duration::from_secs(5),
            clock: system_clock(),
        }
    }

    /// Deletes one claimed blob; `Err` says why it could not.
    async fn delete(&self, claim: &CleanupClaim) -> Result<(), String> {
        let item = &claim.item;
        let Some(backend) = self.backends.get(&item.backend_id) else {
            return Err(format!(
                "unknown backend id `{}`: it is not in the configuration",
                item.backend_id
            ));
        };
        match backend.delete(&item.backend_key).await {
            Ok(()) | Err(BackendError::NotFound) => Ok(()),
            Err(e) => Err(format!("backend `{}`: {e}", item.backend_id)),
        }
    }
}

#[async_trait]
impl Job for CleanupJob {
    fn name(&self) -> &'static str {
        "cleanup"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let now = (self.clock)();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let claims = self
            .store
            .claim_cleanup(now, lease_ms, self.batch)
            .await
            .map_err(|e| format!("claim cleanup rows: {e}"))?;
        if claims.is_empty() {
            // Idle: forget the facts of blobs nothing refers to any more
            // (deleted ones, and those of writes that were aborted).
            let hour_ago = now.saturating_sub(3_600_000);
            match self.store.prune_blobs(hour_ago, 1000).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(job = "cleanup", pruned = n, "forgot the facts of deleted blobs"),
                Err(e) => tracing::warn!(job = "cleanup", error = %e, "could not prune blob facts"),
            }
            return Ok(Outcome::Idle);
        }
        let claimed = claims.len();
        let results: Vec<(CleanupClaim, Result<(), String>)> = futures::stream::iter(claims)
            .map(|c| async move {
                let r = self.delete(&c).await;
                (c, r)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;

        let mut done = Vec::new();
        let mut failed = Vec::new();
        for (claim, result) in results {
            match result {
                Ok(()) => done.push(claim.item.id),
                Err(e) => failed.push((claim, e)),
            }
        }
        self.store
            .ack_cleanup(&done)
            .await
            .map_err(|e| format!("acknowledge {} cleanup rows: {e}", done.len()))?;
        let now = (self.clock)();
        let mut dead = 0u32;
        for (claim, error) in &failed {
            let item = &claim.item;
            let gave_up = self
                .store
                .fail_cleanup(item.id, error, now, self.max_attempts)
                .await
                .map_err(|e| format!("record a failed cleanup: {e}"))?;
            if gave_up {
                dead += 1;
                tracing::error!(
                    job = "cleanup", id = item.id, backend = %item.backend_id, key = %item.backend_key,
                    attempts = claim.attempts + 1, %error,
                    "giving up on deleting obsolete bytes; moved to the dead letter table",
                );
            } else {
                tracing::warn!(
                    job = "cleanup", id = item.id, backend = %item.backend_id, key = %item.backend_key,
                    attempts = claim.attempts + 1, %error, "could not delete obsolete bytes; will retry",
                );
            }
        }
        tracing::info!(
            job = "cleanup",
            claimed,
            deleted = done.len(),
            failed = failed.len(),
            dead_lettered = dead,
            "cleanup cycle"
        );
        if claimed >= self.batch as usize {
            Ok(Outcome::Busy)
        } else {
            Ok(Outcome::Idle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::kit;

    #[tokio::test]
    async fn cleanup_deletes_bytes_and_acks() {
        let k = kit().await;
        let a = k.put_bytes(b"hello").await;
        let b = k.put_bytes(b"world!").await;
        k.queue_cleanup("disk-1", &a, 5).await;
        k.queue_cleanup("disk-1", &b, 6).await;
        // Already gone from the backend: deleting it still succeeds.
        k.backends.get("disk-1").unwrap().delete(&b).await.unwrap();
        assert_eq!(k.orphan_bytes("disk-1").await, 11);

        let mut job = CleanupJob::new(k.store.clone(), k.backends.clone());
        job.clock = k.clock.clone();
        job.batch = 2;
        // A full batch: there may be more.
        assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
        assert!(!k.exists(&a).await);
        assert!(k.store.pending_cleanup(10).await.unwrap().is_empty());
        assert_eq!(k.orphan_bytes("disk-1").await, 0);
        k.advance(job.lease.as_millis() as i64 + 1);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert_eq!(k.store.dead_letter_count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn cleanup_unknown_backend_retries_then_dead_letters() {
        let k = kit().await;
        // Bytes recorded on a backend that is no longer configured.
        k.queue_cleanup("gone", "0123456789abcdef0123456789abcdef", 42).await;
        let mut job = CleanupJob::new(k.store.clone(), k.backends.clone());
        job.clock = k.clock.clone();
        job.max_attempts = 2;

        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert_eq!(k.store.dead_letter_count().await.unwrap(), 0);
        assert_eq!(k.store.pending_cleanup(10).await.unwrap().len(), 1);
        // Backing off: nothing is due before 2 s.
        k.advance(1_999);
        assert!(k.store.claim_cleanup(k.now(), 1, 10).await.unwrap().is_empty());
        // The second attempt fails for good.
        k.advance(1);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert_eq!(k.store.dead_letter_count().await.unwrap(), 1);
        assert!(k.store.pending_cleanup(10).await.unwrap().is_empty());
        // Its bytes may still exist: they stay counted as orphaned.
        assert_eq!(k.orphan_bytes("gone").await, 42);
        k.advance(3_600_000);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert_eq!(k.store.dead_letter_count().await.unwrap(), 1);
    }
}
