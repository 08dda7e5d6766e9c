//! The S3 API, implemented on s3s. Each operation lives in a submodule by
//! theme; this file only wires the [`S3`] trait to them. Writes parse their
//! request into a [`WriteRequest`](crate::write::WriteRequest) and go
//! through the write path (`crate::write`).

mod bucket;
mod conditional;
mod copy;
mod list;
mod lookup;
mod meta;
mod multipart;
mod object;
mod reader;
mod request;
mod sse;

use std::sync::Arc;

use async_trait::async_trait;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use strata_backend::Backends;
use strata_core::ControlPlane;

/// The data plane's S3 service: metadata questions go to the control plane,
/// bytes go straight between the client and the backends.
#[derive(Clone)]
pub struct StrataS3 {
    pub(crate) cp: Arc<dyn ControlPlane>,
    pub(crate) backends: Backends,
    /// Write failover (spooling and re-planning); `None` when disabled.
    pub(crate) failover: Option<Arc<crate::spool::Failover>>,
    pub(crate) region: String,
    /// Breakers and usage counters; `None` reads without health ordering.
    pub(crate) guard: Option<Arc<crate::guard::Guard>>,
    /// Deletes obsolete bytes in the background (see `write/cleanup.rs`).
    pub(crate) cleaner: crate::write::Cleaner,
    /// Delta compression (encoding, decoding, the reference cache).
    pub(crate) delta: Option<Arc<crate::delta::DeltaEngine>>,
    /// Copies a PUT or CopyObject writes before its acknowledgement
    /// (`replication.write_quorum`; see `write/quorum.rs`).
    pub(crate) write_quorum: crate::write::WriteQuorum,
}

impl StrataS3 {
    pub fn new(cp: Arc<dyn ControlPlane>, backends: Backends, region: String) -> StrataS3 {
        StrataS3 {
            cp,
            backends,
            failover: None,
            region,
            guard: None,
            cleaner: crate::write::Cleaner::default(),
            delta: None,
            write_quorum: crate::write::WriteQuorum::default(),
        }
    }

    /// Acknowledges a PUT or CopyObject only after the bucket's quorum of
    /// copies (`replication.write_quorum`, `bucket_write_quorum`) is durable
    /// on as many distinct backends (1, the default: after one copy).
    pub fn with_write_quorum(mut self, replication: &strata_core::config::ReplicationConfig) -> StrataS3 {
        self.write_quorum = crate::write::WriteQuorum::from_config(replication);
        self
    }

    /// Routes every backend call through `guard` (breakers and usage counting).
    pub fn with_guard(mut self, guard: Option<Arc<crate::guard::Guard>>) -> StrataS3 {
        if let Some(g) = &guard {
            self.backends = g.backends();
        }
        self.guard = guard;
        self
    }

    /// Delta compression on (`Some`): new writes follow the control plane's
    /// delta policy, and delta objects can be read.
    pub fn with_delta(mut self, delta: Option<Arc<crate::delta::DeltaEngine>>) -> StrataS3 {
        self.delta = delta;
        self
    }

    /// Turns write failover on (`Some`) or off (`None`, the default of `new`).
    pub fn with_failover(mut self, failover: Option<Arc<crate::spool::Failover>>) -> StrataS3 {
        self.failover = failover;
        self
    }
}

type R<T> = S3Result<S3Response<T>>;

#[async_trait]
impl S3 for StrataS3 {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
        self.op_list_buckets(req).await
    }
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
        self.op_create_bucket(req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
        self.op_head_bucket(req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
        self.op_delete_bucket(req).await
    }
    async fn get_bucket_location(&self, req: S3Request<GetBucketLocationInput>) -> R<GetBucketLocationOutput> {
        self.op_get_bucket_location(req).await
    }
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
        self.op_put_object(req).await
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
        self.op_get_object(req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
        self.op_head_object(req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
        self.op_delete_object(req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> R<DeleteObjectsOutput> {
        self.op_delete_objects(req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
        self.op_copy_object(req).await
    }
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
        self.op_list_objects(req).await
    }
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
        self.op_list_objects_v2(req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> R<CreateMultipartUploadOutput> {
        self.op_create_multipart_upload(req).await
    }
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> R<UploadPartOutput> {
        self.op_upload_part(req).await
    }
    async fn upload_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> R<UploadPartCopyOutput> {
        self.op_upload_part_copy(req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> R<CompleteMultipartUploadOutput> {
        self.op_complete_multipart_upload(req).await
    }
    async fn abort_multipart_upload(&self, req: S3Request<AbortMultipartUploadInput>) -> R<AbortMultipartUploadOutput> {
        self.op_abort_multipart_upload(req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
        self.op_list_parts(req).await
    }
    async fn list_multipart_uploads(&self, req: S3Request<ListMultipartUploadsInput>) -> R<ListMultipartUploadsOutput> {
        self.op_list_multipart_uploads(req).await
    }
}
