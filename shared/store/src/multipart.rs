//! Multipart uploads: creation, parts, listings, completion and abort.

use async_trait::async_trait;
use strata_core::{
    CleanupItem, CpResult, ListPartsPage, ListUploadsPage, ListUploadsQuery, ObjectRecord, PartInfo, UploadInfo,
};

/// Multipart uploads.
#[async_trait]
pub trait Multipart: Send + Sync + 'static {
    async fn create_upload(&self, upload: &UploadInfo) -> CpResult<()>;
    /// `NoSuchUpload` unless the upload exists in that bucket.
    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo>;
    /// Records (or replaces) a part and removes the intent; a replaced part's
    /// segment is queued for cleanup and returned.
    async fn commit_part(
        &self,
        intent_id: &str,
        bucket: &str,
        upload_id: &str,
        part: &PartInfo,
    ) -> CpResult<Vec<CleanupItem>>;
    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)>;
    async fn list_uploads(&self, query: &ListUploadsQuery) -> CpResult<ListUploadsPage>;
    /// Validates the part list (ascending numbers, known parts with matching
    /// ETags, every part but the last at least 5 MiB), then in one transaction
    /// makes the object current with one segment per part, queues the replaced
    /// object and the unused parts for cleanup, and removes the upload.
    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)>;
    /// Removes the upload and queues all its parts.
    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>>;
}
