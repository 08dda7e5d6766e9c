//! The [`MetaStore`] trait, dispatched to the statement modules.

use async_trait::async_trait;
use strata_core::{
    BucketInfo, CleanupItem, CpResult, ListPage, ListPartsPage, ListQuery, ListUploadsPage, ListUploadsQuery,
    ObjectRecord, PartInfo, Segment, UploadInfo, WriteCondition, WritePlan,
};

use super::{SqliteStore, db, monthly, multipart};
use crate::{BackendUsage, BlobRecord, BlobState, CleanupClaim, JobProgress, MetaStore, StaleIntent, StoredCredential};
use crate::{DeltaDecisionRecord, DeltaRefRecord, DeltaSpaceRecord, ReselectPolicy};

#[async_trait]
impl MetaStore for SqliteStore {
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

    async fn commit_object(
        &self,
        intent_id: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        self.commit_object_impl(intent_id, record, condition).await
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
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        self.complete_upload_impl(bucket, upload_id, parts, object_id, now_ms, condition)
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
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT backend_id, SUM(bytes_used), SUM(orphan_bytes), SUM(reserved_bytes), SUM(objects) \
             FROM backend_usage GROUP BY backend_id ORDER BY backend_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // Shards may be negative; the sums cannot be, short of a bug: clamp rather than fail placement.
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(|(backend_id, used, orphan, reserved, objects)| BackendUsage {
                backend_id,
                bytes_used: u(used),
                orphan_bytes: u(orphan),
                reserved_bytes: u(reserved),
                objects: u(objects),
            })
            .collect())
    }

    async fn add_monthly_usage(&self, month: &str, traffic: &[strata_core::BackendTraffic]) -> CpResult<()> {
        monthly::add(self.write_tx().await?, month, traffic).await
    }

    async fn monthly_usage(&self, month: &str) -> CpResult<Vec<strata_core::MonthlyUsage>> {
        monthly::get(&self.pool, month).await
    }

    async fn record_backend_health(
        &self,
        reporter: &str,
        states: &[(String, strata_core::BreakerState)],
        now_ms: i64,
    ) -> CpResult<()> {
        self.record_backend_health_impl(reporter, states, now_ms).await
    }

    async fn unhealthy_backends(&self, since_ms: i64, fresh_ms: i64) -> CpResult<Vec<String>> {
        self.unhealthy_backends_impl(since_ms, fresh_ms).await
    }

    async fn under_replicated_healthy(
        &self,
        factor: u32,
        after: &str,
        limit: u32,
        unhealthy: &[String],
    ) -> CpResult<Vec<ObjectRecord>> {
        self.under_replicated_healthy_impl(factor, after, limit, unhealthy)
            .await
    }

    async fn commit_replicated(
        &self,
        intent_ids: &[String],
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> CpResult<Vec<CleanupItem>> {
        self.commit_replicated_impl(intent_ids, record, condition).await
    }

    async fn put_blobs(&self, blobs: &[BlobRecord], now_ms: i64) -> CpResult<()> {
        self.put_blobs_impl(blobs, now_ms).await
    }

    async fn get_blobs(&self, keys: &[(String, String)]) -> CpResult<Vec<BlobRecord>> {
        self.get_blobs_impl(keys).await
    }

    async fn mark_blob(&self, backend_id: &str, backend_key: &str, state: BlobState, checked_ms: i64) -> CpResult<()> {
        self.mark_blob_impl(backend_id, backend_key, state, checked_ms).await
    }

    async fn blob_key_counts(&self) -> CpResult<Vec<(String, u64)>> {
        self.blob_key_counts_impl().await
    }

    async fn blobs_not_under(&self, key_id: &str, limit: u32) -> CpResult<Vec<BlobRecord>> {
        self.blobs_not_under_impl(key_id, limit).await
    }

    async fn corrupt_blobs(&self, limit: u32) -> CpResult<Vec<BlobRecord>> {
        self.corrupt_blobs_impl(limit).await
    }

    async fn blob_owner(&self, backend_id: &str, backend_key: &str) -> CpResult<Option<(String, String)>> {
        self.blob_owner_impl(backend_id, backend_key).await
    }

    async fn count_objects(&self) -> CpResult<u64> {
        self.count_objects_impl().await
    }

    async fn rewrap_blob(
        &self,
        backend_id: &str,
        backend_key: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped: &[u8],
    ) -> CpResult<bool> {
        self.rewrap_blob_impl(backend_id, backend_key, old_key_id, new_key_id, wrapped)
            .await
    }

    async fn prune_blobs(&self, older_than_ms: i64, limit: u32) -> CpResult<u64> {
        self.prune_blobs_impl(older_than_ms, limit).await
    }

    async fn objects_after(&self, after: (&str, &str), limit: u32) -> CpResult<Vec<ObjectRecord>> {
        self.objects_after_impl(after, limit).await
    }

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
        self.replace_copy_impl(bucket, key, object_id, copy, old, new, intent_id)
            .await
    }

    async fn drop_copy(
        &self,
        bucket: &str,
        key: &str,
        object_id: &str,
        copy: u32,
        old: &[Segment],
    ) -> CpResult<Option<Vec<CleanupItem>>> {
        self.drop_copy_impl(bucket, key, object_id, copy, old).await
    }

    async fn get_job(&self, name: &str) -> CpResult<Option<JobProgress>> {
        self.get_job_impl(name).await
    }

    async fn put_job(&self, job: &JobProgress) -> CpResult<()> {
        self.put_job_impl(job).await
    }

    async fn list_jobs(&self) -> CpResult<Vec<JobProgress>> {
        self.list_jobs_impl().await
    }

    async fn get_job_schedule(&self, name: &str) -> CpResult<Option<crate::JobSchedule>> {
        self.get_job_schedule_impl(name).await
    }

    async fn put_job_schedule(&self, schedule: &crate::JobSchedule) -> CpResult<()> {
        self.put_job_schedule_impl(schedule).await
    }

    async fn list_job_schedules(&self) -> CpResult<Vec<crate::JobSchedule>> {
        self.list_job_schedules_impl().await
    }

    async fn set_job_control(&self, name: &str, control: &str, now_ms: i64) -> CpResult<bool> {
        self.set_job_control_impl(name, control, now_ms).await
    }

    async fn get_deltaspace(&self, space: &str) -> CpResult<Option<DeltaSpaceRecord>> {
        self.get_deltaspace_impl(space).await
    }

    async fn get_delta_ref(&self, ref_id: &str) -> CpResult<Option<DeltaRefRecord>> {
        self.get_delta_ref_impl(ref_id).await
    }

    async fn set_current_ref(&self, reference: &DeltaRefRecord) -> CpResult<Option<String>> {
        self.set_current_ref_impl(reference).await
    }

    async fn touch_delta_ref(&self, ref_id: &str, now_ms: i64) -> CpResult<()> {
        self.touch_delta_ref_impl(ref_id, now_ms).await
    }

    async fn record_delta_decision(
        &self,
        decision: &DeltaDecisionRecord,
        space: Option<&str>,
        policy: ReselectPolicy,
    ) -> CpResult<bool> {
        self.record_delta_decision_impl(decision, space, policy).await
    }

    async fn delta_report(&self) -> CpResult<Vec<strata_core::DeltaBucketReport>> {
        self.delta_report_impl().await
    }

    async fn unreferenced_refs(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<DeltaRefRecord>> {
        self.unreferenced_refs_impl(older_than_ms, limit).await
    }

    async fn drop_ref(&self, ref_id: &str, older_than_ms: i64) -> CpResult<bool> {
        self.drop_ref_impl(ref_id, older_than_ms).await
    }

    async fn refs_to_compact(&self, below_level: i32, limit: u32) -> CpResult<Vec<DeltaRefRecord>> {
        self.refs_to_compact_impl(below_level, limit).await
    }

    async fn mark_ref_compacted(&self, ref_id: &str, level: i32) -> CpResult<()> {
        self.mark_ref_compacted_impl(ref_id, level).await
    }

    async fn deltas_to_compact(&self, below_level: i32, limit: u32) -> CpResult<Vec<(String, String, String)>> {
        self.deltas_to_compact_impl(below_level, limit).await
    }

    async fn mark_delta_compacted(&self, object_id: &str, level: i32, stored_bytes: Option<u64>) -> CpResult<()> {
        self.mark_delta_compacted_impl(object_id, level, stored_bytes).await
    }

    async fn known_blobs(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<crate::KnownBlob>> {
        self.known_blobs_impl(backend_id, after, limit).await
    }

    async fn enqueue_orphan(&self, backend_id: &str, backend_key: &str, length: u64) -> CpResult<bool> {
        self.enqueue_orphan_impl(backend_id, backend_key, length).await
    }

    async fn backend_states(&self) -> CpResult<Vec<crate::BackendStateRecord>> {
        self.backend_states_impl().await
    }

    async fn set_backend_state(&self, rec: &crate::BackendStateRecord, from: &[crate::BackendState]) -> CpResult<bool> {
        self.set_backend_state_impl(rec, from).await
    }

    async fn objects_on_backend(&self, backend_id: &str, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        self.objects_on_backend_impl(backend_id, after, limit).await
    }

    async fn over_replicated(&self, factor: u32, after: &str, limit: u32) -> CpResult<Vec<ObjectRecord>> {
        self.over_replicated_impl(factor, after, limit).await
    }

    async fn backend_holdings(&self, backend_id: &str) -> CpResult<crate::BackendHoldings> {
        self.backend_holdings_impl(backend_id).await
    }

    async fn forget_backend(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        self.forget_backend_impl(backend_id, limit).await
    }

    async fn acquire_lease(&self, holder: &str, url: &str, ttl_ms: i64) -> CpResult<crate::Lease> {
        self.acquire_lease_impl(holder, url, ttl_ms).await
    }

    async fn renew_lease(&self, holder: &str, term: i64, ttl_ms: i64) -> CpResult<bool> {
        self.renew_lease_impl(holder, term, ttl_ms).await
    }

    async fn release_lease(&self, holder: &str, term: i64) -> CpResult<()> {
        self.release_lease_impl(holder, term).await
    }

    async fn get_lease(&self) -> CpResult<Option<crate::Lease>> {
        self.get_lease_impl().await
    }

    fn fenced(&self, fence: crate::WriteFence) -> Option<std::sync::Arc<dyn MetaStore>> {
        Some(std::sync::Arc::new(self.with_fence(fence)))
    }
}
