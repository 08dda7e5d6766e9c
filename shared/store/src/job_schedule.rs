//! The shared schedule and status of the background jobs (`job_schedule`):
//! one row per job, written by whichever worker ran the job's last cycle
//! while it held the job's lock, so every worker (and `strata jobs list`)
//! sees the cluster-wide picture and each cycle runs once, not once per
//! worker.

use async_trait::async_trait;
use strata_core::CpResult;

use crate::blobs::{JOB_COLUMNS, JobRow, counter, job_from_row};
use crate::metrics::timed;
use crate::sql::sql;
use crate::store::SqlBacked;
use crate::{JobProgress, Store};

pub use strata_core::{CONTROL_CANCELLED, JobSchedule};

/// A job's cluster-wide lock, held for one cycle. Dropping it without
/// [`JobLock::release`] also frees it (on PostgreSQL by closing the session).
#[async_trait]
pub trait JobLock: Send + Sync {
    async fn release(self: Box<Self>) -> CpResult<()>;
}

/// The lock of a store that only one process opens (SQLite): always granted.
pub struct Granted;

#[async_trait]
impl JobLock for Granted {
    async fn release(self: Box<Self>) -> CpResult<()> {
        Ok(())
    }
}

pub(crate) const SCHEDULE_COLUMNS: &str = "name, state, holder, next_run_ms, last_run_ms, last_success_ms, \
     last_error, consecutive_failures, runs, errors, control, updated_ms";

pub(crate) type ScheduleRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    i64,
    String,
    i64,
);

pub(crate) fn schedule_from_row(r: ScheduleRow) -> JobSchedule {
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    JobSchedule {
        name: r.0,
        state: r.1,
        holder: r.2,
        next_run_ms: r.3,
        last_run_ms: r.4,
        last_success_ms: r.5,
        last_error: r.6,
        consecutive_failures: count(r.7),
        runs: count(r.8),
        errors: count(r.9),
        control: r.10,
        updated_ms: r.11,
    }
}

/// A counter as the database stores it.
pub(crate) fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The progress of resumable admin jobs and the background jobs' shared
/// schedule. Both are job bookkeeping, not catalog decisions, so they are
/// written outside the leader's write fence.
#[async_trait]
pub trait Jobs: SqlBacked {
    /// The saved progress of job `name`.
    async fn get_job(&self, name: &str) -> CpResult<Option<JobProgress>> {
        timed("get_job", async {
            let row: Option<JobRow> = sql(format!("SELECT {JOB_COLUMNS} FROM jobs_progress WHERE name = ?"))
                .bind(name)
                .fetch_optional(&mut self.db().conn().await?)
                .await?;
            Ok(row.map(job_from_row))
        })
        .await
    }

    /// Saves (inserts or replaces) a job's progress.
    async fn put_job(&self, job: &JobProgress) -> CpResult<()> {
        timed("put_job", async {
            self.db()
                .write_one(
                    sql(
                        "INSERT INTO jobs_progress (name, state, cursor, done, total, errors, detail, updated_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET \
                 state = excluded.state, cursor = excluded.cursor, done = excluded.done, total = excluded.total, \
                 errors = excluded.errors, detail = excluded.detail, updated_ms = excluded.updated_ms",
                    )
                    .bind(&job.name)
                    .bind(&job.state)
                    .bind(&job.cursor)
                    .bind(counter(job.done)?)
                    .bind(counter(job.total)?)
                    .bind(counter(job.errors)?)
                    .bind(&job.detail)
                    .bind(job.updated_ms),
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Every job's progress, sorted by name.
    async fn list_jobs(&self) -> CpResult<Vec<JobProgress>> {
        timed("list_jobs", async {
            let rows: Vec<JobRow> = sql(format!("SELECT {JOB_COLUMNS} FROM jobs_progress ORDER BY name"))
                .fetch_all(&mut self.db().conn().await?)
                .await?;
            Ok(rows.into_iter().map(job_from_row).collect())
        })
        .await
    }

    /// The shared schedule and status of job `name`, if it ever ran.
    async fn get_job_schedule(&self, name: &str) -> CpResult<Option<JobSchedule>> {
        timed("get_job_schedule", async {
            let row: Option<ScheduleRow> = sql(format!("SELECT {SCHEDULE_COLUMNS} FROM job_schedule WHERE name = ?"))
                .bind(name)
                .fetch_optional(&mut self.db().conn().await?)
                .await?;
            Ok(row.map(schedule_from_row))
        })
        .await
    }

    /// Records a job's schedule and status (every field but `control`).
    async fn put_job_schedule(&self, s: &JobSchedule) -> CpResult<()> {
        timed("put_job_schedule", async {
            sql(
                "INSERT INTO job_schedule (name, state, holder, next_run_ms, last_run_ms, last_success_ms, \
                 last_error, consecutive_failures, runs, errors, control, updated_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?) \
                 ON CONFLICT (name) DO UPDATE SET state = excluded.state, holder = excluded.holder, \
                 next_run_ms = excluded.next_run_ms, last_run_ms = excluded.last_run_ms, \
                 last_success_ms = excluded.last_success_ms, last_error = excluded.last_error, \
                 consecutive_failures = excluded.consecutive_failures, runs = excluded.runs, \
                 errors = excluded.errors, updated_ms = excluded.updated_ms",
            )
            .bind(&s.name)
            .bind(&s.state)
            .bind(&s.holder)
            .bind(s.next_run_ms)
            .bind(s.last_run_ms)
            .bind(s.last_success_ms)
            .bind(&s.last_error)
            .bind(as_i64(s.consecutive_failures))
            .bind(as_i64(s.runs))
            .bind(as_i64(s.errors))
            .bind(s.updated_ms)
            .execute(&mut self.db().write_conn().await?)
            .await?;
            Ok(())
        })
        .await
    }

    /// Every job's schedule and status, by name.
    async fn list_job_schedules(&self) -> CpResult<Vec<JobSchedule>> {
        timed("list_job_schedules", async {
            let rows: Vec<ScheduleRow> = sql(format!("SELECT {SCHEDULE_COLUMNS} FROM job_schedule ORDER BY name"))
                .fetch_all(&mut self.db().conn().await?)
                .await?;
            Ok(rows.into_iter().map(schedule_from_row).collect())
        })
        .await
    }

    /// Sets the operator's `control` of job `name` (`cancelled` or empty);
    /// `false` when the job never ran.
    async fn set_job_control(&self, name: &str, control: &str, now_ms: i64) -> CpResult<bool> {
        timed("set_job_control", async {
            let done = sql("UPDATE job_schedule SET control = ?, updated_ms = ? WHERE name = ?")
                .bind(control)
                .bind(now_ms)
                .bind(name)
                .execute(&mut self.db().write_conn().await?)
                .await?;
            Ok(done > 0)
        })
        .await
    }
}

impl<D: 'static> Jobs for Store<D> {}
