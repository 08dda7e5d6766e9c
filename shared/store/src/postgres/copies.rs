//! Further copies of objects (replication) and promotion of stale intents.

use strata_core::{CpResult, ObjectRecord, Segment};

use super::objects::{insert_object, load_object, redeem_intent, remove_object};
use super::rows::{COPY_STRIDE, enqueue_cleanup, insert_copy, share_bucket};
use super::{PgStore, db, lock_key};

impl PgStore {
    pub(super) async fn add_copy_impl(
        &self,
        intent_id: &str,
        bucket: &str,
        key: &str,
        object_id: &str,
        segments: &[Segment],
    ) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        lock_key(&mut tx, bucket, key).await?;
        redeem_intent(&mut tx, intent_id).await?;
        let current = load_object(&mut tx, bucket, key).await?;
        let still = current.as_ref().is_some_and(|o| o.object_id == object_id);
        if still {
            insert_copy(&mut tx, object_id, segments).await?;
        } else {
            for s in segments {
                enqueue_cleanup(&mut tx, &s.backend_id, &s.backend_key, s.length).await?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(still)
    }

    pub(super) async fn under_replicated_impl(
        &self,
        factor: u32,
        after: &str,
        limit: u32,
    ) -> CpResult<Vec<ObjectRecord>> {
        let mut tx = self.read_tx().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT o.bucket, o.key FROM objects o \
             WHERE o.object_id > $1 \
               AND (SELECT COALESCE(MAX(s.seq), 0) / $2 + 1 FROM segments s WHERE s.object_id = o.object_id) < $3 \
             ORDER BY o.object_id LIMIT $4",
        )
        .bind(after)
        .bind(COPY_STRIDE)
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

    pub(super) async fn promote_intent_impl(
        &self,
        intent_id: &str,
        record: &ObjectRecord,
        written_after_ms: i64,
    ) -> CpResult<bool> {
        let mut tx = self.write_tx().await?;
        let bucket_ok = share_bucket(&mut tx, &record.bucket).await?;
        lock_key(&mut tx, &record.bucket, &record.key).await?;
        let current = load_object(&mut tx, &record.bucket, &record.key).await?;
        if current.is_some_and(|c| c.meta.last_modified_unix_ms >= written_after_ms) {
            tx.commit().await.map_err(db)?;
            return Ok(false);
        }
        if !bucket_ok {
            tx.commit().await.map_err(db)?;
            return Ok(false);
        }
        redeem_intent(&mut tx, intent_id).await?;
        remove_object(&mut tx, &record.bucket, &record.key, &record.segments).await?;
        insert_object(&mut tx, record).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}
