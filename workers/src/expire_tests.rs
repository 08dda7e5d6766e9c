//! The stale-multipart and lifecycle jobs against an in-process control plane.

use std::sync::Arc;
use std::time::Duration;

use strata_core::config::LifecycleRule;
use strata_core::{CpError, ObjectMeta, UploadInfo};

use crate::testkit::{cp_kit, enc};
use crate::{Job, LifecycleJob, Outcome, StaleMultipartJob, system_clock};

fn upload(id: &str, initiated_unix_ms: i64) -> UploadInfo {
    UploadInfo {
        upload_id: id.into(),
        bucket: "b".into(),
        key: format!("key-{id}"),
        meta: ObjectMeta::default(),
        initiated_unix_ms,
    }
}

#[tokio::test]
async fn stale_uploads_are_aborted_in_batches_and_fresh_ones_kept() {
    let k = cp_kit(1, &enc(false)).await;
    let now = system_clock()();
    for (id, at) in [("old1", 1_000), ("old2", 2_000), ("fresh", now - 1_000)] {
        k.store.create_upload(&upload(id, at)).await.unwrap();
    }
    let mut job = StaleMultipartJob::new(k.store.clone());
    job.max_age = Duration::from_secs(60);
    job.batch = 1;
    assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
    assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
    assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
    for id in ["old1", "old2"] {
        assert!(
            matches!(k.store.get_upload("b", id).await, Err(CpError::NoSuchUpload)),
            "{id}"
        );
    }
    assert_eq!(k.store.get_upload("b", "fresh").await.unwrap().upload_id, "fresh");
}

#[tokio::test]
async fn lifecycle_expires_old_objects_under_the_prefix_only() {
    let k = cp_kit(1, &enc(false)).await;
    for key in ["tmp/a", "tmp/b", "tmpx", "keep/c"] {
        k.put(key, key.as_bytes(), &[], true).await;
    }
    let rule = LifecycleRule {
        bucket: "b".into(),
        prefix: "tmp/".into(),
        expire_after_days: None,
        expire_after_secs: Some(60),
    };
    let missing = LifecycleRule {
        bucket: "gone".into(),
        ..rule.clone()
    };
    let mut job = LifecycleJob::new(k.store.clone(), k.cp.clone(), vec![missing, rule]);
    // Not old enough yet.
    assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
    assert!(k.store.get_object("b", "tmp/a").await.is_ok());
    // Two minutes later, one deletion per cycle.
    let later = system_clock()() + 120_000;
    job.clock = Arc::new(move || later);
    job.batch = 1;
    assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
    assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
    assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
    for key in ["tmp/a", "tmp/b"] {
        assert!(
            matches!(k.store.get_object("b", key).await, Err(CpError::NoSuchKey)),
            "{key}"
        );
    }
    for key in ["tmpx", "keep/c"] {
        assert!(k.store.get_object("b", key).await.is_ok(), "{key}");
    }
    // Their bytes wait in the cleanup queue.
    assert_eq!(k.store.pending_cleanup(10).await.unwrap().len(), 2);
}
