//! The worker role: a [`Job`] trait and a [`Runner`] that drives jobs on their
//! schedules until shutdown, and the jobs themselves: [`CleanupJob`] deletes
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
mod integrity;
#[cfg(test)]
mod jobs_tests;
mod metrics;
mod mover;
mod overrep;
mod reaper;
mod reconcile;
mod purge;
mod rebalance;
mod replication;
mod rewrap;
mod rewrite;
#[cfg(test)]
mod testkit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use blobcopy::{copy_raw, write_copy};
pub use cleanup::CleanupJob;
pub use delta_compact::DeltaCompactJob;
pub use delta_gc::DeltaGcJob;
pub use drain::{DrainJob, export_states, progress_name as drain_progress_name};
pub use integrity::{IntegrityJob, Readable};
pub use overrep::OverReplicationJob;
pub use reaper::ReaperJob;
pub use reconcile::ReconcileJob;
pub use purge::{PurgePreview, Removal, purge_token, remove_backend, sole_copy_examples, verify_purge_token};
pub use rebalance::RebalanceJob;
pub use replication::ReplicationJob;
pub use rewrap::RewrapJob;
pub use rewrite::{RewriteJob, RewriteKind, SealPolicy};

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

/// A background job. `run_once` must be cancel-safe: the runner drops it at shutdown.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Stable name, used in logs, metrics and status.
    fn name(&self) -> &'static str;
    /// Time between cycles when the job is idle.
    fn period(&self) -> Duration;
    /// One cycle of work.
    async fn run_once(&self) -> Result<Outcome, String>;
}

/// What the status API shows of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStatus {
    pub state: String,
    pub runs: u64,
    pub errors: u64,
    pub consecutive_failures: u64,
    pub last_error: Option<String>,
    pub last_success: Option<Instant>,
}

/// Runs jobs, each in its own task, until the shutdown signal flips to `true`.
#[derive(Default)]
pub struct Runner {
    jobs: Vec<Arc<dyn Job>>,
    status: Arc<Mutex<BTreeMap<&'static str, JobStatus>>>,
}

impl Runner {
    pub fn new() -> Runner {
        Runner::default()
    }

    pub fn add(&mut self, job: Arc<dyn Job>) {
        self.jobs.push(job);
    }

    /// A snapshot of every job's status.
    pub fn status(&self) -> BTreeMap<&'static str, JobStatus> {
        self.status.lock().expect("status lock").clone()
    }

    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut set = JoinSet::new();
        for job in &self.jobs {
            let job = job.clone();
            let status = self.status.clone();
            let mut stop = shutdown.clone();
            set.spawn(async move {
                loop {
                    let outcome = tokio::select! {
                        r = job.run_once() => r,
                        _ = stop.changed() => break,
                    };
                    let delay = record(&status, job.name(), &outcome, job.period());
                    if matches!(outcome, Ok(Outcome::Done)) {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => break,
                    }
                }
            });
        }
        let _ = shutdown.wait_for(|s| *s).await;
        while set.join_next().await.is_some() {}
    }
}

fn record(
    status: &Mutex<BTreeMap<&'static str, JobStatus>>,
    name: &'static str,
    outcome: &Result<Outcome, String>,
    period: Duration,
) -> Duration {
    let mut map = status.lock().expect("status lock");
    let s = map.entry(name).or_default();
    s.runs += 1;
    match outcome {
        Ok(o) => {
            s.state = format!("{o:?}").to_lowercase();
            s.consecutive_failures = 0;
            s.last_success = Some(Instant::now());
            if *o == Outcome::Busy { Duration::ZERO } else { period }
        }
        Err(e) => {
            tracing::warn!(job = name, error = %e, "job cycle failed");
            s.state = "failing".into();
            s.errors += 1;
            s.consecutive_failures += 1;
            s.last_error = Some(e.clone());
            // Back off exponentially, capped at ten periods.
            period * (1u32 << s.consecutive_failures.min(3) as u32).min(10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting(AtomicU32);

    #[async_trait]
    impl Job for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn period(&self) -> Duration {
            Duration::from_millis(5)
        }
        async fn run_once(&self) -> Result<Outcome, String> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => Err("first cycle fails".into()),
                1..=3 => Ok(Outcome::Busy),
                _ => Ok(Outcome::Done),
            }
        }
    }

    #[tokio::test]
    async fn runs_until_done_and_records_status() {
        let mut runner = Runner::new();
        let job = Arc::new(Counting(AtomicU32::new(0)));
        runner.add(job.clone());
        let (tx, rx) = watch::channel(false);
        let run = tokio::spawn(async move {
            runner.run(rx).await;
            runner
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(true).unwrap();
        let runner = run.await.unwrap();
        let st = &runner.status()["counting"];
        assert_eq!(job.0.load(Ordering::SeqCst), 5);
        assert_eq!((st.runs, st.errors, st.state.as_str()), (5, 1, "done"));
        assert_eq!(st.last_error.as_deref(), Some("first cycle fails"));
    }
}
