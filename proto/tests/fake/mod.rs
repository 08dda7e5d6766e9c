//! A small in-memory control plane for the gRPC tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use strata_core::*;

#[derive(Default)]
pub struct Fake {
    pub calls: AtomicUsize,
    pub buckets: Mutex<BTreeMap<String, BucketInfo>>,
    pub objects: Mutex<BTreeMap<(String, String), ObjectRecord>>,
    pub hints: Mutex<Vec<Option<u64>>>,
}

impl Fake {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

fn upload(bucket: &str, key: &str) -> UploadInfo {
    UploadInfo {
        upload_id: "u1".into(),
        bucket: bucket.into(),
        key: key.into(),
        meta: ObjectMeta::default(),
        initiated_unix_ms: 7,
    }
}

#[async_trait]
impl strata_core::Catalog for Fake {
    async fn create_bucket(&self, bucket: &str, _owner: &str) -> CpResult<()> {
        self.called();
        let mut b = self.buckets.lock().unwrap();
        if b.contains_key(bucket) {
            return Err(CpError::BucketAlreadyOwnedByYou);
        }
        let info = BucketInfo {
            name: bucket.into(),
            created_unix_ms: b.len() as i64,
        };
        b.insert(bucket.into(), info);
        Ok(())
    }

    async fn delete_bucket(&self, _bucket: &str) -> CpResult<()> {
        self.called();
        Err(CpError::BucketNotEmpty)
    }

    async fn head_bucket(&self, bucket: &str) -> CpResult<BucketInfo> {
        self.called();
        self.buckets
            .lock()
            .unwrap()
            .get(bucket)
            .cloned()
            .ok_or(CpError::NoSuchBucket)
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        self.called();
        Ok(self.buckets.lock().unwrap().values().cloned().collect())
    }

    async fn plan_write(&self, bucket: &str, _key: &str, hint: Option<u64>, exclude: &[String]) -> CpResult<WritePlan> {
        self.called();
        self.hints.lock().unwrap().push(hint);
        if hint > Some(1 << 40) {
            return Err(CpError::NoCapacity(format!("{bucket}: too big")));
        }
        if !exclude.is_empty() {
            return Err(CpError::NoCapacity(format!("excluded {}", exclude.join(","))));
        }
        Ok(WritePlan {
            intent_id: "i1".into(),
            object_id: "o1".into(),
            backend_id: "b1".into(),
            backend_key: "k1".into(),
            ..Default::default()
        })
    }

    async fn commit_write(&self, plan: &WritePlan, commit: Commit) -> CpResult<Vec<CleanupItem>> {
        self.called();
        assert_eq!(plan.backend_key, "k1", "the whole plan crosses the wire");
        let Commit {
            bucket,
            key,
            meta,
            segments,
            condition,
            ..
        } = commit;
        let current = (self.objects.lock().unwrap())
            .get(&(bucket.clone(), key.clone()))
            .map(|o| o.meta.etag.clone());
        condition.check(current.as_deref())?;
        let rec = ObjectRecord {
            bucket: bucket.clone(),
            key: key.clone(),
            object_id: plan.object_id.clone(),
            meta,
            segments,
            copies: vec![vec![Segment {
                backend_id: "b2".into(),
                backend_key: "copy".into(),
                length: 11,
                ..Default::default()
            }]],
        };
        let old = self.objects.lock().unwrap().insert((bucket, key), rec);
        Ok(old
            .into_iter()
            .map(|o| CleanupItem {
                id: 1,
                backend_id: "b1".into(),
                backend_key: o.object_id,
            })
            .collect())
    }

    async fn plan_reference(&self, _b: &str, _s: &str, _h: Option<u64>) -> CpResult<WritePlan> {
        Err(CpError::Internal("no deltas in the fake".into()))
    }

    async fn commit_reference(
        &self,
        _p: &WritePlan,
        _s: &str,
        _h: &str,
        _seg: Segment,
    ) -> CpResult<strata_core::DeltaRef> {
        Err(CpError::Internal("no deltas in the fake".into()))
    }

    async fn locate_reference(&self, _r: &str) -> CpResult<ObjectRecord> {
        Err(CpError::NoSuchKey)
    }

    async fn record_delta(&self, _p: &WritePlan, _d: strata_core::DeltaDecision) -> CpResult<()> {
        Ok(())
    }

    async fn report_corrupt(&self, _backend_id: &str, _backend_key: &str, _reason: &str) -> CpResult<()> {
        Ok(())
    }

