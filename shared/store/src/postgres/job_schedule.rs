//! The jobs' shared schedule (`job_schedule`) and their cluster-wide locks:
//! a session advisory lock per job, held for one cycle on a dedicated
//! connection of its own (outside the pool, so that jobs holding locks can
//! never starve the pool their own work needs). The schedule is job bookkeeping, not a catalog decision, so it
//! is written outside the leader's write fence.

use async_trait::async_trait;
use sqlx::{Connection, PgConnection};
use strata_core::CpResult;

use super::{PgStore, db};
use crate::job_schedule::{JobLock, JobSchedule, SCHEDULE_COLUMNS, ScheduleRow, as_i64, schedule_from_row};

/// The advisory-lock key of a job: in the same 64-bit space as the
/// transaction locks (`advisory_lock`), under its own scope.
const LOCK_KEY: &str = "hashtextextended('job:' || $1, 0)";

/// A held job lock. Dropped unreleased (a cancelled cycle), its connection
/// is dropped too, which ends the session and with it the lock.
struct PgJobLock {
    conn: Option<PgConnection>,
    name: String,
}

#[async_trait]
impl JobLock for PgJobLock {
    async fn release(mut self: Box<Self>) -> CpResult<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let sql = format!("SELECT pg_advisory_unlock({LOCK_KEY})");
        let released: Result<bool, _> = sqlx::query_scalar(&sql).bind(&self.name).fetch_one(&mut conn).await;
        // Closing the session frees the lock in any case.
        let _ = conn.close().await;
        match released {
            Ok(true) => Ok(()),
            Ok(false) => Err(strata_core::CpError::Internal(format!(
                "the lock of job `{}` was not held at release",
                self.name
            ))),
            Err(e) => Err(db(e)),
        }
    }
}

impl PgStore {
    pub(super) async fn try_job_lock_impl(&self, name: &str) -> CpResult<Option<Box<dyn JobLock>>> {
        let options = self.pool.connect_options();
        let mut conn = PgConnection::connect_with(&options).await.map_err(db)?;
        let sql = format!("SELECT pg_try_advisory_lock({LOCK_KEY})");
        // On an error the session may or may not hold the lock: dropping the
        // connection ends it.
        let got: bool = sqlx::query_scalar(&sql)
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(db)?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(Box::new(PgJobLock {
            conn: Some(conn),
            name: name.to_owned(),
        })))
    }

    pub(super) async fn get_job_schedule_impl(&self, name: &str) -> CpResult<Option<JobSchedule>> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM job_schedule WHERE name = $1");
        let row: Option<ScheduleRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(schedule_from_row))
    }

    pub(super) async fn list_job_schedules_impl(&self) -> CpResult<Vec<JobSchedule>> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM job_schedule ORDER BY name");
        let rows: Vec<ScheduleRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.into_iter().map(schedule_from_row).collect())
    }

    pub(super) async fn put_job_schedule_impl(&self, s: &JobSchedule) -> CpResult<()> {
        sqlx::query(
            "INSERT INTO job_schedule (name, state, holder, next_run_ms, last_run_ms, last_success_ms, last_error, \
             consecutive_failures, runs, errors, control, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', $11) \
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
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(super) async fn set_job_control_impl(&self, name: &str, control: &str, now_ms: i64) -> CpResult<bool> {
        let done = sqlx::query("UPDATE job_schedule SET control = $1, updated_ms = $2 WHERE name = $3")
            .bind(control)
            .bind(now_ms)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
