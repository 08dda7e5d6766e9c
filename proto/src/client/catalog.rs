//! `impl Catalog for GrpcControlPlane`: one `Catalog` RPC per method.

use async_trait::async_trait;
use strata_core::{
    BlobKey, BucketInfo, CleanupItem, Commit, CpResult, DeltaDecision, DeltaRef, ListPage, ListPartsPage, ListQuery,
    ListUploadsPage, ListUploadsQuery, ObjectMeta, ObjectRecord, PartInfo, Segment, UploadInfo, WriteCondition,
    WritePlan,
};

use super::GrpcControlPlane;
use crate::convert as cv;
use crate::error::malformed;
use crate::pb;
use crate::pb::catalog_client::CatalogClient;

#[async_trait]
impl strata_core::Catalog for GrpcControlPlane {
    async fn create_bucket(&self, bucket: &str, owner: &str) -> CpResult<()> {
        let (bucket, owner) = (bucket.to_string(), owner.to_string());
        call!(
            self,
            CatalogClient.create_bucket(pb::CreateBucketRequest { bucket, owner })
        )
        .map(|_| ())
    }

    async fn delete_bucket(&self, bucket: &str) -> CpResult<()> {
        let bucket = bucket.to_string();
        call!(self, CatalogClient.delete_bucket(pb::BucketRequest { bucket })).map(|_| ())
    }

    async fn head_bucket(&self, bucket: &str) -> CpResult<BucketInfo> {
        let bucket = bucket.to_string();
        call!(self, CatalogClient.head_bucket(pb::BucketRequest { bucket }), read).map(cv::bucket_from_pb)
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        let r = call!(self, CatalogClient.list_buckets(pb::Empty {}), read)?;
        Ok(r.buckets.into_iter().map(cv::bucket_from_pb).collect())
    }

