//! The leader lease on PostgreSQL, with expiry on the database's clock, and
//! the write fence checked inside write transactions (see `crate::lease`).

use sqlx::PgConnection;
use strata_core::CpResult;

use super::{PgStore, db};
use crate::lease::{Lease, deposed};

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

impl PgStore {
    pub(super) async fn acquire_lease_impl(&self, holder: &str, url: &str, ttl_ms: i64) -> CpResult<Lease> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let inserted: Option<LeaseRow> = sqlx::query_as(
            "INSERT INTO cp_lease (id, holder, url, term, expires_at) \
             VALUES (1, $1, $2, 1, now() + $3 * INTERVAL '1 millisecond') \
             ON CONFLICT (id) DO NOTHING RETURNING holder, url, term, $3::BIGINT",
        )
        .bind(holder)
        .bind(url)
        .bind(ttl_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(row) = inserted {
            tx.commit().await.map_err(db)?;
            return Ok(lease(row));
        }
        // FOR NO KEY UPDATE: serializes claimants without waiting for the
        // fenced commits (FOR KEY SHARE) of the current holder.
        let current: LeaseRow = sqlx::query_as(&format!("{SELECT} FOR NO KEY UPDATE"))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let current = lease(current);
        let sql = if current.held_by(holder) {
            // Ours and valid: extend (a non-key update).
            "UPDATE cp_lease SET url = $2, expires_at = now() + $3 * INTERVAL '1 millisecond' WHERE id = 1 \
             AND holder = $1"
        } else if current.remaining_ms <= 0 {
            // Expired: take over with the next term. Changing the UNIQUE term
            // waits for the deposed holder's in-flight fenced transactions.
            "UPDATE cp_lease SET holder = $1, url = $2, term = term + 1, \
             expires_at = now() + $3 * INTERVAL '1 millisecond' WHERE id = 1"
        } else {
            tx.commit().await.map_err(db)?;
            return Ok(current);
        };
        sqlx::query(sql)
            .bind(holder)
            .bind(url)
            .bind(ttl_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let row: LeaseRow = sqlx::query_as(SELECT).fetch_one(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(lease(row))
    }

    pub(super) async fn renew_lease_impl(&self, holder: &str, term: i64, ttl_ms: i64) -> CpResult<bool> {
        let done = sqlx::query(
            "UPDATE cp_lease SET expires_at = now() + $3 * INTERVAL '1 millisecond' \
             WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > now()",
        )
        .bind(holder)
        .bind(term)
        .bind(ttl_ms)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn release_lease_impl(&self, holder: &str, term: i64) -> CpResult<()> {
        sqlx::query(
            "UPDATE cp_lease SET expires_at = now() WHERE id = 1 AND holder = $1 AND term = $2 \
             AND expires_at > now()",
        )
        .bind(holder)
        .bind(term)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(super) async fn get_lease_impl(&self) -> CpResult<Option<Lease>> {
        let row: Option<LeaseRow> = sqlx::query_as(SELECT).fetch_optional(&self.pool).await.map_err(db)?;
        Ok(row.map(lease))
    }
}

/// How long a fenced transaction may sit idle (its process stalled between
/// statements) before PostgreSQL ends its session: the bound on how long it
/// can delay a takeover by holding the lease row.
const FENCED_IDLE_MS: u32 = 2_000;

/// Inside a write transaction: holds the lease row in FOR KEY SHARE while it
/// still carries `term`, so no takeover commits before this transaction ends;
/// fails with `Unavailable` when a newer term holds it. A leader paused in
/// the middle of the transaction loses its session after `FENCED_IDLE_MS`,
/// which releases the row for the takeover.
pub(super) async fn check_fence(conn: &mut PgConnection, term: i64) -> CpResult<()> {
    sqlx::query(&format!(
        "SET LOCAL idle_in_transaction_session_timeout = {FENCED_IDLE_MS}"
    ))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let held: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM cp_lease WHERE id = 1 AND term = $1 FOR KEY SHARE")
        .bind(term)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    match held {
        Some(_) => Ok(()),
        None => Err(deposed(term)),
    }
}
