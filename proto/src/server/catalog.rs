//! The `Catalog` gRPC service (`catalog.proto`), delegating to the core
//! [`strata_core::Catalog`]: buckets, writes, reads, multipart, references.

use strata_core::{Commit, ListQuery, ListUploadsQuery};
use tonic::Request;

use super::{GrpcServer, Reply, reply, v};
use crate::convert::{self as cv, required};
use crate::error::invalid;
use crate::pb::{self, catalog_server as svc};

#[tonic::async_trait]
impl svc::Catalog for GrpcServer {
    async fn create_bucket(&self, req: Request<pb::CreateBucketRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        reply(self.cp.create_bucket(&bucket, &r.owner).await, |()| pb::Empty {})
    }

    async fn delete_bucket(&self, req: Request<pb::BucketRequest>) -> Reply<pb::Empty> {
        let bucket = v(required("bucket", req.into_inner().bucket))?;
        reply(self.cp.delete_bucket(&bucket).await, |()| pb::Empty {})
    }

    async fn head_bucket(&self, req: Request<pb::BucketRequest>) -> Reply<pb::BucketInfo> {
        let bucket = v(required("bucket", req.into_inner().bucket))?;
        reply(self.cp.head_bucket(&bucket).await, cv::bucket_to_pb)
    }

    async fn list_buckets(&self, _req: Request<pb::Empty>) -> Reply<pb::ListBucketsResponse> {
        reply(self.cp.list_buckets().await, |b| pb::ListBucketsResponse {
            buckets: b.into_iter().map(cv::bucket_to_pb).collect(),
        })
    }

