//! Reconciler tests: orphans planted on a local disk, copies deleted behind
//! the catalog's back, paging and resumption.

use std::sync::Arc;
use std::time::Duration;

use strata_store::BlobState;

use super::ReconcileJob;
use crate::testkit::{CpKit, Kit, cp_kit, enc, kit};
use crate::{CleanupJob, Job, Outcome, ReplicationJob, system_clock};

const HOUR: Duration = Duration::from_secs(3600);

/// A reconciler over the kit's store and disks, with the kit's clock.
fn job(
    store: &Arc<dyn strata_store::MetaStore>,
    backends: &strata_backend::Backends,
    clock: crate::Clock,
) -> ReconcileJob {
    let mut j = ReconcileJob::new(store.clone(), backends.clone(), Duration::from_secs(86400), HOUR);
    j.clock = clock;
    j
}

/// Moves the kit's clock to the real time plus `ahead_ms` (file mtimes are real).
fn real_time(k: &Kit, ahead_ms: i64) {
    k.now
        .store((system_clock())() + ahead_ms, std::sync::atomic::Ordering::SeqCst);
}

fn detail(p: &strata_store::JobProgress) -> String {
    p.detail.clone()
}

#[tokio::test]
async fn old_orphans_are_queued_and_cleaned_young_ones_and_known_ones_kept() {
    let k = kit().await;
    let orphan = k.put_bytes(b"nobody's").await;
    let queued = k.put_bytes(b"queued").await;
    k.queue_cleanup("disk-1", &queued, 6).await;
    real_time(&k, 0);
    let j = job(&k.store, &k.backends, k.clock.clone());
    // Young: possibly a write in flight.
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);
    let p = k.store.get_job("reconcile:disk-1").await.unwrap().unwrap();
    assert_eq!(p.state, "done");
    assert_eq!(detail(&p), "errors=0 lost=0 missing=0 orphans=0 scanned=2 young=1");
    assert_eq!(
        k.store.pending_cleanup(10).await.unwrap().len(),
        1,
        "only the queued one"
    );

    // A finished pass waits for its period.
    real_time(&k, 2 * 3_600_000);
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);
    assert_eq!(k.store.pending_cleanup(10).await.unwrap().len(), 1);
    real_time(&k, 86_400_000 + 3_600_000);
    assert_eq!(j.run_once().await.unwrap(), Outcome::Idle);
    let p = k.store.get_job("reconcile:disk-1").await.unwrap().unwrap();
    assert_eq!(detail(&p), "errors=0 lost=0 missing=0 orphans=1 scanned=2 young=0");
    let pending: Vec<String> = (k.store.pending_cleanup(10).await.unwrap().into_iter())
        .map(|i| i.backend_key)
        .collect();
    assert_eq!(pending.len(), 2);
    assert!(pending.contains(&orphan) && pending.contains(&queued));
    assert_eq!(k.orphan_bytes("disk-1").await, 6 + 8, "the orphan's bytes are counted");

    // The cleanup job deletes it; the reconciler never does.
    assert!(k.exists(&orphan).await);
    let cleanup = CleanupJob::new(k.store.clone(), k.backends.clone());
    cleanup.run_once().await.unwrap();
    assert!(!k.exists(&orphan).await && !k.exists(&queued).await);
    assert_eq!(k.orphan_bytes("disk-1").await, 0);
}