    async fn plan_write(
        &self,
        bucket: &str,
        key: &str,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        let req = pb::PlanWriteRequest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size_hint: cv::size_hint_to_pb(size_hint),
            exclude: exclude.to_vec(),
        };
        let r = call!(self, CatalogClient.plan_write(req))?;
        cv::plan_from_pb(Some(r)).map_err(malformed)
    }

    async fn commit_write(&self, plan: &WritePlan, commit: Commit) -> CpResult<Vec<CleanupItem>> {
        let req = pb::CommitWriteRequest {
            plan: Some(cv::plan_to_pb(plan.clone())),
            condition: cv::condition_to_pb(&commit.condition),
            bucket: commit.bucket,
            key: commit.key,
            meta: Some(cv::meta_to_pb(commit.meta)),
            segments: commit.segments.into_iter().map(cv::segment_to_pb).collect(),
            copies: commit.copies.into_iter().map(cv::copy_commit_to_pb).collect(),
        };
        call!(self, CatalogClient.commit_write(req)).map(|o| cv::obsolete_from_pb(Some(o)))
    }

    async fn abort_write(&self, intent_id: &str) -> CpResult<()> {
        let intent_id = intent_id.to_string();
        call!(self, CatalogClient.abort_write(pb::AbortWriteRequest { intent_id })).map(|_| ())
    }

    async fn plan_reference(&self, bucket: &str, space: &str, size_hint: Option<u64>) -> CpResult<WritePlan> {
        let req = pb::PlanReferenceRequest {
            bucket: bucket.to_string(),
            space: space.to_string(),
            size_hint: cv::size_hint_to_pb(size_hint),
        };
        let r = call!(self, CatalogClient.plan_reference(req))?;
        cv::plan_from_pb(Some(r)).map_err(malformed)
    }

    async fn commit_reference(
        &self,
        plan: &WritePlan,
        space: &str,
        sha256: &str,
        segment: Segment,
    ) -> CpResult<DeltaRef> {
        let req = pb::CommitReferenceRequest {
            plan: Some(cv::plan_to_pb(plan.clone())),
            space: space.to_string(),
            sha256: sha256.to_string(),
            segment: Some(cv::segment_to_pb(segment)),
        };
        call!(self, CatalogClient.commit_reference(req)).map(cv::delta_ref_from_pb)
    }

    async fn locate_reference(&self, ref_id: &str) -> CpResult<ObjectRecord> {
        let req = pb::LocateReferenceRequest {
            ref_id: ref_id.to_string(),
        };
        let r = call!(self, CatalogClient.locate_reference(req), read)?;
        cv::record_from_pb(Some(r)).map_err(malformed)
    }

    async fn record_delta(&self, plan: &WritePlan, decision: DeltaDecision) -> CpResult<()> {
        let req = pb::RecordDeltaRequest {
            plan: Some(cv::plan_to_pb(plan.clone())),
            decision: Some(cv::decision_to_pb(decision)),
        };
        call!(self, CatalogClient.record_delta(req)).map(|_| ())
    }

    async fn report_corrupt(&self, backend_id: &str, backend_key: &str, reason: &str) -> CpResult<()> {
        let req = pb::ReportCorruptRequest {
            backend_id: backend_id.to_string(),
            backend_key: backend_key.to_string(),
            reason: reason.to_string(),
        };
        call!(self, CatalogClient.report_corrupt(req)).map(|_| ())
    }

    async fn record_blob_key(&self, plan: &WritePlan, key: &BlobKey) -> CpResult<()> {
        let req = pb::RecordBlobKeyRequest {
            plan: Some(cv::plan_to_pb(plan.clone())),
            key: Some(cv::blob_key_to_pb(key.stored())),
        };
        call!(self, CatalogClient.record_blob_key(req)).map(|_| ())
    }

    async fn locate(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let r = call!(self, CatalogClient.locate(pb::ObjectRequest { bucket, key }), read)?;
        cv::record_from_pb(Some(r)).map_err(malformed)
    }

    async fn list_objects(&self, q: ListQuery) -> CpResult<ListPage> {
        let req = pb::ListObjectsRequest {
            bucket: q.bucket,
            prefix: q.prefix,
            delimiter: q.delimiter,
            after: q.after,
            max_keys: q.max_keys,
        };
        call!(self, CatalogClient.list_objects(req), read).map(cv::list_page_from_pb)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CpResult<Vec<CleanupItem>> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        call!(self, CatalogClient.delete_object(pb::ObjectRequest { bucket, key }))
            .map(|o| cv::obsolete_from_pb(Some(o)))
    }

    async fn ack_cleanup(&self, ids: Vec<i64>) -> CpResult<()> {
        call!(self, CatalogClient.ack_cleanup(pb::AckCleanupRequest { ids })).map(|_| ())
    }

    async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> CpResult<UploadInfo> {
        let req = pb::CreateUploadRequest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            meta: Some(cv::meta_to_pb(meta)),
        };
        let r = call!(self, CatalogClient.create_upload(req))?;
        cv::upload_from_pb(Some(r)).map_err(malformed)
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
        let (bucket, upload_id) = (bucket.to_string(), upload_id.to_string());
        let r = call!(
            self,
            CatalogClient.get_upload(pb::UploadRequest { bucket, upload_id }),
            read
        )?;
        cv::upload_from_pb(Some(r)).map_err(malformed)
    }

    async fn plan_part(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number: u32,
        size_hint: Option<u64>,
        exclude: &[String],
    ) -> CpResult<WritePlan> {
        let req = pb::PlanPartRequest {
            bucket: bucket.to_string(),
            upload_id: upload_id.to_string(),
            part_number,
            size_hint: cv::size_hint_to_pb(size_hint),
            exclude: exclude.to_vec(),
        };
        let r = call!(self, CatalogClient.plan_part(req))?;
        cv::plan_from_pb(Some(r)).map_err(malformed)
    }

    async fn commit_part(
        &self,
        plan: &WritePlan,
        bucket: &str,
        upload_id: &str,
        part: PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        let req = pb::CommitPartRequest {
            plan: Some(cv::plan_to_pb(plan.clone())),
            bucket: bucket.to_string(),
            upload_id: upload_id.to_string(),
            part: Some(cv::part_to_pb(part)),
        };
        call!(self, CatalogClient.commit_part(req)).map(|o| cv::obsolete_from_pb(Some(o)))
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        let req = pb::ListPartsRequest {
            bucket: bucket.to_string(),
            upload_id: upload_id.to_string(),
            part_number_marker,
            max_parts,
        };
        let r = call!(self, CatalogClient.list_parts(req), read)?;
        let upload = cv::upload_from_pb(r.upload).map_err(malformed)?;
        let parts = r.parts.into_iter().map(|p| cv::part_from_pb(Some(p)));
        let page = ListPartsPage {
            parts: parts.collect::<Result<_, _>>().map_err(malformed)?,
            is_truncated: r.is_truncated,
            next_part_number_marker: r.next_part_number_marker,
        };
        Ok((upload, page))
    }

    async fn list_uploads(&self, q: ListUploadsQuery) -> CpResult<ListUploadsPage> {
        let req = pb::ListUploadsRequest {
            bucket: q.bucket,
            prefix: q.prefix,
            key_marker: q.key_marker,
            upload_id_marker: q.upload_id_marker,
            max_uploads: q.max_uploads,
        };
        let r = call!(self, CatalogClient.list_uploads(req), read)?;
        let uploads = r.uploads.into_iter().map(|u| cv::upload_from_pb(Some(u)));
        Ok(ListUploadsPage {
            uploads: uploads.collect::<Result<_, _>>().map_err(malformed)?,
            is_truncated: r.is_truncated,
        })
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        let req = pb::CompleteUploadRequest {
            bucket: bucket.to_string(),
            upload_id: upload_id.to_string(),
            condition: cv::condition_to_pb(condition),
            parts: parts
                .into_iter()
                .map(|(part_number, etag)| pb::CompletePart { part_number, etag })
                .collect(),
        };
        let r = call!(self, CatalogClient.complete_upload(req))?;
        let record = cv::record_from_pb(r.record).map_err(malformed)?;
        Ok((record, cv::obsolete_from_pb(r.obsolete)))
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        let (bucket, upload_id) = (bucket.to_string(), upload_id.to_string());
        call!(
            self,
            CatalogClient.abort_upload(pb::UploadRequest { bucket, upload_id })
        )
        .map(|o| cv::obsolete_from_pb(Some(o)))
    }
}
