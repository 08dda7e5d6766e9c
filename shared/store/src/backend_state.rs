//! Persisted backend lifecycle: the row type of the `backend_states` table
//! (see `migrations/0011_backend_state.sql`) and what a backend still holds.

use async_trait::async_trait;
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord};

use crate::Store;
use crate::metrics::timed;
use crate::rows::{COPY_STRIDE, advisory_lock, to_i64, to_u64};
use crate::sql::sql;
use crate::store::SqlBacked;

pub use strata_core::{BackendHoldings, BackendState, BackendStateRecord};

/// Objects every copy of which has a segment on backend `?1` (`?2` is [`COPY_STRIDE`]).
const SOLE_COPY: &str = "SELECT COUNT(*) FROM objects o \
     WHERE EXISTS (SELECT 1 FROM segments s WHERE s.object_id = o.object_id AND s.backend_id = ?1) \
       AND NOT EXISTS (SELECT 1 FROM segments s2 WHERE s2.object_id = o.object_id AND NOT EXISTS ( \
           SELECT 1 FROM segments s3 WHERE s3.object_id = o.object_id \
             AND s3.seq / ?2 = s2.seq / ?2 AND s3.backend_id = ?1))";

/// Backend lifecycle (`backend_states`) and what the catalog holds on one
/// backend, for drain, removal, purge, rebalance and over-replication cleanup.
#[async_trait]
pub trait Placement: SqlBacked {
    /// Every backend with a persisted lifecycle state, sorted by id; a
    /// backend without a row is active.
    async fn backend_states(&self) -> CpResult<Vec<BackendStateRecord>> {
        timed("backend_states", async {
            let rows: Vec<(String, String, i64, String, String)> =
                sql("SELECT backend_id, state, since_ms, changed_by, reason FROM backend_states ORDER BY backend_id")
                    .fetch_all(&mut self.db().conn().await?)
                    .await?;
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
        })
        .await
    }

