//! Backend health as the data planes report it (`migrations/0012_backend_health.sql`),
//! replication counted on healthy backends only, and commits of writes made
//! on several backends at once (quorum writes).

use strata_core::{BreakerState, CleanupItem, CpResult, ObjectRecord, WriteCondition};

use super::objects::{check_condition, insert_object, load_object, redeem_intent, remove_object};
use super::rows::{COPY_STRIDE, require_bucket};
use super::{SqliteStore, db};

/// Rows of reporters not heard from for this long are deleted.
const PRUNE_AFTER_MS: i64 = 24 * 3600 * 1000;

impl SqliteStore {
    pub(super) async fn record_backend_health_impl(
        &self,
        reporter: &str,
        states: &[(String, BreakerState)],
        now_ms: i64,
    ) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        for (backend_id, state) in states {
            sqlx::query(
                "INSERT INTO backend_health (backend_id, reporter, state, unhealthy_since_ms, reported_ms) \
                 VALUES (?1, ?2, ?3, CASE WHEN ?3 = 'closed' THEN NULL ELSE ?4 END, ?4) \
                 ON CONFLICT (backend_id, reporter) DO UPDATE SET \
                 state = excluded.state, reported_ms = excluded.reported_ms, \
                 unhealthy_since_ms = CASE WHEN excluded.state = 'closed' THEN NULL \
                   ELSE COALESCE(backend_health.unhealthy_since_ms, excluded.reported_ms) END",
            )
            .bind(backend_id)
            .bind(reporter)
            .bind(state.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        sqlx::query("DELETE FROM backend_health WHERE reported_ms < ?")
            .bind(now_ms.saturating_sub(PRUNE_AFTER_MS))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn unhealthy_backends_impl(&self, since_ms: i64, fresh_ms: i64) -> CpResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT backend_id FROM backend_health \
             WHERE unhealthy_since_ms IS NOT NULL AND unhealthy_since_ms <= ? AND reported_ms >= ? \
             ORDER BY backend_id",
        )
        .bind(since_ms)
        .bind(fresh_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    pub(super) async fn under_replicated_healthy_impl(
        &self,
        factor: u32,
        after: &str,
        limit: u32,
        unhealthy: &[String],
    ) -> CpResult<Vec<ObjectRecord>> {
        let unhealthy = serde_json::to_string(unhealthy).map_err(|e| strata_core::CpError::Internal(e.to_string()))?;
        let mut tx = self.read_tx().await?;
        // Copies (seq / stride) of which no segment is on an unhealthy backend.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT o.bucket, o.key FROM objects o \
             WHERE o.object_id > ?1 \
               AND (SELECT COUNT(DISTINCT s.seq / ?2) FROM segments s \
                    WHERE s.object_id = o.object_id AND NOT EXISTS ( \
                      SELECT 1 FROM segments u WHERE u.object_id = s.object_id \
                        AND u.seq / ?2 = s.seq / ?2 \
                        AND u.backend_id IN (SELECT value FROM json_each(?3)))) < ?4 \
             ORDER BY o.object_id LIMIT ?5",
        )
        .bind(after)
        .bind(COPY_STRIDE)
        .bind(unhealthy)
        .bind(i64::from(factor))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for (bucket, key) in rows {
            if let Some(r) = load_object(&mut tx, &bucket, &key).await? {
                out.push(r);
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    pub(super) async fn commit_replicated_impl(
        &self,
        intent_ids: &[String],
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        let mut tx = self.write_tx().await?;
        require_bucket(&mut tx, &record.bucket).await?;
        check_condition(&mut tx, &record.bucket, &record.key, condition).await?;
        for id in intent_ids {
            redeem_intent(&mut tx, id).await?;
        }
        let keep: Vec<_> = record
            .segments
            .iter()
            .chain(record.copies.iter().flatten())
            .cloned()
            .collect();
        let items = remove_object(&mut tx, &record.bucket, &record.key, &keep).await?;
        insert_object(&mut tx, record).await?;
        tx.commit().await.map_err(db)?;
        Ok(items)
    }
}
