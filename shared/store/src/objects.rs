//! Write intents and single objects: plan, commit, read and delete.

use async_trait::async_trait;
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, WriteCondition, WritePlan};

use crate::Store;
use crate::metrics::timed;
use crate::rows::{
    WRITER, advisory_lock, all_segments, check_condition, count, delete_intent_row, insert_object, load_object,
    lock_key, redeem_intent, remove_object, require_bucket, to_i64,
};
use crate::sql::{Sql, sql};
use crate::store::SqlBacked;

/// The write path of single objects.
#[async_trait]
pub trait Objects: SqlBacked {
    /// Records a pending intent before any byte reaches a backend. A known
    /// `size_hint` counts as reserved bytes of the plan's backend until the
    /// intent is committed or deleted.
    async fn insert_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
    ) -> CpResult<()> {
        timed("insert_intent", async {
            let q = intent_row(plan, bucket, key, size_hint, now_ms)?;
            q.execute(&mut self.db().write_conn().await?).await?;
            Ok(())
        })
        .await
    }

    /// Like [`Objects::insert_intent`], but in one write transaction with
    /// checking that the plan's backend still has room: with `quota` set, the
    /// intent is recorded only if `bytes_used + orphan_bytes + reserved_bytes +
    /// size_hint` (at least 1 byte) stays within it, and `false` is returned
    /// otherwise. Concurrent planners therefore never overshoot a quota.
    /// Fails with `NoSuchBucket` when the bucket does not exist.
    async fn reserve_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
        quota: Option<u64>,
    ) -> CpResult<bool> {
        timed("reserve_intent", async {
            let mut c = self.db().write().await?;
            require_bucket(&mut c, bucket, "").await?;
            if let Some(quota) = quota {
                // PostgreSQL: reservations against one backend queue on this
                // lock until the holder commits; the sum below is a fresh
                // statement, so it sees every reservation committed before.
                advisory_lock(&mut c, "reserve", &plan.backend_id).await?;
                let text = format!(
                    "SELECT CAST(SUM(bytes_used + orphan_bytes + reserved_bytes) AS BIGINT) FROM {} \
                     WHERE backend_id = ?",
                    c.dialect().usage_table()
                );
                let filled: Option<i64> = sql(text).bind(&plan.backend_id).scalar(&mut c).await?;
                if count(filled.unwrap_or(0)).saturating_add(size_hint.unwrap_or(1)) > quota {
                    return Ok(false);
                }
            }
            intent_row(plan, bucket, key, size_hint, now_ms)?
                .execute(&mut c)
                .await?;
            c.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn delete_intent(&self, intent_id: &str) -> CpResult<()> {
        timed("delete_intent", async {
            delete_intent_row(&mut self.db().write_conn().await?, intent_id).await?;
            Ok(())
        })
        .await
    }

    /// In one transaction: fails with `NoSuchBucket` if the bucket is gone,
    /// with `PreconditionFailed` or `NoSuchKey` if `condition` does not hold
    /// of the current object (checked under the key's write lock), replaces
    /// the current object at (bucket, key) with `record`, moves the replaced
    /// object's segments into the cleanup queue and removes the intent.
    /// Returns the queued cleanup items.
    async fn commit_object(
        &self,
        intent_id: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        self.commit_replicated(&[intent_id.to_owned()], record, condition).await
    }

    /// Like [`Objects::commit_object`] for an object written to several
    /// backends at once (`record.copies` set): redeems every intent in
    /// `intent_ids` (one per copy; `Unavailable` if one is gone) in the same
    /// transaction, so either every copy becomes current or none does.
    async fn commit_replicated(
        &self,
        intent_ids: &[String],
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        timed("commit_object", async {
            let mut c = self.db().write().await?;
            require_bucket(&mut c, &record.bucket, WRITER).await?;
            lock_key(&mut c, &record.bucket, &record.key).await?;
            check_condition(&mut c, &record.bucket, &record.key, condition).await?;
            for id in intent_ids {
                redeem_intent(&mut c, id).await?;
            }
            let keep = all_segments(Some(record));
            let items = remove_object(&mut c, &record.bucket, &record.key, &keep).await?;
            insert_object(&mut c, record).await?;
            c.commit().await?;
            Ok(items)
        })
        .await
    }

    /// `NoSuchBucket` or `NoSuchKey` when absent.
    async fn get_object(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        timed("get_object", async {
            let mut c = self.db().read().await?;
            require_bucket(&mut c, bucket, "").await?;
            let record = load_object(&mut c, bucket, key).await?;
            c.commit().await?;
            record.ok_or(CpError::NoSuchKey)
        })
        .await
    }

    /// Removes the object and queues its segments; a missing key returns nothing.
    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        timed("delete_object", async {
            let mut c = self.db().write().await?;
            require_bucket(&mut c, bucket, "").await?;
            lock_key(&mut c, bucket, key).await?;
            let items = remove_object(&mut c, bucket, key, &[]).await?;
            c.commit().await?;
            Ok(items)
        })
        .await
    }
}

impl<D: 'static> Objects for Store<D> {}

/// The insert of a plan's intent row.
fn intent_row<'q>(
    plan: &'q WritePlan,
    bucket: &'q str,
    key: &'q str,
    size_hint: Option<u64>,
    now_ms: i64,
) -> CpResult<Sql<'q>> {
    Ok(sql(
        "INSERT INTO intents (intent_id, object_id, backend_id, backend_key, bucket, key, created_ms, size_hint) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&plan.intent_id)
    .bind(&plan.object_id)
    .bind(&plan.backend_id)
    .bind(&plan.backend_key)
    .bind(bucket)
    .bind(key)
    .bind(now_ms)
    .bind(to_i64(size_hint.unwrap_or(0))?))
}