    /// Compare-and-set: records `rec` as the backend's state if its current
    /// state (`Active` without a row) is one of `from` (any state when `from`
    /// is empty); returns whether it did.
    async fn set_backend_state(&self, rec: &BackendStateRecord, from: &[BackendState]) -> CpResult<bool> {
        timed("set_backend_state", async {
            let mut c = self.db().write().await?;
            advisory_lock(&mut c, "backend_state", &rec.backend_id).await?;
            let current: Option<(String,)> = sql("SELECT state FROM backend_states WHERE backend_id = ?")
                .bind(&rec.backend_id)
                .fetch_optional(&mut c)
                .await?;
            let current = current.map_or(Ok(BackendState::Active), |(s,)| BackendState::parse(&s))?;
            if !from.is_empty() && !from.contains(&current) {
                c.commit().await?;
                return Ok(false);
            }
            sql(
                "INSERT INTO backend_states (backend_id, state, since_ms, changed_by, reason) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (backend_id) DO UPDATE SET state = excluded.state, since_ms = excluded.since_ms, \
                 changed_by = excluded.changed_by, reason = excluded.reason",
            )
            .bind(&rec.backend_id)
            .bind(rec.state.as_str())
            .bind(rec.since_ms)
            .bind(&rec.changed_by)
            .bind(&rec.reason)
            .execute(&mut c)
            .await?;
            c.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Current objects with a segment (of any copy) on `backend_id` and an
    /// object id greater than `after`, up to `limit`, in object-id order, as
    /// full records.
    async fn objects_on_backend(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        timed("objects_on_backend", async {
            self.db()
                .load_listed(
                    sql("SELECT o.bucket, o.key FROM objects o WHERE o.object_id IN ( \
                     SELECT DISTINCT s.object_id FROM segments s WHERE s.backend_id = ? AND s.object_id > ? \
                     ORDER BY s.object_id LIMIT ?) \
                 ORDER BY o.object_id")
                    .bind(backend_id)
                    .bind(after)
                    .bind(i64::from(limit)),
                )
                .await
        })
        .await
    }

    /// Objects with more than `factor` copies (the primary included) and an
    /// object id greater than `after`, up to `limit`, in object-id order.
    async fn over_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        timed("over_replicated", async {
            self.db()
                .load_listed(
                    sql("SELECT o.bucket, o.key FROM objects o \
                 WHERE o.object_id IN (SELECT s.object_id FROM segments s WHERE s.seq >= ?) \
                   AND o.object_id > ? ORDER BY o.object_id LIMIT ?")
                    .bind(i64::from(factor) * COPY_STRIDE)
                    .bind(after)
                    .bind(i64::from(limit)),
                )
                .await
        })
        .await
    }

    /// What the catalog still references on `backend_id`.
    async fn backend_holdings(&self, backend_id: &str) -> CpResult<BackendHoldings> {
        timed("backend_holdings", async {
            let mut c = self.db().read().await?;
            let (objects, segments, segment_bytes): (i64, i64, Option<i64>) = sql(
                "SELECT COUNT(DISTINCT object_id), COUNT(*), CAST(SUM(length) AS BIGINT) FROM segments \
                 WHERE backend_id = ?",
            )
            .bind(backend_id)
            .fetch_one(&mut c)
            .await?;
            let sole: i64 = sql(SOLE_COPY).bind(backend_id).bind(COPY_STRIDE).scalar(&mut c).await?;
            let (parts, part_bytes): (i64, Option<i64>) =
                sql("SELECT COUNT(*), CAST(SUM(size) AS BIGINT) FROM parts WHERE backend_id = ?")
                    .bind(backend_id)
                    .fetch_one(&mut c)
                    .await?;
            let (queued, queued_bytes): (i64, Option<i64>) = sql(
                "SELECT COUNT(*), CAST(SUM(length) AS BIGINT) FROM (SELECT length FROM cleanup_queue \
                 WHERE backend_id = ?1 UNION ALL SELECT length FROM cleanup_dead_letter WHERE backend_id = ?1) AS q",
            )
            .bind(backend_id)
            .fetch_one(&mut c)
            .await?;
            c.commit().await?;
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
        })
        .await
    }

    /// In one transaction: unless a segment, part or pending intent still
    /// names `backend_id` (then `InvalidArgument` with the counts), deletes up
    /// to `limit` of its cleanup-queue and dead-letter rows and returns them
    /// (their bytes are the caller's to delete or abandon); once none is
    /// left, also its `blobs` rows. Call until it returns nothing.
    async fn forget_backend(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        timed("forget_backend", async {
            let mut c = self.db().write().await?;
            let (segments, parts, intents): (i64, i64, i64) =
                sql("SELECT (SELECT COUNT(*) FROM segments WHERE backend_id = ?1), \
                        (SELECT COUNT(*) FROM parts WHERE backend_id = ?1), \
                        (SELECT COUNT(*) FROM intents WHERE backend_id = ?1)")
                .bind(backend_id)
                .fetch_one(&mut c)
                .await?;
            if segments + parts + intents > 0 {
                c.commit().await?;
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
                let rows: Vec<(i64, String)> = sql(format!(
                    "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE backend_id = ? ORDER BY id LIMIT ?) \
                     RETURNING id, backend_key"
                ))
                .bind(backend_id)
                .bind(left)
                .fetch_all(&mut c)
                .await?;
                items.extend(rows.into_iter().map(|(id, backend_key)| CleanupItem {
                    id,
                    backend_id: backend_id.to_owned(),
                    backend_key,
                }));
            }
            if items.is_empty() {
                sql("DELETE FROM blobs WHERE backend_id = ?")
                    .bind(backend_id)
                    .execute(&mut c)
                    .await?;
            }
            c.commit().await?;
            Ok(items)
        })
        .await
    }
}

impl<D: 'static> Placement for Store<D> {}
