//! Progress of resumable admin jobs (the `jobs_progress` table).

use strata_core::CpResult;

use super::{PgStore, db};
use crate::JobProgress;
use crate::blobs::{JOB_COLUMNS, JobRow, counter, job_from_row};

impl PgStore {
    pub(super) async fn get_job_impl(&self, name: &str) -> CpResult<Option<JobProgress>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs_progress WHERE name = $1");
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(job_from_row))
    }

    pub(super) async fn put_job_impl(&self, job: &JobProgress) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO jobs_progress (name, state, cursor, done, total, errors, detail, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET \
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
        .bind(job.updated_ms)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn list_jobs_impl(&self) -> CpResult<Vec<JobProgress>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs_progress ORDER BY name");
        let rows: Vec<JobRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.into_iter().map(job_from_row).collect())
    }
}
