//! The usage counters (see `migrations_pg/0001_initial.sql`): summed from the
//! delta rows the triggers append, folded when they pile up.

use strata_core::CpResult;

use super::{PgStore, db};
use crate::BackendUsage;

/// Folds the usage deltas into one row per backend once there are more than
/// this many: cheap enough to do inline, rare enough not to matter.
const FOLD_THRESHOLD: i64 = 256;

impl PgStore {
    /// Replaces all usage delta rows by their per-backend sums, in one
    /// statement: totals are the same before and after, for every reader.
    /// Skipped when another session is folding right now.
    async fn fold_usage(&self) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended('usage_fold', 0))")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if got {
            sqlx::query(
                "WITH gone AS (DELETE FROM usage_delta RETURNING *) \
                 INSERT INTO usage_delta (backend_id, bytes_used, orphan_bytes, reserved_bytes, objects) \
                 SELECT backend_id, SUM(bytes_used), SUM(orphan_bytes), SUM(reserved_bytes), SUM(objects) \
                 FROM gone GROUP BY backend_id",
            )
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    pub(super) async fn backend_usage_impl(&self) -> CpResult<Vec<BackendUsage>> {
        let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT backend_id, SUM(bytes_used)::BIGINT, SUM(orphan_bytes)::BIGINT, \
             SUM(reserved_bytes)::BIGINT, SUM(objects)::BIGINT, COUNT(*) \
             FROM usage_delta GROUP BY backend_id ORDER BY backend_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        if rows.iter().map(|r| r.5).sum::<i64>() > FOLD_THRESHOLD {
            self.fold_usage().await?;
        }
        // The sums cannot be negative, short of a bug: clamp rather than fail placement.
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(|(backend_id, used, orphan, reserved, objects, _)| BackendUsage {
                backend_id,
                bytes_used: u(used),
                orphan_bytes: u(orphan),
                reserved_bytes: u(reserved),
                objects: u(objects),
            })
            .collect())
    }
}
