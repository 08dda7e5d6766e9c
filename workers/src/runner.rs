//! The [`Runner`]: drives each job on the schedule shared by every worker.
//! A cycle is due when the job's `job_schedule` row says so; the worker that
//! takes the job's lock first re-reads the row under the lock, runs the
//! cycle, and writes the outcome and the next due time before it releases
//! the lock. Every other worker then finds the cycle done, so each cycle runs
//! once across the cluster. An operator's `cancelled` control interrupts a
//! running cycle and holds the job until it is started again.

use std::sync::Arc;
use std::time::Duration;

use strata_store::{CONTROL_CANCELLED, JobLock, JobSchedule, MetaStore};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::metrics as m;
use crate::{Clock, Job, Outcome, system_clock};

/// How often a running cycle looks for an operator's cancellation.
const CONTROL_POLL: Duration = Duration::from_millis(500);

/// Runs jobs, each in its own task, until the shutdown signal flips to `true`.
pub struct Runner {
    jobs: Vec<Arc<dyn Job>>,
    store: Arc<dyn MetaStore>,
    worker: String,
    clock: Clock,
}

/// How a cycle this worker ran ended.
enum Ended {
    Finished(Result<Outcome, String>),
    Cancelled,
    Shutdown,
}

impl Runner {
    /// A runner that records its jobs in `store` as `worker` (shown as the
    /// holder of the cycles it runs).
    pub fn new(store: Arc<dyn MetaStore>, worker: impl Into<String>) -> Runner {
        Runner {
            jobs: Vec::new(),
            store,
            worker: worker.into(),
            clock: system_clock(),
        }
    }

    pub fn add(&mut self, job: Arc<dyn Job>) {
        self.jobs.push(job);
    }

    /// The jobs this runner drives: name and period.
    pub fn jobs(&self) -> Vec<(&'static str, Duration)> {
        self.jobs.iter().map(|j| (j.name(), j.period())).collect()
    }

    /// Every job's cluster-wide schedule and status.
    pub async fn status(&self) -> Result<Vec<JobSchedule>, String> {
        self.store.list_job_schedules().await.map_err(|e| e.to_string())
    }

    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut set = JoinSet::new();
        for job in &self.jobs {
            m::touch(job.name());
            let task = Task {
                job: job.clone(),
                store: self.store.clone(),
                worker: self.worker.clone(),
                clock: self.clock.clone(),
            };
            let stop = shutdown.clone();
            set.spawn(async move { task.drive(stop).await });
        }
        let _ = shutdown.wait_for(|s| *s).await;
        while set.join_next().await.is_some() {}
    }
}

/// One job on one worker.
struct Task {
    job: Arc<dyn Job>,
    store: Arc<dyn MetaStore>,
    worker: String,
    clock: Clock,
}

