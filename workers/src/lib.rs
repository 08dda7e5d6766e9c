//! The worker role: a [`Job`] trait and a [`Runner`] that drives jobs on the
//! schedule the workers share in the database (each cycle runs once across
//! them, under the job's lock; see docs/workers.md), the worker's HTTP
//! ([`http`]), and the jobs themselves: [`StaleMultipartJob`] aborts
//! abandoned multipart uploads, [`LifecycleJob`] expires objects by prefix
//! and age, [`CleanupJob`] deletes
//! obsolete bytes from the durable cleanup queue, [`ReaperJob`] resolves write
//! intents that were never committed, [`ReplicationJob`] copies objects to
//! further backends, [`RewrapJob`] moves data keys under the primary master
//! key, [`IntegrityJob`] verifies blobs against their digests and repairs
//! corrupt copies, and [`RewriteJob`] seals or opens existing blobs when the
//! encryption policy changes, [`DeltaGcJob`] frees delta-compression
//! references no object needs any more, [`DeltaCompactJob`] recompresses them
//! at a high level. [`write_copy`] is their shared way of writing
//! a new blob from a verified copy.

mod blobcopy;
mod cleanup;
mod delta_compact;
mod delta_gc;
mod drain;
#[cfg(test)]
mod drain_tests;
#[cfg(test)]
mod expire_tests;
pub mod http;
mod integrity;
#[cfg(test)]
mod jobs_tests;
mod lifecycle;
mod metrics;
mod mover;
mod multipart_gc;
mod overrep;
mod reaper;
mod rebalance;
mod reconcile;
mod replication;
mod rewrap;
mod rewrite;
mod runner;
#[cfg(test)]
mod runner_tests;
#[cfg(test)]
mod testkit;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use blobcopy::{copy_raw, write_copy};
pub use cleanup::CleanupJob;
pub use delta_compact::DeltaCompactJob;
pub use delta_gc::DeltaGcJob;
pub use drain::{DrainJob, export_states};
pub use integrity::{IntegrityJob, Readable};
pub use lifecycle::LifecycleJob;
pub use multipart_gc::StaleMultipartJob;
pub use overrep::OverReplicationJob;
pub use reaper::ReaperJob;
pub use rebalance::RebalanceJob;
pub use reconcile::ReconcileJob;
pub use replication::ReplicationJob;
pub use rewrap::RewrapJob;
pub use rewrite::{RewriteJob, RewriteKind, SealPolicy};
pub use runner::Runner;
pub use strata_core::drain_progress_name;

/// The current time in Unix milliseconds. Jobs take one so that tests can move
/// time forward instead of sleeping.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// What a job's cycle achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Work was done and more may be waiting: run again soon.
    Busy,
    /// Nothing to do until the next period.
    Idle,
    /// Held back by a limit (quota, rate, lock held elsewhere).
    Throttled,
    /// The job has finished for good.
    Done,
}

/// A background job. `run_once` must be cancel-safe: the runner drops it at
/// shutdown and when an operator cancels the job. Its state, as the status
/// API shows it, is `idle`, `running`, `failing`, `cancelled` or `done`.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Stable name, used in logs, metrics and status.
    fn name(&self) -> &'static str;
    /// Time between cycles when the job is idle.
    fn period(&self) -> Duration;
    /// One cycle of work.
    async fn run_once(&self) -> Result<Outcome, String>;
}
