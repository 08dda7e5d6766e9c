//! Walking all objects and rewriting, repairing or dropping one copy of an
//! object, for scrubbing, re-encryption and rebalancing jobs.

use async_trait::async_trait;
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, Segment};

use crate::Store;
use crate::blobs::{SegmentRow, same_segments};
use crate::metrics::timed;
use crate::rows::{
    COPY_STRIDE, all_segments, delete_intent_row, enqueue_unreferenced, insert_copy_at, last_copy, load_object,
    load_segments, lock_key,
};
use crate::sql::{Conn, sql};
use crate::store::SqlBacked;

/// Rewriting the copies of current objects.
#[async_trait]
pub trait Rewrite: SqlBacked {
    /// Current objects in (bucket, key) byte order strictly after `after`
    /// (`("", "")` = from the start), up to `limit`, as full records (segments
    /// and copies), for scrubbing and rewriting jobs.
    async fn objects_after(&self, after: (&str, &str), limit: u32) -> CpResult<Vec<ObjectRecord>> {
        timed("objects_after", async {
            let listing =
                sql("SELECT bucket, key FROM objects WHERE (bucket, key) > (?, ?) ORDER BY bucket, key LIMIT ?")
                    .bind(after.0)
                    .bind(after.1)
                    .bind(i64::from(limit));
            self.db().load_listed(listing).await
        })
        .await
    }

    /// In one transaction: if object `object_id` is still current at (bucket,
    /// key) and copy `copy` (0 = primary, else `copies[copy - 1]`) still has
    /// exactly the segments `old` (compared by backend_id, backend_key and
    /// length), replaces that copy's segment rows with `new` (same copy index),
    /// queues the old blobs for cleanup (usage counters follow through the
    /// triggers) and returns `Some(queued items)`. Otherwise queues those of
    /// `new` the current object does not reference and returns `None`. Used to
    /// rewrite, repair or re-encrypt a copy. `new` must not be empty.
    /// `intent_id`, the intent under which `new` was written, is deleted in
    /// the same transaction whether the replacement wins or loses, so that
    /// the reaper never sees it.
    #[allow(clippy::too_many_arguments)]
    async fn replace_copy(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
        new: &[Segment],
        intent_id: Option<&str>,
        _now_ms: i64,
    ) -> CpResult<Option<Vec<CleanupItem>>> {
        if new.is_empty() {
            return Err(CpError::InvalidArgument("a copy needs at least one segment".into()));
        }
        let copy = i64::from(copy);
        timed("replace_copy", async {
            let mut c = self.db().write().await?;
            lock_key(&mut c, bucket, key).await?;
            let current = load_object(&mut c, bucket, key).await?;
            let still = current.as_ref().is_some_and(|o| o.object_id == object_id)
                && same_segments(&copy_rows(&mut c, object_id, copy).await?, old)
                && !old.is_empty();
            let result = if still {
                delete_copy_rows(&mut c, object_id, copy).await?;
                insert_copy_at(&mut c, object_id, copy, new).await?;
                Some(enqueue_unreferenced(&mut c, old, new).await?)
            } else {
                // Never queue bytes the current object (whichever it is) still uses.
                enqueue_unreferenced(&mut c, new, &all_segments(current.as_ref())).await?;
                None
            };
            if let Some(intent_id) = intent_id {
                delete_intent_row(&mut c, intent_id).await?;
            }
            c.commit().await?;
            Ok(result)
        })
        .await
    }

    /// In one transaction: if the object is current, has more than one copy
    /// and copy `copy` has the segments `old`, removes that copy, renumbers
    /// the later copies down by one (copies stay dense: copy 1 becomes the
    /// primary when the primary is dropped), queues its blobs and returns
    /// `Some(items)`; `None` otherwise. Never removes the last copy.
    async fn drop_copy(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
    ) -> CpResult<Option<Vec<CleanupItem>>> {
        let copy = i64::from(copy);
        timed("drop_copy", async {
            let mut c = self.db().write().await?;
            lock_key(&mut c, bucket, key).await?;
            let current = load_object(&mut c, bucket, key).await?;
            let ok = current
                .as_ref()
                .is_some_and(|o| o.object_id == object_id && !o.copies.is_empty())
                && !old.is_empty()
                && same_segments(&copy_rows(&mut c, object_id, copy).await?, old);
            if !ok {
                c.commit().await?;
                return Ok(None);
            }
            delete_copy_rows(&mut c, object_id, copy).await?;
            // Later copies move down one slot, lowest first, so no seq collides.
            let last = last_copy(&mut c, object_id).await?.unwrap_or(0);
            for later in copy + 1..=last {
                sql("UPDATE segments SET seq = seq - ? WHERE object_id = ? AND seq >= ? AND seq < ?")
                    .bind(COPY_STRIDE)
                    .bind(object_id)
                    .bind(later * COPY_STRIDE)
                    .bind((later + 1) * COPY_STRIDE)
                    .execute(&mut c)
                    .await?;
            }
            let (primary, copies) = load_segments(&mut c, object_id).await?;
            let keep: Vec<Segment> = primary.into_iter().chain(copies.into_iter().flatten()).collect();
            let items = enqueue_unreferenced(&mut c, old, &keep).await?;
            c.commit().await?;
            Ok(Some(items))
        })
        .await
    }
}

/// The segment rows of copy `copy` of `object_id`, in order.
async fn copy_rows(c: &mut Conn, object_id: &str, copy: i64) -> CpResult<Vec<SegmentRow>> {
    sql("SELECT backend_id, backend_key, length FROM segments WHERE object_id = ? AND seq >= ? AND seq < ? ORDER BY seq")
        .bind(object_id)
        .bind(copy * COPY_STRIDE)
        .bind((copy + 1) * COPY_STRIDE)
        .fetch_all(c)
        .await
}

async fn delete_copy_rows(c: &mut Conn, object_id: &str, copy: i64) -> CpResult<()> {
    sql("DELETE FROM segments WHERE object_id = ? AND seq >= ? AND seq < ?")
        .bind(object_id)
        .bind(copy * COPY_STRIDE)
        .bind((copy + 1) * COPY_STRIDE)
        .execute(c)
        .await?;
    Ok(())
}

impl<D: 'static> Rewrite for Store<D> {}
