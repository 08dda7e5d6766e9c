//! The state of background jobs: claims, retries and dead letters of the
//! cleanup queue, and stale write intents for the reaper.

use strata_core::{CleanupItem, CpResult};

use super::{PgStore, db};
use crate::{CleanupClaim, StaleIntent};

/// Longest wait between two attempts at one cleanup row.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// `min(2^attempts s, 1 h)` in milliseconds.
fn backoff_ms(attempts: u32) -> i64 {
    // 2^12 s already exceeds an hour.
    (1_000i64 << attempts.min(12)).min(MAX_BACKOFF_MS)
}

impl PgStore {
    pub(super) async fn claim_cleanup_impl(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> CpResult<Vec<CleanupClaim>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // SKIP LOCKED: rows another claimer is marking right now are passed
        // over, not waited for; the UPDATE re-checks the predicate on each row
        // it locks, so a row claimed meanwhile is never returned twice.
        let until = now_ms.saturating_add(lease_ms);
        let mut rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "UPDATE cleanup_queue SET claimed_until_ms = $1 WHERE id IN ( \
                 SELECT id FROM cleanup_queue \
                 WHERE next_attempt_ms <= $2 AND claimed_until_ms <= $2 \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, backend_id, backend_key, attempts",
        )
        .bind(until)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.sort_unstable_by_key(|r| r.0);
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
        // The UPDATE locks the row until commit: a concurrent ack or failure waits.
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE cleanup_queue SET attempts = attempts + 1, last_error = $1 WHERE id = $2 RETURNING attempts",
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
                 SELECT id, backend_id, backend_key, length, attempts, last_error, $1 FROM cleanup_queue WHERE id = $2",
            )
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query("DELETE FROM cleanup_queue WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        } else {
            sqlx::query("UPDATE cleanup_queue SET next_attempt_ms = $1, claimed_until_ms = 0 WHERE id = $2")
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
             WHERE created_ms < $1 ORDER BY created_ms, intent_id LIMIT $2",
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
