//! The jobs' shared schedule (`job_schedule`). SQLite is opened by one
//! process, so a job's lock is always granted.

use strata_core::CpResult;

use super::{SqliteStore, db};
use crate::job_schedule::{JobSchedule, SCHEDULE_COLUMNS, ScheduleRow, as_i64, schedule_from_row};

impl SqliteStore {
    pub(super) async fn get_job_schedule_impl(&self, name: &str) -> CpResult<Option<JobSchedule>> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM job_schedule WHERE name = ?");
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
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO job_schedule (name, state, holder, next_run_ms, last_run_ms, last_success_ms, last_error, \
             consecutive_failures, runs, errors, control, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?) \
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
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn set_job_control_impl(&self, name: &str, control: &str, now_ms: i64) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE job_schedule SET control = ?, updated_ms = ? WHERE name = ?")
            .bind(control)
            .bind(now_ms)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
