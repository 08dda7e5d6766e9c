//! [`Catalog`]: buckets, objects, writes, multipart uploads and delta
//! references, the calls the data plane makes on every S3 request. Served
//! by the control plane's `Catalog` gRPC service
//! (`proto/strata/controlplane/v1/catalog.proto`).

use async_trait::async_trait;

use crate::{
    BlobKey, BucketInfo, CleanupItem, Commit, CpResult, DeltaDecision, DeltaRef, ListPage, ListPartsPage, ListQuery,
    ListUploadsPage, ListUploadsQuery, ObjectMeta, ObjectRecord, PartInfo, Segment, UploadInfo, WriteCondition,
    WritePlan,
};

/// The metadata of buckets and objects: where bytes go (plans), what is
/// current (commits), where it is (locate, list) and what is obsolete
/// (cleanup items). Implemented by the control plane itself (in-process
/// under `--role all`), by the gRPC client, by the degraded-mode decorator
/// and by the test fakes.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Creates a bucket owned by `owner`; `BucketAlreadyOwnedByYou` when it exists.
    async fn create_bucket(&self, bucket: &str, owner: &str) -> CpResult<()>;
    /// Deletes an empty bucket.
    async fn delete_bucket(&self, bucket: &str) -> CpResult<()>;
    /// A bucket's facts; `NoSuchBucket` when it does not exist.
    async fn head_bucket(&self, bucket: &str) -> CpResult<BucketInfo>;
    /// Every bucket, by name.
    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>>;

    /// Chooses where a new object's bytes go and records a pending intent.
    /// Backends in `exclude` are not chosen (the caller's breaker is open for
    /// them, or a write to them just failed).
    async fn plan_write(
        &self,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan>;
    /// Makes the written object current, in one transaction with removing its
    /// intent (and the intents of a quorum write's further copies) and with
    /// checking the commit's [`WriteCondition`](crate::WriteCondition).
    /// Returns the bytes of the version it replaced, now obsolete.
    async fn commit_write(&self, plan: &WritePlan, commit: Commit) -> CpResult<Vec<CleanupItem>>;
    /// Drops a pending intent whose bytes were never (or only partly) written.
    async fn abort_write(&self, intent_id: &str) -> CpResult<()>;
    /// Records, before any byte is written, the key a planned blob is sealed
    /// under when the data plane chose it (SSE-C: the DEK wrapped under the
    /// customer's key). Only the stored form of `key` is kept.
    async fn record_blob_key(&self, plan: &WritePlan, key: &BlobKey) -> CpResult<()>;
    /// Reports a blob whose bytes failed authentication or their recorded
    /// SHA-256; the control plane marks it corrupt so that it is repaired
    /// from a healthy copy (or quarantined when it is the last one).
    async fn report_corrupt(&self, backend_id: &str, backend_key: &str, reason: &str) -> CpResult<()>;

    /// The current object of `key`, with the segments of each copy.
    async fn locate(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord>;
    /// One page of a bucket's keys (and common prefixes, with a delimiter).
    async fn list_objects(&self, query: ListQuery) -> CpResult<ListPage>;
    /// Removes an object from the catalog; returns its now obsolete bytes.
    /// Deleting a missing key succeeds with nothing to clean up.
    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>>;
    /// Confirms that obsolete bytes were deleted from their backends.
    async fn ack_cleanup(&self, ids: Vec<i64>) -> CpResult<()>;

    /// Starts a multipart upload of `key` with the object's metadata.
    async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> CpResult<UploadInfo>;
    /// An open multipart upload; `NoSuchUpload` when it is gone.
    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo>;
    /// Like [`Catalog::plan_write`], for one part of an upload.
    async fn plan_part(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number: u32,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan>;
    /// Records an uploaded part; returns the bytes of a part it replaced.
    async fn commit_part(
        &self,
        plan: &WritePlan,
        bucket: &str,
        upload_id: &str,
        part: PartInfo,
    ) -> CpResult<Vec<CleanupItem>>;
    /// One page of an upload's parts, after `part_number_marker`.
    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)>;
    /// One page of a bucket's open uploads.
    async fn list_uploads(&self, query: ListUploadsQuery) -> CpResult<ListUploadsPage>;
    /// Assembles the listed parts into the object and makes it current, if
    /// `condition` holds in the same transaction. Completing an upload that
    /// was already completed answers with the object it made (an SDK retry
    /// after a lost reply), while that object is still current.
    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)>;
    /// Drops an upload; returns the bytes of its parts.
    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>>;

    /// Plans the blob of a new deltaspace reference (stored in the bucket's
    /// hidden reference area, sealed as the bucket's policy says). The data
    /// plane writes the reference's bytes zstd-compressed, then calls
    /// [`Catalog::commit_reference`].
    async fn plan_reference(&self, bucket: &str, space: &str, size_hint: Option<u64>) -> CpResult<WritePlan>;
    /// Makes a written reference the deltaspace's current one (the previous
    /// one is retired and freed once no object needs it). `segment` carries
    /// the reference's logical length, SHA-256 and `Encoding::Zstd`.
    async fn commit_reference(
        &self,
        plan: &WritePlan,
        space: &str,
        sha256: &str,
        segment: Segment,
    ) -> CpResult<DeltaRef>;
    /// A reference's blob, with its digest, key and encoding, for decoding.
    async fn locate_reference(&self, ref_id: &str) -> CpResult<ObjectRecord>;
    /// Records what a write did about delta compression, and the size of the
    /// encoded delta, for the deltaspace's reference re-selection and the report.
    async fn record_delta(&self, plan: &WritePlan, decision: DeltaDecision) -> CpResult<()>;
}
