//! The shared schedule and status of the background jobs (`job_schedule`):
//! one row per job, written by whichever worker ran the job's last cycle
//! while it held the job's lock, so every worker (and `strata jobs list`)
//! sees the cluster-wide picture and each cycle runs once, not once per
//! worker.

use async_trait::async_trait;
use strata_core::CpResult;

/// What a worker records about a job after each cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSchedule {
    pub name: String,
    /// `idle`, `running`, `failing`, `cancelled` or `done`.
    pub state: String,
    /// The worker that ran (or runs) the latest cycle.
    pub holder: String,
    /// The next cycle is due at this time (Unix ms); a worker that takes
    /// the lock earlier leaves the cycle alone.
    pub next_run_ms: i64,
    /// When the latest cycle started.
    pub last_run_ms: i64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u64,
    pub runs: u64,
    pub errors: u64,
    /// An operator's request: `cancelled` stops the job (a running cycle is
    /// interrupted) until it is started again; empty otherwise. Only
    /// [`crate::MetaStore::set_job_control`] writes it.
    pub control: String,
    pub updated_ms: i64,
}

/// The operator's `control` value that stops a job.
pub const CONTROL_CANCELLED: &str = "cancelled";

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
