//! The cleanup queue (claims, retries and dead letters) and the stale write
//! intents the reaper resolves.

use async_trait::async_trait;
use strata_core::{CleanupItem, CpResult};

use crate::metrics::timed;
use crate::rows::count;
use crate::sql::sql;
use crate::store::SqlBacked;
use crate::{CleanupClaim, StaleIntent, Store};

/// Longest wait between two attempts at one cleanup row.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// `min(2^attempts s, 1 h)` in milliseconds.
fn backoff_ms(attempts: u32) -> i64 {
    // 2^12 s already exceeds an hour.
    (1_000i64 << attempts.min(12)).min(MAX_BACKOFF_MS)
}

/// The queue of bytes to delete from backends, and abandoned writes.
#[async_trait]
pub trait Cleanup: SqlBacked {
    /// Removes cleanup-queue rows whose bytes were deleted.
    async fn ack_cleanup(&self, ids: &[i64]) -> CpResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        timed("ack_cleanup", async {
            let mut c = self.db().write_conn().await?;
            let text = format!("DELETE FROM cleanup_queue WHERE id {}", c.dialect().in_list());
            sql(text).bind_ints(ids).execute(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Cleanup rows not yet acknowledged, oldest first.
    async fn pending_cleanup(&self, limit: u32) -> CpResult<Vec<CleanupItem>> {
        timed("pending_cleanup", async {
            let rows: Vec<(i64, String, String)> =
                sql("SELECT id, backend_id, backend_key FROM cleanup_queue ORDER BY id LIMIT ?")
                    .bind(i64::from(limit))
                    .fetch_all(&mut self.db().conn().await?)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(id, backend_id, backend_key)| CleanupItem {
                    id,
                    backend_id,
                    backend_key,
                })
                .collect())
        })
        .await
    }

    /// In one write transaction, claims up to `limit` cleanup rows that are due
    /// (`next_attempt_ms <= now_ms`) and not claimed by anyone (`claimed_until_ms
    /// <= now_ms`), oldest first, for `lease_ms`. Two concurrent claimers never get
    /// the same row; a claim that is neither acknowledged nor failed becomes
    /// claimable again when its lease ends.
    async fn claim_cleanup(&self, now_ms: i64, lease_ms: i64, limit: u32) -> CpResult<Vec<CleanupClaim>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        timed("claim_cleanup", async {
            // One statement: SQLite runs it under the database write lock; on
            // PostgreSQL, SKIP LOCKED passes over rows another claimer is
            // marking right now, and the UPDATE re-checks the predicate on each
            // row it locks, so a row claimed meanwhile is never returned twice.
            let mut c = self.db().write_conn().await?;
            let text = format!(
                "UPDATE cleanup_queue SET claimed_until_ms = ?1 WHERE id IN ( \
                     SELECT id FROM cleanup_queue WHERE next_attempt_ms <= ?2 AND claimed_until_ms <= ?2 \
                     ORDER BY id LIMIT ?3{}) \
                 RETURNING id, backend_id, backend_key, attempts",
                c.dialect().lock(" FOR UPDATE SKIP LOCKED")
            );
            let mut rows: Vec<(i64, String, String, i64)> = sql(text)
                .bind(now_ms.saturating_add(lease_ms))
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut c)
                .await?;
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
        })
        .await
    }

    /// Records a failed deletion of cleanup row `id`: one more attempt and its
    /// error. Once the attempts reach `max_attempts` the row moves to the dead
    /// letter table (its bytes still count as orphan bytes) and `true` is
    /// returned; otherwise the row is released and becomes due again after
    /// `min(2^attempts s, 1 h)`. A row that no longer exists returns `false`.
    async fn fail_cleanup(&self, id: i64, error: &str, now_ms: i64, max_attempts: u32) -> CpResult<bool> {
        timed("fail_cleanup", async {
            let mut c = self.db().write().await?;
            // The UPDATE locks the row until commit: a concurrent ack or failure waits.
            let attempts: Option<(i64,)> =
                sql("UPDATE cleanup_queue SET attempts = attempts + 1, last_error = ? WHERE id = ? RETURNING attempts")
                    .bind(error)
                    .bind(id)
                    .fetch_optional(&mut c)
                    .await?;
            let Some((attempts,)) = attempts else {
                c.commit().await?;
                return Ok(false);
            };
            let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
            let dead = attempts >= max_attempts;
            if dead {
                sql("INSERT INTO cleanup_dead_letter (id, backend_id, backend_key, length, attempts, last_error, dead_ms) \
                     SELECT id, backend_id, backend_key, length, attempts, last_error, ? FROM cleanup_queue WHERE id = ?")
                .bind(now_ms)
                .bind(id)
                .execute(&mut c)
                .await?;
                sql("DELETE FROM cleanup_queue WHERE id = ?").bind(id).execute(&mut c).await?;
            } else {
                sql("UPDATE cleanup_queue SET next_attempt_ms = ?, claimed_until_ms = 0 WHERE id = ?")
                    .bind(now_ms.saturating_add(backoff_ms(attempts)))
                    .bind(id)
                    .execute(&mut c)
                    .await?;
            }
            c.commit().await?;
            Ok(dead)
        })
        .await
    }

    /// Cleanup rows given up on after too many failed attempts.
    async fn dead_letter_count(&self) -> CpResult<u64> {
        timed("dead_letter_count", async {
            let n: i64 = sql("SELECT COUNT(*) FROM cleanup_dead_letter")
                .scalar(&mut self.db().conn().await?)
                .await?;
            Ok(count(n))
        })
        .await
    }

    /// Pending intents created before `older_than_ms`, oldest first.
    async fn stale_intents(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<StaleIntent>> {
        timed("stale_intents", async {
            let rows: Vec<(String, String, String, i64, String, String, String)> = sql(
                "SELECT intent_id, backend_id, backend_key, created_ms, object_id, bucket, key FROM intents \
                 WHERE created_ms < ? ORDER BY created_ms, intent_id LIMIT ?",
            )
            .bind(older_than_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut self.db().conn().await?)
            .await?;
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
        })
        .await
    }
}

impl<D: 'static> Cleanup for Store<D> {}

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
