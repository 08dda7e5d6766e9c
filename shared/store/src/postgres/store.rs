//! Interim: [`Objects`] and [`Multipart`] dispatched to this dialect's
//! statement modules, until they move onto the dialect layer.

use async_trait::async_trait;
use strata_core::{
    CleanupItem, CpResult, ListPartsPage, ListUploadsPage, ListUploadsQuery, ObjectRecord, PartInfo, UploadInfo,
    WritePlan,
};

use super::{PgStore, db, multipart};
use crate::{Multipart, Objects};

#[async_trait]
impl Objects for PgStore {
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

    async fn commit_replicated(&self, intent_ids: &[String], record: &ObjectRecord) -> CpResult<Vec<CleanupItem>> {
        self.commit_replicated_impl(intent_ids, record).await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        self.get_object_impl(bucket, key).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        self.delete_object_impl(bucket, key).await
    }
}

#[async_trait]
impl Multipart for PgStore {
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
}