#[tokio::test]
async fn passes_are_paged_bounded_per_cycle_and_resume() {
    let k = kit().await;
    let mut planted = Vec::new();
    for _ in 0..25 {
        planted.push(k.put_bytes(b"x").await);
    }
    // Ten of them are known to the catalog (queued for cleanup).
    for key in &planted[..10] {
        k.queue_cleanup("disk-1", key, 1).await;
    }
    real_time(&k, 2 * 3_600_000);
    let mut j = job(&k.store, &k.backends, k.clock.clone());
    j.page = 4;
    j.keys_per_cycle = 6;
    let mut cycles = 0;
    while j.run_once().await.unwrap() == Outcome::Busy {
        cycles += 1;
        let p = k.store.get_job("reconcile:disk-1").await.unwrap().unwrap();
        assert_eq!(p.state, "running");
        assert!(!p.cursor.is_empty(), "a cursor to resume from");
        // A restart: a new job instance carries on from the saved cursor.
        let mut again = job(&k.store, &k.backends, k.clock.clone());
        (again.page, again.keys_per_cycle) = (4, 6);
        j = again;
    }
    assert!(cycles >= 3, "25 keys at 6-8 a cycle: {cycles} busy cycles");
    let p = k.store.get_job("reconcile:disk-1").await.unwrap().unwrap();
    assert_eq!((p.state.as_str(), p.done), ("done", 25));
    assert_eq!(detail(&p), "errors=0 lost=0 missing=0 orphans=15 scanned=25 young=0");
    let mut pending: Vec<String> = (k.store.pending_cleanup(100).await.unwrap().into_iter())
        .map(|i| i.backend_key)
        .collect();
    pending.sort();
    planted.sort();
    assert_eq!(pending, planted, "each blob queued exactly once");
}

/// An object with copies on disk-1 and disk-2.
async fn replicated(k: &CpKit, key: &str, data: &[u8]) -> strata_core::ObjectRecord {
    k.put(key, data, &["disk-2"], true).await;
    let repl = ReplicationJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        2,
        Duration::from_secs(1),
    );
    repl.run_once().await.unwrap();
    let rec = k.store.get_object("b", key).await.unwrap();
    assert_eq!(rec.copies.len(), 1);
    rec
}

#[tokio::test]
async fn a_copy_deleted_behind_our_back_is_dropped_and_replicated_again() {
    let k = cp_kit(2, &enc(false)).await;
    let data = b"the bytes that must survive";
    let rec = replicated(&k, "k", data).await;
    let lost = rec.copies[0][0].clone();
    assert_eq!(lost.backend_id, "disk-2");
    std::fs::remove_file(k.file("disk-2", &lost.backend_key)).unwrap();

    let j = job(&k.store, &k.backends, system_clock());
    j.run_once().await.unwrap();
    let p = k.store.get_job("reconcile:disk-2").await.unwrap().unwrap();
    assert_eq!(detail(&p), "errors=0 lost=0 missing=1 orphans=0 scanned=0 young=0");
    let now = k.store.get_object("b", "k").await.unwrap();
    assert!(now.copies.is_empty(), "the lost copy is out of the catalog");
    assert_eq!(now.segments, rec.segments);
    assert_eq!(k.read("k", 0).await.unwrap(), data);

    let repl = ReplicationJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        2,
        Duration::from_secs(1),
    );
    repl.run_once().await.unwrap();
    let healed = k.store.get_object("b", "k").await.unwrap();
    assert_eq!(healed.copies.len(), 1);
    assert_eq!(healed.copies[0][0].backend_id, "disk-2");
    assert!(k.file("disk-2", &healed.copies[0][0].backend_key).exists());
    assert_eq!(k.read("k", 1).await.unwrap(), data);
    // The next pass finds everything in place.
    let j = ReconcileJob {
        period: Duration::ZERO,
        ..job(&k.store, &k.backends, system_clock())
    };
    j.run_once().await.unwrap();
    let p = k.store.get_job("reconcile:disk-2").await.unwrap().unwrap();
    assert_eq!(detail(&p), "errors=0 lost=0 missing=0 orphans=0 scanned=1 young=0");
}

