//! The state of background jobs: claims, retries and dead letters of the
//! cleanup queue, and stale write intents for the reaper.

use strata_core::{CleanupItem, CpResult};

use super::{SqliteStore, db};
use crate::{CleanupClaim, StaleIntent};

/// Longest wait between two attempts at one cleanup row.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// `min(2^attempts s, 1 h)` in milliseconds.
fn backoff_ms(attempts: u32) -> i64 {
    // 2^12 s already exceeds an hour.
    (1_000i64 << attempts.min(12)).min(MAX_BACKOFF_MS)
}

impl SqliteStore {
    pub(super) async fn claim_cleanup_impl(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> CpResult<Vec<CleanupClaim>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // BEGIN IMMEDIATE holds the write lock from the SELECT on, so no other
        // claimer can see these rows as free before they are marked.
        let mut tx = self.write_tx().await?;
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, backend_id, backend_key, attempts FROM cleanup_queue \
             WHERE next_attempt_ms <= ? AND claimed_until_ms <= ? ORDER BY id LIMIT ?",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let until = now_ms.saturating_add(lease_ms);
        for (id, ..) in &rows {
            sqlx::query("UPDATE cleanup_queue SET claimed_until_ms = ? WHERE id = ?")
                .bind(until)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, backend_id, backend_key, attempts)| CleanupClaim {
                item: CleanupItem {
                    id,
                    backend_id,
                    backend_key,
                },
                attempts: u32::try_from(attempts).unwrap_or(0),
            })
            .collect())
    }

    pub(super) async fn fail_cleanup_impl(
        &self,
        id: i64,
        error: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE cleanup_queue SET attempts = attempts + 1, last_error = ? WHERE id = ? RETURNING attempts",
        )
        .bind(error)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(attempts) = attempts else {
            tx.commit().await.map_err(db)?;
            return Ok(false);
        };
        let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        let dead = attempts >= max_attempts;
        if dead {
            sqlx::query(
                "INSERT INTO cleanup_dead_letter (id, backend_id, backend_key, length, attempts, last_error, dead_ms) \
                 SELECT id, backend_id, backend_key, length, attempts, last_error, ? FROM cleanup_queue WHERE id = ?",
            )
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query("DELETE FROM cleanup_queue WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        } else {
            sqlx::query("UPDATE cleanup_queue SET next_attempt_ms = ?, claimed_until_ms = 0 WHERE id = ?")
                .bind(now_ms.saturating_add(backoff_ms(attempts)))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(dead)
    }

    pub(super) async fn dead_letter_count_impl(&self) -> CpResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cleanup_dead_letter")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn stale_intents_impl(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<StaleIntent>> {
        let rows: Vec<(String, String, String, i64, String, String, String)> = sqlx::query_as(
            "SELECT intent_id, backend_id, backend_key, created_ms, object_id, bucket, key FROM intents \
             WHERE created_ms < ? ORDER BY created_ms, intent_id LIMIT ?",
        )
        .bind(older_than_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(intent_id, backend_id, backend_key, created_ms, object_id, bucket, key)| StaleIntent {
                    intent_id,
                    backend_id,
                    backend_key,
                    created_ms,
                    object_id,
                    bucket,
                    key,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(11), 2_048_000);
        assert_eq!(backoff_ms(12), 3_600_000);
        assert_eq!(backoff_ms(u32::MAX), 3_600_000);
    }
}