    async fn record_blob_key(&self, _plan: &WritePlan, _key: &strata_core::BlobKey) -> CpResult<()> {
        Ok(())
    }

    async fn abort_write(&self, _intent_id: &str) -> CpResult<()> {
        self.called();
        Ok(())
    }

    async fn locate(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        self.called();
        let objects = self.objects.lock().unwrap();
        objects
            .get(&(bucket.into(), key.into()))
            .cloned()
            .ok_or(CpError::NoSuchKey)
    }

    async fn list_objects(&self, q: ListQuery) -> CpResult<ListPage> {
        self.called();
        let objects = self.objects.lock().unwrap();
        let entries = objects
            .values()
            .filter(|r| r.bucket == q.bucket && r.key.starts_with(&q.prefix));
        Ok(ListPage {
            objects: entries
                .map(|r| ListEntry {
                    key: r.key.clone(),
                    size: r.meta.size,
                    etag: r.meta.etag.clone(),
                    last_modified_unix_ms: r.meta.last_modified_unix_ms,
                })
                .collect(),
            common_prefixes: vec!["dir/".into()],
            is_truncated: true,
            next_after: "dir/".into(),
        })
    }

    async fn delete_object(&self, _b: &str, _k: &str) -> CpResult<Vec<CleanupItem>> {
        self.called();
        Ok(vec![])
    }

    async fn ack_cleanup(&self, _ids: Vec<i64>) -> CpResult<()> {
        self.called();
        Ok(())
    }

    async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> CpResult<UploadInfo> {
        self.called();
        Ok(UploadInfo {
            meta,
            ..upload(bucket, key)
        })
    }

    async fn get_upload(&self, _bucket: &str, _upload_id: &str) -> CpResult<UploadInfo> {
        self.called();
        Err(CpError::NoSuchUpload)
    }

    async fn plan_part(&self, b: &str, u: &str, n: u32, h: Option<u64>, ex: &[String]) -> CpResult<WritePlan> {
        let mut plan = self.plan_write(b, u, h, ex).await?;
        plan.backend_key = format!("k1.{n}");
        Ok(plan)
    }

    async fn commit_part(&self, _p: &WritePlan, _b: &str, _u: &str, part: PartInfo) -> CpResult<Vec<CleanupItem>> {
        self.called();
        Err(CpError::InvalidPart(format!("part {} rejected", part.part_number)))
    }

    async fn list_parts(&self, b: &str, _u: &str, _m: u32, _x: u32) -> CpResult<(UploadInfo, ListPartsPage)> {
        self.called();
        let part = PartInfo {
            part_number: 1,
            etag: "\"e1\"".into(),
            size: 5,
            last_modified_unix_ms: 9,
            segment: Segment {
                backend_id: "b1".into(),
                backend_key: "p1".into(),
                length: 5,
                ..Default::default()
            },
            checksums: BTreeMap::from([("CRC32C".into(), "abc=".into())]),
        };
        let page = ListPartsPage {
            parts: vec![part],
            is_truncated: false,
            next_part_number_marker: 1,
        };
        Ok((upload(b, "big"), page))
    }

    async fn list_uploads(&self, q: ListUploadsQuery) -> CpResult<ListUploadsPage> {
        self.called();
        Ok(ListUploadsPage {
            uploads: vec![upload(&q.bucket, "big")],
            is_truncated: false,
        })
    }

    async fn complete_upload(
        &self,
        _b: &str,
        _u: &str,
        parts: Vec<(u32, String)>,
        _c: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        self.called();
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(CpError::InvalidPartOrder);
        }
        Err(CpError::EntityTooSmall)
    }

    async fn abort_upload(&self, _b: &str, _u: &str) -> CpResult<Vec<CleanupItem>> {
        self.called();
        Ok(vec![CleanupItem {
            id: 3,
            backend_id: "b1".into(),
            backend_key: "p1".into(),
        }])
    }
}

#[async_trait]
impl strata_core::Identity for Fake {
    async fn get_credential(&self, id: &str) -> CpResult<Option<Credential>> {
        self.called();
        Ok((id == "AKID").then(|| Credential {
            access_key_id: id.into(),
            secret_access_key: "sk".into(),
            scope: Scope::Buckets(vec!["alpha".into()]),
        }))
    }
}