    async fn plan_write(&self, req: Request<pb::PlanWriteRequest>) -> Reply<pb::WritePlan> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let key = v(required("key", r.key))?;
        let hint = v(cv::size_hint_from_pb(r.size_hint))?;
        reply(
            self.cp.plan_write(&bucket, &key, hint, &r.exclude).await,
            cv::plan_to_pb,
        )
    }

    async fn commit_write(&self, req: Request<pb::CommitWriteRequest>) -> Reply<pb::Obsolete> {
        let r = req.into_inner();
        let plan = v(cv::plan_from_pb(r.plan))?;
        let bucket = v(required("bucket", r.bucket))?;
        let key = v(required("key", r.key))?;
        let meta = v(cv::meta_from_pb(r.meta))?;
        let segments = v(cv::segments_from_pb(r.segments))?;
        let copies: Result<Vec<_>, _> = r.copies.into_iter().map(cv::copy_commit_from_pb).collect();
        let commit = Commit {
            bucket,
            key,
            meta,
            segments,
            copies: v(copies)?,
            condition: cv::condition_from_pb(r.condition),
        };
        let res = self.cp.commit_write(&plan, commit).await;
        reply(res, cv::obsolete_to_pb)
    }

    async fn abort_write(&self, req: Request<pb::AbortWriteRequest>) -> Reply<pb::Empty> {
        let intent = v(required("intent_id", req.into_inner().intent_id))?;
        reply(self.cp.abort_write(&intent).await, |()| pb::Empty {})
    }

    async fn plan_reference(&self, req: Request<pb::PlanReferenceRequest>) -> Reply<pb::WritePlan> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let space = v(required("space", r.space))?;
        let hint = v(cv::size_hint_from_pb(r.size_hint))?;
        reply(self.cp.plan_reference(&bucket, &space, hint).await, cv::plan_to_pb)
    }

    async fn commit_reference(&self, req: Request<pb::CommitReferenceRequest>) -> Reply<pb::DeltaRef> {
        let r = req.into_inner();
        let plan = v(cv::plan_from_pb(r.plan))?;
        let space = v(required("space", r.space))?;
        let segment = v(cv::present("segment", r.segment).and_then(cv::segment_from_pb))?;
        let res = self.cp.commit_reference(&plan, &space, &r.sha256, segment).await;
        reply(res, cv::delta_ref_to_pb)
    }

    async fn locate_reference(&self, req: Request<pb::LocateReferenceRequest>) -> Reply<pb::ObjectRecord> {
        let ref_id = v(required("ref_id", req.into_inner().ref_id))?;
        reply(self.cp.locate_reference(&ref_id).await, cv::record_to_pb)
    }

    async fn record_delta(&self, req: Request<pb::RecordDeltaRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let plan = v(cv::plan_from_pb(r.plan))?;
        let decision = v(cv::present("decision", r.decision))?;
        let res = self.cp.record_delta(&plan, cv::decision_from_pb(decision)).await;
        reply(res, |()| pb::Empty {})
    }

    async fn report_corrupt(&self, req: Request<pb::ReportCorruptRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let backend_id = v(required("backend_id", r.backend_id))?;
        let backend_key = v(required("backend_key", r.backend_key))?;
        let res = self.cp.report_corrupt(&backend_id, &backend_key, &r.reason).await;
        reply(res, |()| pb::Empty {})
    }

    async fn record_blob_key(&self, req: Request<pb::RecordBlobKeyRequest>) -> Reply<pb::Empty> {
        let r = req.into_inner();
        let plan = v(cv::plan_from_pb(r.plan))?;
        let key = v(cv::present("key", r.key).and_then(cv::blob_key_from_pb))?;
        reply(self.cp.record_blob_key(&plan, &key).await, |()| pb::Empty {})
    }

    async fn locate(&self, req: Request<pb::ObjectRequest>) -> Reply<pb::ObjectRecord> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let key = v(required("key", r.key))?;
        reply(self.cp.locate(&bucket, &key).await, cv::record_to_pb)
    }

    async fn list_objects(&self, req: Request<pb::ListObjectsRequest>) -> Reply<pb::ListObjectsResponse> {
        let r = req.into_inner();
        let query = ListQuery {
            bucket: v(required("bucket", r.bucket))?,
            prefix: r.prefix,
            delimiter: r.delimiter,
            after: r.after,
            max_keys: r.max_keys,
        };
        reply(self.cp.list_objects(query).await, cv::list_page_to_pb)
    }

    async fn delete_object(&self, req: Request<pb::ObjectRequest>) -> Reply<pb::Obsolete> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let key = v(required("key", r.key))?;
        reply(self.cp.delete_object(&bucket, &key).await, cv::obsolete_to_pb)
    }

    async fn ack_cleanup(&self, req: Request<pb::AckCleanupRequest>) -> Reply<pb::Empty> {
        let ids = req.into_inner().ids;
        reply(self.cp.ack_cleanup(ids).await, |()| pb::Empty {})
    }

    async fn create_upload(&self, req: Request<pb::CreateUploadRequest>) -> Reply<pb::UploadInfo> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let key = v(required("key", r.key))?;
        let meta = v(cv::meta_from_pb(r.meta))?;
        reply(self.cp.create_upload(&bucket, &key, meta).await, cv::upload_to_pb)
    }

    async fn get_upload(&self, req: Request<pb::UploadRequest>) -> Reply<pb::UploadInfo> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let upload_id = v(required("upload_id", r.upload_id))?;
        reply(self.cp.get_upload(&bucket, &upload_id).await, cv::upload_to_pb)
    }

    async fn plan_part(&self, req: Request<pb::PlanPartRequest>) -> Reply<pb::WritePlan> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let upload_id = v(required("upload_id", r.upload_id))?;
        if r.part_number == 0 {
            return Err(invalid("part_number must be at least 1".into()));
        }
        let hint = v(cv::size_hint_from_pb(r.size_hint))?;
        let res = (self.cp)
            .plan_part(&bucket, &upload_id, r.part_number, hint, &r.exclude)
            .await;
        reply(res, cv::plan_to_pb)
    }

    async fn commit_part(&self, req: Request<pb::CommitPartRequest>) -> Reply<pb::Obsolete> {
        let r = req.into_inner();
        let plan = v(cv::plan_from_pb(r.plan))?;
        let bucket = v(required("bucket", r.bucket))?;
        let upload_id = v(required("upload_id", r.upload_id))?;
        let part = v(cv::part_from_pb(r.part))?;
        if part.part_number == 0 {
            return Err(invalid("part.part_number must be at least 1".into()));
        }
        let res = self.cp.commit_part(&plan, &bucket, &upload_id, part).await;
        reply(res, cv::obsolete_to_pb)
    }

    async fn list_parts(&self, req: Request<pb::ListPartsRequest>) -> Reply<pb::ListPartsResponse> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let upload_id = v(required("upload_id", r.upload_id))?;
        let res = (self.cp)
            .list_parts(&bucket, &upload_id, r.part_number_marker, r.max_parts)
            .await;
        reply(res, |(upload, page)| pb::ListPartsResponse {
            upload: Some(cv::upload_to_pb(upload)),
            parts: page.parts.into_iter().map(cv::part_to_pb).collect(),
            is_truncated: page.is_truncated,
            next_part_number_marker: page.next_part_number_marker,
        })
    }

    async fn list_uploads(&self, req: Request<pb::ListUploadsRequest>) -> Reply<pb::ListUploadsResponse> {
        let r = req.into_inner();
        let query = ListUploadsQuery {
            bucket: v(required("bucket", r.bucket))?,
            prefix: r.prefix,
            key_marker: r.key_marker,
            upload_id_marker: r.upload_id_marker,
            max_uploads: r.max_uploads,
        };
        reply(self.cp.list_uploads(query).await, |p| pb::ListUploadsResponse {
            uploads: p.uploads.into_iter().map(cv::upload_to_pb).collect(),
            is_truncated: p.is_truncated,
        })
    }

    async fn complete_upload(&self, req: Request<pb::CompleteUploadRequest>) -> Reply<pb::CompleteUploadResponse> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let upload_id = v(required("upload_id", r.upload_id))?;
        let parts = r.parts.into_iter().map(|p| (p.part_number, p.etag)).collect();
        let condition = cv::condition_from_pb(r.condition);
        let res = self.cp.complete_upload(&bucket, &upload_id, parts, &condition).await;
        reply(res, |(record, obsolete)| pb::CompleteUploadResponse {
            record: Some(cv::record_to_pb(record)),
            obsolete: Some(cv::obsolete_to_pb(obsolete)),
        })
    }

    async fn abort_upload(&self, req: Request<pb::UploadRequest>) -> Reply<pb::Obsolete> {
        let r = req.into_inner();
        let bucket = v(required("bucket", r.bucket))?;
        let upload_id = v(required("upload_id", r.upload_id))?;
        reply(self.cp.abort_upload(&bucket, &upload_id).await, cv::obsolete_to_pb)
    }
}
