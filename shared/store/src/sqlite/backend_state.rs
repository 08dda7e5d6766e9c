//! Backend lifecycle (`backend_states`) and what the catalog holds on one
//! backend, for drain, removal, purge, rebalance and over-replication cleanup.

use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord};

use super::objects::load_object;
use super::rows::{COPY_STRIDE, to_i64, to_u64};
use super::{SqliteStore, db};
use crate::{BackendHoldings, BackendState, BackendStateRecord};

/// Objects every copy of which has a segment on backend `?1`.
const SOLE_COPY: &str = "SELECT COUNT(*) FROM objects o \
     WHERE EXISTS (SELECT 1 FROM segments s WHERE s.object_id = o.object_id AND s.backend_id = ?1) \
       AND NOT EXISTS (SELECT 1 FROM segments s2 WHERE s2.object_id = o.object_id AND NOT EXISTS ( \
           SELECT 1 FROM segments s3 WHERE s3.object_id = o.object_id \
             AND s3.seq / ?2 = s2.seq / ?2 AND s3.backend_id = ?1))";

impl SqliteStore {
    pub(super) async fn backend_states_impl(&self) -> CpResult<Vec<BackendStateRecord>> {
        let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
            "SELECT backend_id, state, since_ms, changed_by, reason FROM backend_states ORDER BY backend_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        (rows.into_iter())
            .map(|(backend_id, state, since_ms, changed_by, reason)| {
                Ok(BackendStateRecord {
                    backend_id,
                    state: BackendState::parse(&state)?,
                    since_ms,
                    changed_by,
                    reason,
                })
            })
            .collect()
    }

    pub(super) async fn set_backend_state_impl(
        &self,
        rec: &BackendStateRecord,
        from: &[BackendState],
    ) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT state FROM backend_states WHERE backend_id = ?")
            .bind(&rec.backend_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let current = current.map_or(Ok(BackendState::Active), |s| BackendState::parse(&s))?;
        if !from.is_empty() && !from.contains(&current) {
            tx.commit().await.map_err(db)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO backend_states (backend_id, state, since_ms, changed_by, reason) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (backend_id) DO UPDATE SET state = excluded.state, since_ms = excluded.since_ms, \
             changed_by = excluded.changed_by, reason = excluded.reason",
        )
        .bind(&rec.backend_id)
        .bind(rec.state.as_str())
        .bind(rec.since_ms)
        .bind(&rec.changed_by)
        .bind(&rec.reason)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(super) async fn objects_on_backend_impl(
        &self,
        backend_id: &str,
        after: &str,
        limit: u32,
    ) -> CpResult<Vec<ObjectRecord>> {
        self.load_listed(
            "SELECT o.bucket, o.key FROM objects o WHERE o.object_id IN ( \
                 SELECT DISTINCT s.object_id FROM segments s WHERE s.backend_id = ?1 AND s.object_id > ?2 \
                 ORDER BY s.object_id LIMIT ?3) \
             ORDER BY o.object_id",
            backend_id.to_owned(),
            after,
            limit,
        )
        .await
    }

    pub(super) async fn over_replicated_impl(
        &self,
        factor: u32,
        after: &str,
        limit: u32,
    ) -> CpResult<Vec<ObjectRecord>> {
        let min_seq = i64::from(factor) * COPY_STRIDE;
        self.load_listed(
            "SELECT o.bucket, o.key FROM objects o \
             WHERE o.object_id IN (SELECT s.object_id FROM segments s WHERE s.seq >= CAST(?1 AS INTEGER)) \
               AND o.object_id > ?2 ORDER BY o.object_id LIMIT ?3",
            min_seq.to_string(),
            after,
            limit,
        )
        .await
    }

    /// Runs `sql` (binding `first`, `after`, `limit`, returning (bucket, key))
    /// and loads the full records in one snapshot.
    async fn load_listed(&self, sql: &str, first: String, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        let mut tx = self.read_tx().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(sql)
            .bind(first)
            .bind(after)
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

    pub(super) async fn backend_holdings_impl(&self, backend_id: &str) -> CpResult<BackendHoldings> {
        let mut tx = self.read_tx().await?;
        let (objects, segments, segment_bytes): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(DISTINCT object_id), COUNT(*), SUM(length) FROM segments WHERE backend_id = ?",
        )
        .bind(backend_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let sole: i64 = sqlx::query_scalar(SOLE_COPY)
            .bind(backend_id)
            .bind(COPY_STRIDE)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let (parts, part_bytes): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), SUM(size) FROM parts WHERE backend_id = ?")
                .bind(backend_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let (queued, queued_bytes): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(length) FROM (SELECT length FROM cleanup_queue WHERE backend_id = ?1 \
             UNION ALL SELECT length FROM cleanup_dead_letter WHERE backend_id = ?1)",
        )
        .bind(backend_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(BackendHoldings {
            objects: to_u64(objects)?,
            segments: to_u64(segments)?,
            segment_bytes: to_u64(segment_bytes.unwrap_or(0))?,
            sole_copy_objects: to_u64(sole)?,
            parts: to_u64(parts)?,
            part_bytes: to_u64(part_bytes.unwrap_or(0))?,
            queued: to_u64(queued)?,
            queued_bytes: to_u64(queued_bytes.unwrap_or(0))?,
        })
    }

    pub(super) async fn forget_backend_impl(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        let mut tx = self.write_tx().await?;
        let (segments, parts, intents): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM segments WHERE backend_id = ?1), \
                    (SELECT COUNT(*) FROM parts WHERE backend_id = ?1), \
                    (SELECT COUNT(*) FROM intents WHERE backend_id = ?1)",
        )
        .bind(backend_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if segments + parts + intents > 0 {
            tx.commit().await.map_err(db)?;
            return Err(CpError::InvalidArgument(format!(
                "backend {backend_id} is still referenced by {segments} segments, {parts} multipart parts and \
                 {intents} pending writes; move or drop them first"
            )));
        }
        let limit = to_i64(u64::from(limit))?;
        let mut items: Vec<CleanupItem> = Vec::new();
        for table in ["cleanup_queue", "cleanup_dead_letter"] {
            let left = limit - items.len() as i64;
            if left <= 0 {
                break;
            }
            let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE backend_id = ? ORDER BY id LIMIT ?) \
                 RETURNING id, backend_key"
            ))
            .bind(backend_id)
            .bind(left)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            items.extend(rows.into_iter().map(|(id, backend_key)| CleanupItem {
                id,
                backend_id: backend_id.to_owned(),
                backend_key,
            }));
        }
        if items.is_empty() {
            sqlx::query("DELETE FROM blobs WHERE backend_id = ?")
                .bind(backend_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(items)
    }
}
