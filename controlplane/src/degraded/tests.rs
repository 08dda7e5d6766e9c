//! The decorator against a fake control plane whose database can be "down".

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use strata_core::{BackendHoldings, BackendReport, Catalog as _, JobsReport, PurgePlan, Removal, unknown_backend};

use super::*;

#[derive(Default)]
struct Fake {
    down: AtomicBool,
    db_calls: AtomicU32,
}

impl Fake {
    fn db(&self) -> CpResult<()> {
        self.db_calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(CpError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

fn record(bucket: &str, key: &str) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        object_id: format!("id-{key}"),
        meta: ObjectMeta::default(),
        segments: Vec::new(),
        copies: Vec::new(),
    }
}

#[async_trait]
impl strata_core::Catalog for Fake {
    async fn create_bucket(&self, _: &str, _: &str) -> CpResult<()> {
        self.db()
    }

    async fn delete_bucket(&self, _: &str) -> CpResult<()> {
        self.db()
    }

    async fn head_bucket(&self, bucket: &str) -> CpResult<BucketInfo> {
        self.db()?;
        if bucket == PROBE_BUCKET {
            return Err(CpError::NoSuchBucket);
        }
        Ok(BucketInfo {
            name: bucket.into(),
            created_unix_ms: 1,
        })
    }

    async fn list_buckets(&self) -> CpResult<Vec<BucketInfo>> {
        self.db().map(|()| Vec::new())
    }

    async fn plan_write(&self, _: &str, _: &str, _: Option<u64>, _: &[String]) -> CpResult<WritePlan> {
        self.db().map(|()| WritePlan::default())
    }

    async fn commit_write(&self, _: &WritePlan, _: Commit) -> CpResult<Vec<CleanupItem>> {
        self.db().map(|()| Vec::new())
    }

    async fn abort_write(&self, _: &str) -> CpResult<()> {
        self.db()
    }

    async fn record_blob_key(&self, _: &WritePlan, _: &BlobKey) -> CpResult<()> {
        self.db()
    }

    async fn report_corrupt(&self, _: &str, _: &str, _: &str) -> CpResult<()> {
        self.db()
    }

    async fn locate(&self, bucket: &str, key: &str) -> CpResult<ObjectRecord> {
        self.db()?;
        if key == "missing" {
            return Err(CpError::NoSuchKey);
        }
        Ok(record(bucket, key))
    }

    async fn list_objects(&self, _: ListQuery) -> CpResult<ListPage> {
        self.db().map(|()| ListPage::default())
    }

    async fn delete_object(&self, _: &str, _: &str) -> CpResult<Vec<CleanupItem>> {
        self.db().map(|()| Vec::new())
    }

    async fn ack_cleanup(&self, _: Vec<i64>) -> CpResult<()> {
        self.db()
    }

    async fn create_upload(&self, _: &str, _: &str, _: ObjectMeta) -> CpResult<UploadInfo> {
        unreachable!("not used by these tests")
    }

    async fn get_upload(&self, _: &str, _: &str) -> CpResult<UploadInfo> {
        unreachable!("not used by these tests")
    }

    async fn plan_part(&self, _: &str, _: &str, _: u32, _: Option<u64>, _: &[String]) -> CpResult<WritePlan> {
        self.db().map(|()| WritePlan::default())
    }

    async fn commit_part(&self, _: &WritePlan, _: &str, _: &str, _: PartInfo) -> CpResult<Vec<CleanupItem>> {
        self.db().map(|()| Vec::new())
    }

    async fn list_parts(&self, _: &str, _: &str, _: u32, _: u32) -> CpResult<(UploadInfo, ListPartsPage)> {
        unreachable!("not used by these tests")
    }

    async fn list_uploads(&self, _: ListUploadsQuery) -> CpResult<ListUploadsPage> {
        unreachable!("not used by these tests")
    }

    async fn complete_upload(
        &self,
        _: &str,
        _: &str,
        _: Vec<(u32, String)>,
        _: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        unreachable!("not used by these tests")
    }

    async fn abort_upload(&self, _: &str, _: &str) -> CpResult<Vec<CleanupItem>> {
        self.db().map(|()| Vec::new())
    }

    async fn plan_reference(&self, _: &str, _: &str, _: Option<u64>) -> CpResult<WritePlan> {
        self.db().map(|()| WritePlan::default())
    }

