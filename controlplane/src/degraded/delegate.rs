//! The four service traits for `Degraded`: lookups go through the cache, the rest
//! through the breaker; successful writes drop the entries they change.

use super::*;

#[async_trait]
impl strata_core::Catalog for Degraded {
    async fn create_bucket(&self, bucket: &str, owner: &str) -> CpResult<()> {
        self.call(self.inner.create_bucket(bucket, owner)).await
    }

    async fn delete_bucket(&self, bucket: &str) -> CpResult<()> {
        let r = self.call(self.inner.delete_bucket(bucket)).await;
        self.forget(&Cache::bucket_key(bucket));
        r
    }

    async fn head_bucket(&self, bucket: &str) -> CpResult<BucketInfo> {
        self.lookup(
            Cache::bucket_key(bucket),
            |v: &BucketInfo| Some(Entry::Bucket(v.clone())),
            |e| match e {
                Entry::Bucket(b) => Some(b),
                _ => None,
            },
            self.inner.head_bucket(bucket),
        )
        .await
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        self.call(self.inner.list_buckets()).await
    }

    async fn plan_write(
        &self,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        self.call(self.inner.plan_write(bucket, key, size_hint, exclude)).await
    }

    async fn commit_write(&self, plan: &WritePlan, commit: Commit) -> CpResult<Vec<CleanupItem>> {
        // No fail-fast here: a planned write whose bytes are on a backend is
        // committed if the database lets us (else its intent is reaped).
        let cache_key = Cache::object_key(&commit.bucket, &commit.key);
        let r = self.inner.commit_write(plan, commit).await;
        self.observe(&r);
        self.forget(&cache_key);
        r
    }

    async fn abort_write(&self, intent_id: &str) -> CpResult<()> {
        let r = self.inner.abort_write(intent_id).await;
        self.observe(&r);
        r
    }

    async fn record_blob_key(&self, plan: &WritePlan, key: &BlobKey) -> CpResult<()> {
        self.call(self.inner.record_blob_key(plan, key)).await
    }

    async fn report_corrupt(&self, backend_id: &str, backend_key: &str, reason: &str) -> CpResult<()> {
        self.call(self.inner.report_corrupt(backend_id, backend_key, reason))
            .await
    }

    async fn locate(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        self.lookup(
            Cache::object_key(bucket, key),
            obj,
            un_obj,
            self.inner.locate(bucket, key),
        )
        .await
    }

    async fn list_objects(&self, query: ListQuery) -> CpResult<ListPage> {
        self.call(self.inner.list_objects(query)).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        let r = self.call(self.inner.delete_object(bucket, key)).await;
        self.forget(&Cache::object_key(bucket, key));
        r
    }

    async fn ack_cleanup(&self, ids: Vec<i64>) -> CpResult<()> {
        self.call(self.inner.ack_cleanup(ids)).await
    }

    async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> CpResult<UploadInfo> {
        self.call(self.inner.create_upload(bucket, key, meta)).await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
        self.call(self.inner.get_upload(bucket, upload_id)).await
    }

    async fn plan_part(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number: u32,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        self.call(self.inner.plan_part(bucket, upload_id, part_number, size_hint, exclude))
            .await
    }

    async fn commit_part(
        &self,
        plan: &WritePlan,
        bucket: &str,
        upload_id: &str,
        part: PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        let r = self.inner.commit_part(plan, bucket, upload_id, part).await;
        self.observe(&r);
        r
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        self.call(self.inner.list_parts(bucket, upload_id, part_number_marker, max_parts))
            .await
    }

    async fn list_uploads(&self, query: ListUploadsQuery) -> CpResult<ListUploadsPage> {
        self.call(self.inner.list_uploads(query)).await
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        let r = (self.call(self.inner.complete_upload(bucket, upload_id, parts, condition))).await;
        if let Ok((rec, _)) = &r {
            self.forget(&Cache::object_key(bucket, &rec.key));
        }
        r
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        self.call(self.inner.abort_upload(bucket, upload_id)).await
    }