#[tokio::test]
async fn a_lost_last_copy_is_quarantined_not_dropped() {
    let k = cp_kit(1, &enc(false)).await;
    let plan = k.put("only", b"one copy", &[], true).await;
    std::fs::remove_file(k.file("disk-1", &plan.backend_key)).unwrap();
    let j = job(&k.store, &k.backends, system_clock());
    j.run_once().await.unwrap();
    let p = k.store.get_job("reconcile:disk-1").await.unwrap().unwrap();
    assert_eq!(detail(&p), "errors=0 lost=1 missing=1 orphans=0 scanned=0 young=0");
    let rec = k.store.get_object("b", "only").await.unwrap();
    assert_eq!(
        rec.segments[0].backend_key, plan.backend_key,
        "the object keeps its copy"
    );
    let blobs = (k.store.get_blobs(&[("disk-1".into(), plan.backend_key.clone())]).await).unwrap();
    assert_eq!(blobs[0].state, BlobState::Quarantined);
    assert!(
        k.read("only", 0).await.is_err(),
        "reads fail rather than return nothing"
    );
}

#[tokio::test]
async fn a_backend_that_cannot_list_is_an_error_and_others_go_on() {
    let k = kit().await;
    let orphan = k.put_bytes(b"old").await;
    real_time(&k, 2 * 3_600_000);
    std::fs::remove_dir_all(k._dir.path().join("disk-1").join("objects")).unwrap();
    std::fs::write(k._dir.path().join("disk-1").join("objects"), b"not a directory").unwrap();
    let j = job(&k.store, &k.backends, k.clock.clone());
    let err = j.run_once().await.unwrap_err();
    assert!(err.contains("list backend `disk-1`"), "{err}");
    assert!(k.store.pending_cleanup(10).await.unwrap().is_empty());
    let _ = orphan;
}

#[tokio::test]
async fn a_stalled_write_is_kept_and_a_missing_part_is_reported() {
    use strata_core::{ObjectId, PartInfo, Segment, UploadInfo, WritePlan};
    let k = kit().await;
    k.store.create_bucket("b", "admin", 1).await.unwrap();
    // A write whose intent is still pending hours later (the reaper's business, not ours).
    let stalled = k.put_bytes(b"half-way").await;
    let plan = WritePlan {
        intent_id: "intent-stalled".into(),
        object_id: "obj-stalled".into(),
        backend_id: "disk-1".into(),
        backend_key: stalled.clone(),
        ..Default::default()
    };
    k.store.insert_intent(&plan, "b", "k", None, k.now()).await.unwrap();
    // An upload in progress whose part's blob is gone.
    let upload = UploadInfo {
        upload_id: "u1".into(),
        bucket: "b".into(),
        key: "big".into(),
        meta: Default::default(),
        initiated_unix_ms: k.now(),
    };
    k.store.create_upload(&upload).await.unwrap();
    let gone = ObjectId::random().to_string();
    let part_plan = WritePlan {
        intent_id: "intent-part".into(),
        object_id: "part-u1-1".into(),
        backend_id: "disk-1".into(),
        backend_key: gone.clone(),
        ..Default::default()
    };
    k.store
        .insert_intent(&part_plan, "b", "big", None, k.now())
        .await
        .unwrap();
    let part = PartInfo {
        part_number: 1,
        etag: "e".into(),
        size: 5,
        last_modified_unix_ms: k.now(),
        segment: Segment {
            backend_id: "disk-1".into(),
            backend_key: gone,
            length: 5,
            ..Default::default()
        },
        checksums: Default::default(),
    };
    k.store.commit_part("intent-part", "b", "u1", &part).await.unwrap();

    real_time(&k, 10 * 3_600_000);
    let j = job(&k.store, &k.backends, k.clock.clone());
    j.run_once().await.unwrap();
    let p = k.store.get_job("reconcile:disk-1").await.unwrap().unwrap();
    assert_eq!(detail(&p), "errors=0 lost=0 missing=1 orphans=0 scanned=1 young=0");
    assert!(k.store.pending_cleanup(10).await.unwrap().is_empty(), "nothing queued");
    assert!(k.exists(&stalled).await);
    let (_, parts) = k.store.list_parts("b", "u1", 0, 10).await.unwrap();
    assert_eq!(
        parts.parts.len(),
        1,
        "the upload is left for the client or the stale-upload job"
    );
}
