//! The leader lease on PostgreSQL, with expiry on the database's clock, and
//! the jobs' cluster-wide locks: a session advisory lock per job, held for one
//! cycle on a dedicated connection of its own (outside the pool, so that jobs
//! holding locks can never starve the pool their own work needs).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection};
use strata_core::CpResult;

use crate::lease::{Leadership, Lease, WriteFence};
use crate::metrics::timed;
use crate::sql::{db, sql};
use crate::{JobLock, MetaStore, PgStore};

type LeaseRow = (String, String, i64, i64);

/// `remaining_ms` of the row on the database clock.
const SELECT: &str = "SELECT holder, url, term, \
     (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::BIGINT FROM cp_lease WHERE id = 1";

fn lease((holder, url, term, remaining_ms): LeaseRow) -> Lease {
    Lease {
        holder,
        url,
        term,
        remaining_ms,
    }
}

/// The advisory-lock key of a job: in the same 64-bit space as the
/// transaction locks (`rows::advisory_lock`), under its own scope.
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

#[async_trait]
impl Leadership for PgStore {
    async fn acquire_lease(&self, holder: &str, url: &str, ttl_ms: i64) -> CpResult<Lease> {
        timed("acquire_lease", async {
            let mut c = self.db.begin_write().await?;
            let inserted: Option<LeaseRow> = sql("INSERT INTO cp_lease (id, holder, url, term, expires_at) \
                 VALUES (1, $1, $2, 1, now() + $3 * INTERVAL '1 millisecond') \
                 ON CONFLICT (id) DO NOTHING RETURNING holder, url, term, $3::BIGINT")
            .bind(holder)
            .bind(url)
            .bind(ttl_ms)
            .fetch_optional(&mut c)
            .await?;
            if let Some(row) = inserted {
                c.commit().await?;
                return Ok(lease(row));
            }
            // FOR NO KEY UPDATE: serializes claimants without waiting for the
            // fenced commits (FOR KEY SHARE) of the current holder.
            let current = lease(sql(format!("{SELECT} FOR NO KEY UPDATE")).fetch_one(&mut c).await?);
            let update = if current.held_by(holder) {
                // Ours and valid: extend (a non-key update).
                "UPDATE cp_lease SET url = $2, expires_at = now() + $3 * INTERVAL '1 millisecond' WHERE id = 1 \
                 AND holder = $1"
            } else if current.remaining_ms <= 0 {
                // Expired: take over with the next term. Changing the UNIQUE term
                // waits for the deposed holder's in-flight fenced transactions.
                "UPDATE cp_lease SET holder = $1, url = $2, term = term + 1, \
                 expires_at = now() + $3 * INTERVAL '1 millisecond' WHERE id = 1"
            } else {
                c.commit().await?;
                return Ok(current);
            };
            sql(update).bind(holder).bind(url).bind(ttl_ms).execute(&mut c).await?;
            let row: LeaseRow = sql(SELECT).fetch_one(&mut c).await?;
            c.commit().await?;
            Ok(lease(row))
        })
        .await
    }

    async fn renew_lease(&self, holder: &str, term: i64, ttl_ms: i64) -> CpResult<bool> {
        timed("renew_lease", async {
            let done = sql(
                "UPDATE cp_lease SET expires_at = now() + $3 * INTERVAL '1 millisecond' \
                 WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > now()",
            )
            .bind(holder)
            .bind(term)
            .bind(ttl_ms)
            .execute(&mut self.db.write_conn().await?)
            .await?;
            Ok(done == 1)
        })
        .await
    }

    async fn release_lease(&self, holder: &str, term: i64) -> CpResult<()> {
        timed("release_lease", async {
            sql(
                "UPDATE cp_lease SET expires_at = now() WHERE id = 1 AND holder = $1 AND term = $2 \
                 AND expires_at > now()",
            )
            .bind(holder)
            .bind(term)
            .execute(&mut self.db.write_conn().await?)
            .await?;
            Ok(())
        })
        .await
    }

    async fn get_lease(&self) -> CpResult<Option<Lease>> {
        timed("get_lease", async {
            let row: Option<LeaseRow> = sql(SELECT).fetch_optional(&mut self.db.conn().await?).await?;
            Ok(row.map(lease))
        })
        .await
    }

    fn fenced(&self, fence: WriteFence) -> Option<Arc<dyn MetaStore>> {
        Some(Arc::new(self.with_fence(fence)))
    }

    async fn try_job_lock(&self, name: &str) -> CpResult<Option<Box<dyn JobLock>>> {
        timed("try_job_lock", async {
            let options = self.pool().connect_options();
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
            let lock: Box<dyn JobLock> = Box::new(PgJobLock {
                conn: Some(conn),
                name: name.to_owned(),
            });
            Ok(Some(lock))
        })
        .await
    }
}
