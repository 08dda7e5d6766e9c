//! The [`MetaStore`] trait, dispatched to the statement modules, and the usage
//! counters (see `migrations_pg/0001_initial.sql`).

use async_trait::async_trait;
use strata_core::{
    BucketInfo, CleanupItem, CpResult, ListPage, ListPartsPage, ListQuery, ListUploadsPage, ListUploadsQuery,
    ObjectRecord, PartInfo, Segment, UploadInfo, WritePlan,
};

use super::{PgStore, db, monthly, multipart};
use crate::{BackendUsage, CleanupClaim, MetaStore, StaleIntent, StoredCredential};

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

    async fn backend_usage_impl(&self) -> CpResult<Vec<BackendUsage>> {
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

#[async_trait]
impl MetaStore for PgStore {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<StoredCredential>> {
        self.get_credential_impl(access_key_id).await
    }

    async fn insert_credential(&self, cred: &StoredCredential) -> CpResult<()> {
        self.insert_credential_impl(cred).await
    }

    async fn count_credentials(&self) -> CpResult<u64> {
        self.count_credentials_impl().await
    }

    async fn create_bucket(&self, name: &str, owner: &str, now_ms: i64) -> CpResult<()> {
        self.create_bucket_impl(name, owner, now_ms).await
    }

    async fn delete_bucket(&self, name: &str) -> CpResult<()> {
        self.delete_bucket_impl(name).await
    }

    async fn get_bucket(&self, name: &str) -> CpResult<BucketInfo> {
        self.get_bucket_impl(name).await
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        self.list_buckets_impl().await
    }

    async fn insert_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
    ) -> CpResult<()> {
        self.insert_intent_impl(plan, bucket, key, size_hint, now_ms).await
    }

    async fn reserve_intent(
        &self,
        plan: &WritePlan,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        now_ms: i64,
        quota: Option<u64>,
    ) -> CpResult<bool> {
        self.reserve_intent_impl(plan, bucket, key, size_hint, now_ms, quota)
            .await
    }

    async fn delete_intent(&self, intent_id: &str) -> CpResult<()> {
        self.delete_intent_impl(intent_id).await
    }

    async fn commit_object(&self, intent_id: &str, record: &ObjectRecord) -> CpResult<Vec<CleanupItem>> {
        self.commit_object_impl(intent_id, record).await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        self.get_object_impl(bucket, key).await
    }

    async fn list_objects(&self, query: &ListQuery) -> CpResult<ListPage> {
        self.list_objects_impl(query).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        self.delete_object_impl(bucket, key).await
    }

    async fn ack_cleanup(&self, ids: &[i64]) -> CpResult<()> {
        self.ack_cleanup_impl(ids).await
    }

    async fn pending_cleanup(&self, limit: u32) -> CpResult<Vec<CleanupItem>> {
        self.pending_cleanup_impl(limit).await
    }

    async fn claim_cleanup(&self, now_ms: i64, lease_ms: i64, limit: u32) -> CpResult<Vec<CleanupClaim>> {
        self.claim_cleanup_impl(now_ms, lease_ms, limit).await
    }

    async fn fail_cleanup(&self, id: i64, error: &str, now_ms: i64, max_attempts: u32) -> CpResult<bool> {
        self.fail_cleanup_impl(id, error, now_ms, max_attempts).await
    }

    async fn dead_letter_count(&self) -> CpResult<u64> {
        self.dead_letter_count_impl().await
    }

    async fn stale_intents(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<StaleIntent>> {
        self.stale_intents_impl(older_than_ms, limit).await
    }

    async fn create_upload(&self, upload: &UploadInfo) -> CpResult<()> {
        self.create_upload_impl(upload).await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
        let mut tx = self.read_tx().await?;
        let upload = multipart::load_upload(&mut tx, bucket, upload_id).await?;
        tx.commit().await.map_err(db)?;
        Ok(upload)
    }

    async fn commit_part(
        &self,
        intent_id: &str,
        bucket: &str,
        upload_id: &str,
        part: &PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        self.commit_part_impl(intent_id, bucket, upload_id, part).await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        self.list_parts_impl(bucket, upload_id, marker, max_parts).await
    }

    async fn list_uploads(&self, query: &ListUploadsQuery) -> CpResult<ListUploadsPage> {
        self.list_uploads_impl(query).await
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        self.complete_upload_impl(bucket, upload_id, parts, object_id, now_ms)
            .await
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        self.abort_upload_impl(bucket, upload_id).await
    }

    async fn add_copy(
        &self,
        intent_id: &str,
        bucket: &str,
        key: &str,
        object_id: &str,
        segments: &[Segment],
    ) -> CpResult<bool> {
        self.add_copy_impl(intent_id, bucket, key, object_id, segments).await
    }

    async fn under_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        self.under_replicated_impl(factor, after, limit).await
    }

    async fn promote_intent(&self, intent_id: &str, record: &ObjectRecord, written_after_ms: i64) -> CpResult<bool> {
        self.promote_intent_impl(intent_id, record, written_after_ms).await
    }

    async fn backend_usage(&self) -> CpResult<Vec<BackendUsage>> {
        self.backend_usage_impl().await
    }

    async fn add_monthly_usage(&self, month: &str, traffic: &[strata_core::BackendTraffic]) -> CpResult<()> {
        monthly::add(self.write_tx().await?, month, traffic).await
    }

    async fn monthly_usage(&self, month: &str) -> CpResult<Vec<strata_core::MonthlyUsage>> {
        monthly::get(&self.pool, month).await
    }
}
