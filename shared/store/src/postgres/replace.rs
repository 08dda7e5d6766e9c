//! Walking all objects and rewriting, repairing or dropping one copy of an
//! object, for scrubbing, re-encryption and rebalancing jobs.

use sqlx::PgConnection;
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, Segment};

use super::objects::{delete_intent_row, load_object};
use super::rows::{COPY_STRIDE, enqueue_unreferenced, load_segments, to_i64};
use super::{PgStore, db, lock_key};
use crate::blobs::{SegmentRow, same_segments};

/// The segment rows of copy `copy` of `object_id`, in order.
async fn copy_rows(conn: &mut PgConnection, object_id: &str, copy: i64) -> CpResult<Vec<SegmentRow>> {
    sqlx::query_as(
        "SELECT backend_id, backend_key, length FROM segments \
         WHERE object_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
    )
    .bind(object_id)
    .bind(copy * COPY_STRIDE)
    .bind((copy + 1) * COPY_STRIDE)
    .fetch_all(conn)
    .await
    .map_err(db)
}

async fn delete_copy_rows(conn: &mut PgConnection, object_id: &str, copy: i64) -> CpResult<()> {
    sqlx::query("DELETE FROM segments WHERE object_id = $1 AND seq >= $2 AND seq < $3")
        .bind(object_id)
        .bind(copy * COPY_STRIDE)
        .bind((copy + 1) * COPY_STRIDE)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Writes `segments` as copy `copy` of `object_id` (its slots must be free).
async fn insert_copy_rows(conn: &mut PgConnection, object_id: &str, copy: i64, segments: &[Segment]) -> CpResult<()> {
    for (i, seg) in (0_i64..).zip(segments) {
        sqlx::query(
            "INSERT INTO segments (object_id, seq, backend_id, backend_key, length) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(object_id)
        .bind(copy * COPY_STRIDE + i)
        .bind(&seg.backend_id)
        .bind(&seg.backend_key)
        .bind(to_i64(seg.length)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Every segment of every copy of `record`.
fn all_segments(record: Option<&ObjectRecord>) -> Vec<Segment> {
    record
        .map(|r| r.segments.iter().chain(r.copies.iter().flatten()).cloned().collect())
        .unwrap_or_default()
}

impl PgStore {
    pub(super) async fn objects_after_impl(&self, after: (&str, &str), limit: u32) -> CpResult<Vec<ObjectRecord>> {
        let mut tx = self.read_tx().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT bucket, key FROM objects WHERE (bucket, key) > ($1, $2) ORDER BY bucket, key LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
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

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn replace_copy_impl(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
        new: &[Segment],
        intent_id: Option<&str>,
    ) -> CpResult<Option<Vec<CleanupItem>>> {
        if new.is_empty() {
            return Err(CpError::InvalidArgument("a copy needs at least one segment".into()));
        }
        let copy = i64::from(copy);
        let mut tx = self.write_tx().await?;
        lock_key(&mut tx, bucket, key).await?;
        let current = load_object(&mut tx, bucket, key).await?;
        let still = current.as_ref().is_some_and(|o| o.object_id == object_id)
            && same_segments(&copy_rows(&mut tx, object_id, copy).await?, old)
            && !old.is_empty();
        let result = if still {
            delete_copy_rows(&mut tx, object_id, copy).await?;
            insert_copy_rows(&mut tx, object_id, copy, new).await?;
            Some(enqueue_unreferenced(&mut tx, old, new).await?)
        } else {
            // Never queue bytes the current object (whichever it is) still uses.
            enqueue_unreferenced(&mut tx, new, &all_segments(current.as_ref())).await?;
            None
        };
        if let Some(intent_id) = intent_id {
            delete_intent_row(&mut tx, intent_id).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(result)
    }

    pub(super) async fn drop_copy_impl(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
    ) -> CpResult<Option<Vec<CleanupItem>>> {
        let copy = i64::from(copy);
        let mut tx = self.write_tx().await?;
        lock_key(&mut tx, bucket, key).await?;
        let current = load_object(&mut tx, bucket, key).await?;
        let ok = current
            .as_ref()
            .is_some_and(|o| o.object_id == object_id && !o.copies.is_empty())
            && !old.is_empty()
            && same_segments(&copy_rows(&mut tx, object_id, copy).await?, old);
        if !ok {
            tx.commit().await.map_err(db)?;
            return Ok(None);
        }
        delete_copy_rows(&mut tx, object_id, copy).await?;
        // Later copies move down one slot, lowest first, so no seq collides.
        let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM segments WHERE object_id = $1")
            .bind(object_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let last = max.map_or(0, |m| m / COPY_STRIDE);
        for later in copy + 1..=last {
            sqlx::query("UPDATE segments SET seq = seq - $1 WHERE object_id = $2 AND seq >= $3 AND seq < $4")
                .bind(COPY_STRIDE)
                .bind(object_id)
                .bind(later * COPY_STRIDE)
                .bind((later + 1) * COPY_STRIDE)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let (primary, copies) = load_segments(&mut tx, object_id).await?;
        let keep: Vec<Segment> = primary.into_iter().chain(copies.into_iter().flatten()).collect();
        let items = enqueue_unreferenced(&mut tx, old, &keep).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(items))
    }
}