    async fn commit_reference(&self, _: &WritePlan, _: &str, _: &str, _: Segment) -> CpResult<DeltaRef> {
        unreachable!("not used by these tests")
    }

    async fn locate_reference(&self, ref_id: &str) -> CpResult<ObjectRecord> {
        self.db().map(|()| record("refs", ref_id))
    }

    async fn record_delta(&self, _: &WritePlan, _: DeltaDecision) -> CpResult<()> {
        self.db()
    }
}

#[async_trait]
impl strata_core::Identity for Fake {
    async fn get_credential(&self, _: &str) -> CpResult<Option<Credential>> {
        self.db().map(|()| None)
    }
}

#[async_trait]
impl strata_core::Usage for Fake {
    async fn report_usage(&self, _: UsageReport) -> CpResult<Vec<MonthlyUsage>> {
        self.db().map(|()| Vec::new())
    }
}

#[async_trait]
impl strata_core::Admin for Fake {
    async fn delta_report(&self) -> CpResult<Vec<DeltaBucketReport>> {
        self.db().map(|()| Vec::new())
    }

    async fn status(&self) -> CpResult<ClusterStatus> {
        unreachable!("not used by these tests")
    }

    async fn list_backends(&self) -> CpResult<Vec<BackendReport>> {
        Ok(vec![BackendReport {
            backend_id: "b1".into(),
            ..Default::default()
        }])
    }

    async fn drain_backend(&self, backend_id: &str, by: &str, reason: &str) -> CpResult<BackendHoldings> {
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
        Ok("started".into())
    }

    async fn pause_job(&self, _name: &str) -> CpResult<String> {
        Ok("paused".into())
    }

    async fn cancel_job(&self, _name: &str) -> CpResult<String> {
        Ok("cancelled".into())
    }
}

fn config() -> DegradedConfig {
    DegradedConfig {
        failure_threshold: 2,
        open_secs: 1,
        read_timeout_ms: 500,
        cache_ttl_secs: 60,
        cache_entries: 100,
    }
}

#[tokio::test]
async fn reads_come_from_the_cache_writes_fail_fast_and_a_probe_recovers() {
    let fake = Arc::new(Fake::default());
    let d = Degraded::wrap(fake.clone(), &config());
    assert_eq!(d.locate("b", "k").await.unwrap().object_id, "id-k");
    d.head_bucket("b").await.unwrap();
    assert_eq!(d.locate("b", "missing").await, Err(CpError::NoSuchKey));

    fake.down.store(true, Ordering::SeqCst);
    // Closed: each lookup still asks the database, fails, and falls back to the cache.
    assert_eq!(d.locate("b", "k").await.unwrap().object_id, "id-k");
    assert_eq!(d.locate("b", "k").await.unwrap().object_id, "id-k");
    assert_eq!(d.breaker().state(), breaker::DbState::Open, "two failures open it");
    let calls = fake.db_calls.load(Ordering::SeqCst);
    // Open: no database call at all.
    assert_eq!(d.locate("b", "k").await.unwrap().object_id, "id-k");
    assert_eq!(d.head_bucket("b").await.unwrap().name, "b");
    assert!(matches!(
        d.locate("b", "never-read").await,
        Err(CpError::Unavailable(_))
    ));
    assert!(
        matches!(d.locate("b", "missing").await, Err(CpError::Unavailable(_))),
        "misses are not cached"
    );
    assert!(matches!(
        d.plan_write("b", "new", None, &[]).await,
        Err(CpError::Unavailable(_))
    ));
    assert!(matches!(
        d.list_objects(ListQuery::default()).await,
        Err(CpError::Unavailable(_))
    ));
    assert_eq!(
        fake.db_calls.load(Ordering::SeqCst),
        calls,
        "an open breaker fails fast"
    );

    fake.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(d.breaker().state(), breaker::DbState::Closed, "the probe closed it");
    d.plan_write("b", "new", None, &[]).await.unwrap();
    (d.commit_write(
        &WritePlan::default(),
        Commit::new("b", "k", ObjectMeta::default(), Vec::new()),
    ))
    .await
    .unwrap();
    fake.down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        let _ = d.head_bucket("b").await;
    }
    assert!(
        matches!(d.locate("b", "k").await, Err(CpError::Unavailable(_))),
        "a committed write drops the cached location"
    );
}
