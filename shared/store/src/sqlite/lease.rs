//! The leader lease on SQLite (see `crate::lease`). There is one process per
//! database file, so expiry is on this process's clock; the write lock
//! (`BEGIN IMMEDIATE`) serializes claimants and fenced writers.

use strata_core::CpResult;

use super::{SqliteStore, WriteTx, db, now_ms};
use crate::lease::{Lease, deposed};

type LeaseRow = (String, String, i64, i64);

impl SqliteStore {
    /// A write transaction without the fence check: the lease itself must
    /// stay reachable by a deposed holder.
    async fn lease_tx(&self) -> CpResult<WriteTx> {
        let guard = self.writer.clone().lock_owned().await;
        let tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        Ok(WriteTx { tx, _guard: guard })
    }

    pub(super) async fn acquire_lease_impl(&self, holder: &str, url: &str, ttl_ms: i64) -> CpResult<Lease> {
        let mut tx = self.lease_tx().await?;
        let now = now_ms();
        let row: Option<LeaseRow> = sqlx::query_as("SELECT holder, url, term, expires_ms FROM cp_lease WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let term = match row {
            None => 1,
            Some((h, _, term, expires)) if h == holder && expires > now => term,
            Some((_, _, term, expires)) if expires <= now => term + 1,
            Some((holder, url, term, expires)) => {
                tx.commit().await.map_err(db)?;
                return Ok(Lease {
                    holder,
                    url,
                    term,
                    remaining_ms: expires - now,
                });
            }
        };
        sqlx::query(
            "INSERT INTO cp_lease (id, holder, url, term, expires_ms) VALUES (1, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, url = excluded.url, \
             term = excluded.term, expires_ms = excluded.expires_ms",
        )
        .bind(holder)
        .bind(url)
        .bind(term)
        .bind(now + ttl_ms)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Lease {
            holder: holder.to_owned(),
            url: url.to_owned(),
            term,
            remaining_ms: ttl_ms,
        })
    }

    pub(super) async fn renew_lease_impl(&self, holder: &str, term: i64, ttl_ms: i64) -> CpResult<bool> {
        let mut tx = self.lease_tx().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE cp_lease SET expires_ms = ? WHERE id = 1 AND holder = ? AND term = ? AND expires_ms > ?",
        )
        .bind(now + ttl_ms)
        .bind(holder)
        .bind(term)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn release_lease_impl(&self, holder: &str, term: i64) -> CpResult<()> {
        let mut tx = self.lease_tx().await?;
        let now = now_ms();
        sqlx::query("UPDATE cp_lease SET expires_ms = ? WHERE id = 1 AND holder = ? AND term = ? AND expires_ms > ?")
            .bind(now)
            .bind(holder)
            .bind(term)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(super) async fn get_lease_impl(&self) -> CpResult<Option<Lease>> {
        let row: Option<LeaseRow> = sqlx::query_as("SELECT holder, url, term, expires_ms FROM cp_lease WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let now = now_ms();
        Ok(row.map(|(holder, url, term, expires)| Lease {
            holder,
            url,
            term,
            remaining_ms: expires - now,
        }))
    }
}

/// Inside a write transaction (which holds the database write lock, so no
/// takeover can interleave): fails with `Unavailable` unless the lease still
/// carries `term`.
pub(super) async fn check_fence(tx: &mut WriteTx, term: i64) -> CpResult<()> {
    let held: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM cp_lease WHERE id = 1 AND term = ?")
        .bind(term)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    match held {
        Some(_) => Ok(()),
        None => Err(deposed(term)),
    }
}