impl Task {
    fn name(&self) -> &'static str {
        self.job.name()
    }

    /// How long to wait before looking again when the cycle is not ours.
    fn poll(&self) -> Duration {
        (self.job.period() / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    async fn drive(&self, mut stop: watch::Receiver<bool>) {
        loop {
            let wait = match self.step(&stop).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(job = self.name(), error = %e, "job schedule unavailable");
                    self.job.period().min(Duration::from_secs(5))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    /// Runs the cycle if it is due and ours; returns how long to wait before
    /// the next look.
    async fn step(&self, stop: &watch::Receiver<bool>) -> Result<Duration, String> {
        let (name, now) = (self.name(), (self.clock)());
        let err = |e: strata_core::CpError| e.to_string();
        let row = self.store.get_job_schedule(name).await.map_err(err)?;
        if let Some(wait) = self.not_due(row.as_ref(), now) {
            return Ok(wait);
        }
        let Some(lock) = self.store.try_job_lock(name).await.map_err(err)? else {
            m::LOCK_SKIPPED.with_label_values(&[name]).inc();
            tracing::debug!(job = name, "another worker holds the lock; cycle skipped");
            return Ok(self.poll());
        };
        // Under the lock: another worker may have run this cycle meanwhile.
        let row = match self.store.get_job_schedule(name).await {
            Ok(row) => row,
            Err(e) => return release(lock, name, Err(err(e))).await,
        };
        let now = (self.clock)();
        if let Some(wait) = self.not_due(row.as_ref(), now) {
            return release(lock, name, Ok(wait)).await;
        }
        let mut s = row.unwrap_or_else(|| JobSchedule {
            name: name.into(),
            ..Default::default()
        });
        (s.state, s.holder, s.last_run_ms, s.updated_ms) = ("running".into(), self.worker.clone(), now, now);
        if let Err(e) = self.store.put_job_schedule(&s).await {
            return release(lock, name, Err(err(e))).await;
        }
        tracing::debug!(job = name, worker = %self.worker, "job cycle starts");
        let ended = self.run_cycle(stop.clone()).await;
        let wait = self.record(&mut s, ended);
        let saved = self.store.put_job_schedule(&s).await.map_err(err);
        release(lock, name, saved.map(|()| wait)).await
    }

    /// `Some(wait)` when this is no time to run the job: cancelled, done, or
    /// not yet due.
    fn not_due(&self, row: Option<&JobSchedule>, now: i64) -> Option<Duration> {
        let row = row?;
        if row.control == CONTROL_CANCELLED || row.state == "done" {
            return Some(self.poll().max(Duration::from_millis(500)));
        }
        let ahead = self.due_ms(row).saturating_sub(now);
        (ahead > 0).then(|| Duration::from_millis(ahead.unsigned_abs()).min(self.job.period()))
    }

    /// When the cycle is due. The row's `next_run_ms` was set with the period
    /// of whichever worker ran last; a worker configured with a shorter one
    /// (an operator lowered it and restarted) runs on its own period, counted
    /// from the end of that last cycle, with the same failure backoff.
    fn due_ms(&self, row: &JobSchedule) -> i64 {
        let backoff = if row.state == "failing" {
            1u32 << row.consecutive_failures.min(3)
        } else {
            1
        };
        let own = self.job.period() * backoff;
        let own_ms = i64::try_from(own.as_millis()).unwrap_or(i64::MAX);
        row.next_run_ms.min(row.updated_ms.saturating_add(own_ms))
    }

    /// One cycle, interrupted by shutdown or an operator's cancellation
    /// (`run_once` is cancel-safe).
    async fn run_cycle(&self, mut stop: watch::Receiver<bool>) -> Ended {
        let cancelled = async {
            loop {
                tokio::time::sleep(CONTROL_POLL).await;
                if let Ok(Some(r)) = self.store.get_job_schedule(self.name()).await
                    && r.control == CONTROL_CANCELLED
                {
                    return;
                }
            }
        };
        tokio::select! {
            r = self.job.run_once() => Ended::Finished(r),
            () = cancelled => Ended::Cancelled,
            _ = stop.wait_for(|s| *s) => Ended::Shutdown,
        }
    }

    /// Writes the cycle's outcome into `s`, with the next due time, and
    /// returns how long to wait before looking again.
    fn record(&self, s: &mut JobSchedule, ended: Ended) -> Duration {
        let (name, now, period) = (self.name(), (self.clock)(), self.job.period());
        s.updated_ms = now;
        let delay = match ended {
            Ended::Shutdown => {
                // Not a run: leave the cycle due for another worker.
                s.state = "idle".into();
                return Duration::ZERO;
            }
            Ended::Cancelled => {
                tracing::info!(job = name, "job cancelled by an operator");
                m::RUNS.with_label_values(&[name, "cancelled"]).inc();
                s.state = CONTROL_CANCELLED.into();
                s.next_run_ms = now;
                return self.poll();
            }
            Ended::Finished(Ok(o)) => {
                m::RUNS.with_label_values(&[name, outcome_label(o)]).inc();
                s.runs += 1;
                s.consecutive_failures = 0;
                s.last_success_ms = Some(now);
                m::LAST_SUCCESS.with_label_values(&[name]).set(now as f64 / 1000.0);
                s.state = if o == Outcome::Done { "done" } else { "idle" }.into();
                if o == Outcome::Busy { Duration::ZERO } else { period }
            }
            Ended::Finished(Err(e)) => {
                tracing::warn!(job = name, error = %e, "job cycle failed");
                m::RUNS.with_label_values(&[name, "error"]).inc();
                s.runs += 1;
                s.errors += 1;
                s.consecutive_failures += 1;
                s.last_error = Some(e);
                s.state = "failing".into();
                // Back off exponentially, capped at eight periods.
                period * (1u32 << s.consecutive_failures.min(3))
            }
        };
        m::CONSECUTIVE_FAILURES
            .with_label_values(&[name])
            .set(i64::try_from(s.consecutive_failures).unwrap_or(i64::MAX));
        s.next_run_ms = if s.state == "done" {
            i64::MAX
        } else {
            now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        };
        delay
    }
}

async fn release(lock: Box<dyn JobLock>, name: &str, r: Result<Duration, String>) -> Result<Duration, String> {
    if let Err(e) = lock.release().await {
        tracing::warn!(job = name, error = %e, "cannot release the job lock");
    }
    r
}

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Busy => "busy",
        Outcome::Idle => "idle",
        Outcome::Throttled => "throttled",
        Outcome::Done => "done",
    }
}
