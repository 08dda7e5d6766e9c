//! Further copies of objects (replication), promotion of stale intents, and
//! backend health as the data planes report it (`migrations/0012_backend_health.sql`),
//! so that replication counts copies on healthy backends only.

use async_trait::async_trait;
use strata_core::{BreakerState, CpResult, ObjectRecord, Segment};

use crate::Store;
use crate::metrics::timed;
use crate::rows::{
    COPY_STRIDE, WRITER, bucket_exists, enqueue_cleanup, insert_copy, insert_object, load_object, lock_key,
    redeem_intent, remove_object,
};
use crate::sql::sql;
use crate::store::SqlBacked;

/// Rows of reporters not heard from for this long are deleted.
const PRUNE_AFTER_MS: i64 = 24 * 3600 * 1000;

/// Copies of objects on several backends, and the health that decides
/// where copies count.
#[async_trait]
pub trait Replication: SqlBacked {
    /// In one transaction: redeems the intent (`Unavailable` when it is gone),
    /// then appends `segments` as a further copy of the object at (bucket,
    /// key) if that is still object `object_id`, and returns `true`. When the
    /// object was replaced or deleted meanwhile, the segments are queued for
    /// cleanup instead and `false` is returned.
    async fn add_copy(
        &self,
        intent_id: &str,
        bucket: &str,
        key: &str,
        object_id: &str,
        segments: &[Segment],
    ) -> CpResult<bool> {
        timed("add_copy", async {
            let mut c = self.db().write().await?;
            lock_key(&mut c, bucket, key).await?;
            redeem_intent(&mut c, intent_id).await?;
            let current = load_object(&mut c, bucket, key).await?;
            let still = current.as_ref().is_some_and(|o| o.object_id == object_id);
            if still {
                insert_copy(&mut c, object_id, segments).await?;
            } else {
                for s in segments {
                    enqueue_cleanup(&mut c, &s.backend_id, &s.backend_key, s.length).await?;
                }
            }
            c.commit().await?;
            Ok(still)
        })
        .await
    }

    /// Objects with fewer than `factor` copies (the primary included), with
    /// object ids greater than `after`, in object-id order.
    async fn under_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        timed("under_replicated", async {
            self.db()
                .load_listed(
                    sql("SELECT o.bucket, o.key FROM objects o WHERE o.object_id > ? \
                   AND (SELECT COALESCE(MAX(s.seq), 0) / ? + 1 FROM segments s WHERE s.object_id = o.object_id) < ? \
                 ORDER BY o.object_id LIMIT ?")
                    .bind(after)
                    .bind(COPY_STRIDE)
                    .bind(i64::from(factor))
                    .bind(i64::from(limit)),
                )
                .await
        })
        .await
    }

    /// Like [`Replication::under_replicated`], but a copy with a segment on
    /// one of the `unhealthy` backends does not count.
    async fn under_replicated_healthy(
        &self,
        factor: u32,
        after: &str,
        limit: u32,
        unhealthy: &[String],
    ) -> CpResult<Vec<ObjectRecord>> {
        timed("under_replicated_healthy", async {
            // Copies (seq / stride) of which no segment is on an unhealthy backend.
            let text = format!(
                "SELECT o.bucket, o.key FROM objects o WHERE o.object_id > ?1 \
                   AND (SELECT COUNT(DISTINCT s.seq / ?2) FROM segments s \
                        WHERE s.object_id = o.object_id AND NOT EXISTS ( \
                          SELECT 1 FROM segments u WHERE u.object_id = s.object_id \
                            AND u.seq / ?2 = s.seq / ?2 AND u.backend_id {})) < ?4 \
                 ORDER BY o.object_id LIMIT ?5",
                self.db().dialect().in_list().replace('?', "?3")
            );
            self.db()
                .load_listed(
                    sql(text)
                        .bind(after)
                        .bind(COPY_STRIDE)
                        .bind_list(unhealthy)
                        .bind(i64::from(factor))
                        .bind(i64::from(limit)),
                )
                .await
        })
        .await
    }

    /// Resolves a stale intent whose bytes turned out complete on their
    /// backend: in one transaction, unless the key's current object was
    /// written at or after `written_after_ms` (then nothing changes and
    /// `false` is returned), makes `record` current (queueing the replaced
    /// object's bytes for cleanup) and removes the intent.
    async fn promote_intent(&self, intent_id: &str, record: &ObjectRecord, written_after_ms: i64) -> CpResult<bool> {
        timed("promote_intent", async {
            let mut c = self.db().write().await?;
            let bucket_ok = bucket_exists(&mut c, &record.bucket, WRITER).await?;
            lock_key(&mut c, &record.bucket, &record.key).await?;
            let current = load_object(&mut c, &record.bucket, &record.key).await?;
            if current.is_some_and(|o| o.meta.last_modified_unix_ms >= written_after_ms) || !bucket_ok {
                c.commit().await?;
                return Ok(false);
            }
            redeem_intent(&mut c, intent_id).await?;
            remove_object(&mut c, &record.bucket, &record.key, &record.segments).await?;
            insert_object(&mut c, record).await?;
            c.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Records the breaker state one data plane (`reporter`) has for each
    /// backend; a backend's unhealthy-since time is kept while the reporter
    /// keeps reporting it not closed, and cleared by a closed report.
    async fn record_backend_health(
        &self,
        reporter: &str,
        states: &[(String, BreakerState)],
        now_ms: i64,
    ) -> CpResult<()> {
        timed("record_backend_health", async {
            // Backends in id order: concurrent reports lock rows in one order.
            let mut sorted: Vec<&(String, BreakerState)> = states.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut c = self.db().write().await?;
            for (backend_id, state) in sorted {
                sql(
                    "INSERT INTO backend_health (backend_id, reporter, state, unhealthy_since_ms, reported_ms) \
                     VALUES (?1, ?2, ?3, CASE WHEN ?3 = 'closed' THEN NULL ELSE CAST(?4 AS BIGINT) END, ?4) \
                     ON CONFLICT (backend_id, reporter) DO UPDATE SET \
                     state = excluded.state, reported_ms = excluded.reported_ms, \
                     unhealthy_since_ms = CASE WHEN excluded.state = 'closed' THEN NULL \
                       ELSE COALESCE(backend_health.unhealthy_since_ms, excluded.reported_ms) END",
                )
                .bind(backend_id)
                .bind(reporter)
                .bind(state.as_str())
                .bind(now_ms)
                .execute(&mut c)
                .await?;
            }
            sql("DELETE FROM backend_health WHERE reported_ms < ?")
                .bind(now_ms.saturating_sub(PRUNE_AFTER_MS))
                .execute(&mut c)
                .await?;
            c.commit().await
        })
        .await
    }

    /// Backends that a reporter heard from at or after `fresh_ms` has reported
    /// not closed (open or half-open) continuously since `since_ms` or
    /// earlier, sorted by id.
    async fn unhealthy_backends(&self, since_ms: i64, fresh_ms: i64) -> CpResult<Vec<String>> {
        timed("unhealthy_backends", async {
            let rows: Vec<(String,)> = sql("SELECT DISTINCT backend_id FROM backend_health \
                 WHERE unhealthy_since_ms IS NOT NULL AND unhealthy_since_ms <= ? AND reported_ms >= ? \
                 ORDER BY backend_id")
            .bind(since_ms)
            .bind(fresh_ms)
            .fetch_all(&mut self.db().conn().await?)
            .await?;
            Ok(rows.into_iter().map(|(b,)| b).collect())
        })
        .await
    }
}

impl<D: 'static> Replication for Store<D> {}
