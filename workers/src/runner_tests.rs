//! The runner against a real (SQLite) store: the shared schedule, status,
//! backoff, cancellation and shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use strata_store::{CONTROL_CANCELLED, JobSchedule, MetaStore, SqliteStore};
use tokio::sync::watch;

use crate::{Job, Outcome, Runner};

/// Fails once, is busy three times, then done.
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

/// Idle every cycle, after `work` of work.
struct Periodic {
    runs: AtomicU32,
    period: Duration,
    work: Duration,
}

impl Periodic {
    fn new(period_ms: u64, work_ms: u64) -> Arc<Periodic> {
        Arc::new(Periodic {
            runs: AtomicU32::new(0),
            period: Duration::from_millis(period_ms),
            work: Duration::from_millis(work_ms),
        })
    }
}

#[async_trait]
impl Job for Periodic {
    fn name(&self) -> &'static str {
        "periodic"
    }
    fn period(&self) -> Duration {
        self.period
    }
    async fn run_once(&self) -> Result<Outcome, String> {
        tokio::time::sleep(self.work).await;
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Idle)
    }
}

async fn store() -> Arc<dyn MetaStore> {
    Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap())
}

/// Runs `jobs` on a runner named `worker` for `ms`, then shuts it down.
async fn run_for(store: &Arc<dyn MetaStore>, worker: &str, jobs: Vec<Arc<dyn Job>>, ms: u64) {
    let mut runner = Runner::new(store.clone(), worker);
    for j in jobs {
        runner.add(j);
    }
    let (tx, rx) = watch::channel(false);
    let run = tokio::spawn(async move { runner.run(rx).await });
    tokio::time::sleep(Duration::from_millis(ms)).await;
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the runner stops at shutdown")
        .unwrap();
}

async fn row(store: &Arc<dyn MetaStore>, name: &str) -> JobSchedule {
    store.get_job_schedule(name).await.unwrap().expect("a schedule row")
}

#[tokio::test]
async fn runs_until_done_and_records_status() {
    let s = store().await;
    let job = Arc::new(Counting(AtomicU32::new(0)));
    // The failed first cycle backs off two periods (10 ms).
    run_for(&s, "w1", vec![job.clone()], 300).await;
    assert_eq!(job.0.load(Ordering::SeqCst), 5);
    let r = row(&s, "counting").await;
    assert_eq!((r.runs, r.errors, r.state.as_str()), (5, 1, "done"));
    assert_eq!((r.consecutive_failures, r.holder.as_str()), (0, "w1"));
    assert_eq!(r.last_error.as_deref(), Some("first cycle fails"));
    assert!(r.last_success_ms.is_some());
    // Done is final: another worker does not run it again.
    run_for(&s, "w2", vec![job.clone()], 100).await;
    assert_eq!(job.0.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_cycle_another_worker_ran_is_not_run_again() {
    let s = store().await;
    let a = Periodic::new(60_000, 0);
    run_for(&s, "w1", vec![a.clone()], 200).await;
    assert_eq!(a.runs.load(Ordering::SeqCst), 1);
    let first = row(&s, "periodic").await;
    assert_eq!(
        (first.runs, first.holder.as_str(), first.state.as_str()),
        (1, "w1", "idle")
    );
    assert!(first.next_run_ms >= first.last_run_ms + 59_000, "{first:?}");
    // A second worker on the same schedule finds the cycle done.
    let b = Periodic::new(60_000, 0);
    run_for(&s, "w2", vec![b.clone()], 200).await;
    assert_eq!(b.runs.load(Ordering::SeqCst), 0);
    assert_eq!(row(&s, "periodic").await.runs, 1);
}

#[tokio::test]
async fn a_shortened_period_applies_to_a_cycle_scheduled_with_the_longer_one() {
    let s = store().await;
    // A worker with a one-minute period ran the cycle and scheduled the next a minute on.
    let long = Periodic::new(60_000, 0);
    run_for(&s, "w1", vec![long.clone()], 200).await;
    assert_eq!(long.runs.load(Ordering::SeqCst), 1);
    // The operator lowers the period to 100 ms and restarts: the job runs on the new
    // period, not a minute later (the reaper of a restarted node waited out the old one).
    let short = Periodic::new(100, 0);
    run_for(&s, "w2", vec![short.clone()], 450).await;
    let n = short.runs.load(Ordering::SeqCst);
    assert!(n >= 2, "{n} cycles in 450 ms at a 100 ms period");
}

#[tokio::test]
async fn runs_once_per_period() {
    let s = store().await;
    let job = Periodic::new(100, 0);
    run_for(&s, "w1", vec![job.clone()], 1_050).await;
    // Cycles at 0, 100, ..., 1000 ms: 11, give or take scheduling.
    let n = job.runs.load(Ordering::SeqCst);
    assert!((9..=11).contains(&n), "{n} cycles in 1.05 s at a 100 ms period");
    assert_eq!(row(&s, "periodic").await.runs, u64::from(n));
}

#[tokio::test]
async fn an_operator_cancels_a_running_cycle_and_starts_it_again() {
    let s = store().await;
    let job = Periodic::new(50, 30_000);
    let mut runner = Runner::new(s.clone(), "w1");
    runner.add(job.clone());
    let (tx, rx) = watch::channel(false);
    let run = tokio::spawn(async move { runner.run(rx).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(row(&s, "periodic").await.state, "running");
    assert!(s.set_job_control("periodic", CONTROL_CANCELLED, 1).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let r = row(&s, "periodic").await;
    assert_eq!(
        (r.state.as_str(), r.runs, r.control.as_str()),
        ("cancelled", 0, "cancelled")
    );
    assert_eq!(job.runs.load(Ordering::SeqCst), 0);
    // Started again, it runs again.
    assert!(s.set_job_control("periodic", "", 2).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(row(&s, "periodic").await.state, "running");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
    // Shutdown interrupts the cycle without counting it, and leaves it due.
    let r = row(&s, "periodic").await;
    assert_eq!((r.state.as_str(), r.runs), ("idle", 0));
    assert!(r.next_run_ms <= r.updated_ms, "{r:?}");
}