    async fn plan_reference(&self, bucket: &str, space: &str, size_hint: Option<u64>) -> CpResult<WritePlan> {
        self.call(self.inner.plan_reference(bucket, space, size_hint)).await
    }

    async fn commit_reference(
        &self,
        plan: &WritePlan,
        space: &str,
        sha256: &str,
        segment: Segment,
    ) -> CpResult<DeltaRef> {
        let r = self.inner.commit_reference(plan, space, sha256, segment).await;
        self.observe(&r);
        r
    }

    async fn locate_reference(&self, ref_id: &str) -> CpResult<ObjectRecord> {
        self.lookup(
            Cache::reference_key(ref_id),
            obj,
            un_obj,
            self.inner.locate_reference(ref_id),
        )
        .await
    }

    async fn record_delta(&self, plan: &WritePlan, decision: DeltaDecision) -> CpResult<()> {
        self.call(self.inner.record_delta(plan, decision)).await
    }
}

#[async_trait]
impl strata_core::Identity for Degraded {
    async fn get_credential(&self, access_key_id: &str) -> CpResult<Option<Credential>> {
        self.lookup(
            Cache::credential_key(access_key_id),
            |v: &Option<Credential>| v.clone().map(Entry::Credential),
            |e| match e {
                Entry::Credential(c) => Some(Some(c)),
                _ => None,
            },
            self.inner.get_credential(access_key_id),
        )
        .await
    }
}

#[async_trait]
impl strata_core::Usage for Degraded {
    async fn report_usage(&self, report: UsageReport) -> CpResult<Vec<MonthlyUsage>> {
        self.call(self.inner.report_usage(report)).await
    }
}

#[async_trait]
impl strata_core::Admin for Degraded {
    async fn delta_report(&self) -> CpResult<Vec<DeltaBucketReport>> {
        self.call(self.inner.delta_report()).await
    }

    async fn status(&self) -> CpResult<ClusterStatus> {
        self.call(self.inner.status()).await
    }

    async fn list_backends(&self) -> CpResult<Vec<strata_core::BackendReport>> {
        self.call(self.inner.list_backends()).await
    }

    async fn drain_backend(&self, backend_id: &str, by: &str, reason: &str) -> CpResult<strata_core::BackendHoldings> {
        self.call(self.inner.drain_backend(backend_id, by, reason)).await
    }

    async fn undrain_backend(&self, backend_id: &str, by: &str) -> CpResult<()> {
        self.call(self.inner.undrain_backend(backend_id, by)).await
    }

    async fn remove_backend(&self, backend_id: &str, by: &str, force: bool) -> CpResult<strata_core::Removal> {
        self.call(self.inner.remove_backend(backend_id, by, force)).await
    }

    async fn purge_preview(&self, backend_id: &str) -> CpResult<strata_core::PurgePlan> {
        self.call(self.inner.purge_preview(backend_id)).await
    }

    async fn purge_backend(&self, backend_id: &str, by: &str, token: &str) -> CpResult<strata_core::Removal> {
        self.call(self.inner.purge_backend(backend_id, by, token)).await
    }

    async fn take_backend_blobs(&self, backend_id: &str, limit: u32) -> CpResult<Vec<CleanupItem>> {
        self.call(self.inner.take_backend_blobs(backend_id, limit)).await
    }

    async fn list_jobs(&self) -> CpResult<strata_core::JobsReport> {
        self.call(self.inner.list_jobs()).await
    }

    async fn start_job(&self, name: &str) -> CpResult<String> {
        self.call(self.inner.start_job(name)).await
    }

    async fn pause_job(&self, name: &str) -> CpResult<String> {
        self.call(self.inner.pause_job(name)).await
    }

    async fn cancel_job(&self, name: &str) -> CpResult<String> {
        self.call(self.inner.cancel_job(name)).await
    }
}