#[async_trait]
impl strata_core::Usage for Fake {
    async fn report_usage(&self, report: UsageReport) -> CpResult<Vec<MonthlyUsage>> {
        self.called();
        Ok((report.backends.into_iter())
            .map(|t| MonthlyUsage {
                month: format!("{}:{}", report.reporter, t.breaker.as_str()),
                backend_id: t.backend_id,
                requests: t.requests,
                egress_bytes: t.egress_bytes,
                ingress_bytes: t.ingress_bytes,
                requests_exhausted: true,
                egress_exhausted: false,
                ingress_exhausted: true,
            })
            .collect())
    }
}

#[async_trait]
impl strata_core::Admin for Fake {
    async fn delta_report(&self) -> CpResult<Vec<strata_core::DeltaBucketReport>> {
        Ok(Vec::new())
    }

    async fn status(&self) -> CpResult<ClusterStatus> {
        self.called();
        Ok(sample_status())
    }

    async fn list_backends(&self) -> CpResult<Vec<BackendReport>> {
        self.called();
        Ok(vec![BackendReport {
            backend_id: "b1".into(),
            ..Default::default()
        }])
    }

    async fn drain_backend(&self, backend_id: &str, by: &str, reason: &str) -> CpResult<BackendHoldings> {
        self.called();
        if backend_id != "b1" {
            return Err(unknown_backend(backend_id, &["b1".into()]));
        }
        assert!(!by.is_empty() && !reason.is_empty());
        Ok(BackendHoldings {
            objects: 3,
            segment_bytes: 300,
            ..Default::default()
        })
    }

    async fn undrain_backend(&self, _backend_id: &str, _by: &str) -> CpResult<()> {
        Ok(())
    }

    async fn remove_backend(&self, _backend_id: &str, _by: &str, _force: bool) -> CpResult<Removal> {
        Ok(Removal::default())
    }

    async fn purge_preview(&self, _backend_id: &str) -> CpResult<PurgePlan> {
        Ok(PurgePlan::default())
    }

    async fn purge_backend(&self, _backend_id: &str, _by: &str, _token: &str) -> CpResult<Removal> {
        Ok(Removal::default())
    }

    async fn take_backend_blobs(&self, _backend_id: &str, _limit: u32) -> CpResult<Vec<CleanupItem>> {
        Ok(Vec::new())
    }

    async fn list_jobs(&self) -> CpResult<JobsReport> {
        Ok(JobsReport::default())
    }

    async fn start_job(&self, _name: &str) -> CpResult<String> {
        self.called();
        Ok("started".into())
    }

    async fn pause_job(&self, _name: &str) -> CpResult<String> {
        Ok("paused".into())
    }

    async fn cancel_job(&self, _name: &str) -> CpResult<String> {
        Ok("cancelled".into())
    }
}

/// Metadata exercising every optional field and both maps.
pub fn meta() -> ObjectMeta {
    ObjectMeta {
        size: 11,
        etag: "\"abc\"".into(),
        content_type: Some("text/plain".into()),
        content_encoding: None,
        content_disposition: Some("attachment; filename=\"ü.txt\"".into()),
        content_language: None,
        cache_control: Some("no-cache".into()),
        expires: None,
        user_metadata: BTreeMap::from([("color".into(), "blue".into()), ("ünï".into(), "cödé".into())]),
        checksums: BTreeMap::from([("CRC32C".into(), "yZRlqg==".into())]),
        parts_count: 2,
        last_modified_unix_ms: 1_700_000_000_123,
    }
}

/// What `Fake::status` answers: one backend with a quota, one without.
pub fn sample_status() -> ClusterStatus {
    ClusterStatus {
        backends: vec![
            BackendStatus {
                backend_id: "b1".into(),
                kind: "local".into(),
                bytes_used: 30_000,
                orphan_bytes: 5,
                reserved_bytes: 7,
                objects: 3,
                quota_bytes: Some(1 << 20),
                max_object_size: Some(0),
                eligible_for_writes: true,
                usage: MonthlyUsage {
                    backend_id: "b1".into(),
                    month: "2026-11".into(),
                    requests: 9,
                    egress_bytes: 8,
                    ingress_bytes: 7,
                    requests_exhausted: false,
                    egress_exhausted: true,
                    ingress_exhausted: false,
                },
                api_request_limit: Some(10),
                egress_byte_limit: Some(8),
                ingress_byte_limit: None,
                breaker: "half_open".into(),
            },
            BackendStatus {
                backend_id: "b2".into(),
                kind: "s3".into(),
                eligible_for_writes: false,
                ..BackendStatus::default()
            },
        ],
        cleanup_dead_letters: 2,
        ..Default::default()
    }
}
