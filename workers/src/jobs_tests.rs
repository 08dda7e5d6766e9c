//! Tests of the rewrap, scrub and rewrite jobs against an in-process control plane.

use std::sync::Arc;
use std::time::Duration;

use strata_crypto::{Keyring, Kms, MasterKey};
use strata_store::{BlobState, JobProgress};

use crate::testkit::{CpKit, cp_kit, enc};
use crate::{IntegrityJob, Job, Outcome, ReplicationJob, RewrapJob, RewriteJob, RewriteKind};

fn ring(primary: (&str, u8), previous: &[(&str, u8)]) -> Arc<dyn Kms> {
    let prev = previous.iter().map(|(id, b)| MasterKey::new(*id, [*b; 32])).collect();
    Arc::new(Keyring::new(MasterKey::new(primary.0, [primary.1; 32]), prev).unwrap())
}

fn scrubber(k: &CpKit) -> IntegrityJob {
    IntegrityJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        10,
        u64::MAX,
        Duration::from_secs(1),
        Arc::new(|_: &str| true),
    )
}

async fn blob(k: &CpKit, backend: &str, key: &str) -> strata_store::BlobRecord {
    let got = k.store.get_blobs(&[(backend.into(), key.into())]).await.unwrap();
    got.into_iter().next().expect("a blob row")
}

#[tokio::test]
async fn rewrap_moves_every_blob_to_the_primary_and_resumes() {
    let k = cp_kit(1, &enc(true)).await;
    for key in ["a", "b", "c"] {
        k.put(key, b"secret", &[], true).await;
    }
    assert_eq!(k.store.blob_key_counts().await.unwrap(), vec![("k1".into(), 3)]);

    // A key that is not configured is an error naming it.
    let lost = RewrapJob::new(k.store.clone(), ring(("k3", 2), &[]), 10, Duration::from_secs(1));
    let err = lost.run_once().await.unwrap_err();
    assert!(
        err.contains("`k1`") && err.contains("encryption.previous_keys"),
        "{err}"
    );

    let kms = ring(("k2", 2), &[("k1", 1)]);
    let job = RewrapJob::new(k.store.clone(), kms.clone(), 2, Duration::from_secs(1));
    assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
    let p = k.store.get_job("rewrap").await.unwrap().unwrap();
    assert_eq!((p.state.as_str(), p.done, p.total), ("running", 2, 3));
    assert_eq!(p.detail, "k1=1 k2=2");
    // A new instance (a restart) carries on.
    let job = RewrapJob::new(k.store.clone(), kms.clone(), 2, Duration::from_secs(1));
    assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
    let p = k.store.get_job("rewrap").await.unwrap().unwrap();
    assert_eq!((p.state.as_str(), p.done, p.total), ("done", 3, 3));
    assert_eq!(k.store.blob_key_counts().await.unwrap(), vec![("k2".into(), 3)]);
    assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);

    // Readable under the new primary alone.
    let mut k = k;
    let mut cfg = enc(true);
    cfg.primary_key = Some(crate::testkit::key_config("k2", 2));
    k.with_policy(&cfg);
    assert_eq!(k.read("a", 0).await.unwrap(), b"secret");
}

#[tokio::test]
async fn scrub_repairs_a_flipped_byte_from_the_other_copy() {
    let k = cp_kit(2, &enc(false)).await;
    k.put("k", b"hello world", &["disk-2"], true).await;
    let repl = ReplicationJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        2,
        Duration::from_secs(1),
    );
    assert_eq!(repl.run_once().await.unwrap(), Outcome::Busy);
    let rec = k.cp.locate("b", "k").await.unwrap();
    assert_eq!(rec.copies.len(), 1);
    let bad = rec.copies[0][0].clone();
    assert_eq!(bad.backend_id, "disk-2");
    assert!(bad.sha256.is_some(), "replication records the copy's digest");
    k.flip("disk-2", &bad.backend_key, 3);
    assert!(k.read("k", 1).await.is_err());

    let job = scrubber(&k);
    job.run_once().await.unwrap();
    let rec = k.cp.locate("b", "k").await.unwrap();
    assert_ne!(rec.copies[0][0].backend_key, bad.backend_key);
    assert_eq!(k.read("k", 1).await.unwrap(), b"hello world");
    assert_eq!(k.read("k", 0).await.unwrap(), b"hello world");
    assert_eq!(blob(&k, "disk-2", &bad.backend_key).await.state, BlobState::Corrupt);
    let queued = k.store.pending_cleanup(10).await.unwrap();
    assert!(
        queued.iter().any(|c| c.backend_key == bad.backend_key),
        "old blob queued for cleanup"
    );
    assert!(k.store.stale_intents(i64::MAX, 10).await.unwrap().is_empty());
    let p = k.store.get_job("scrub").await.unwrap().unwrap();
    assert_eq!(p.done, 2);
    assert!(
        p.detail.contains("corrupt=1") && p.detail.contains("repaired=1"),
        "{}",
        p.detail
    );
}

#[tokio::test]
async fn scrub_quarantines_a_corrupt_last_copy_and_never_deletes_it() {
    let k = cp_kit(1, &enc(true)).await;
    let plan = k.put("k", b"only copy", &[], true).await;
    k.flip("disk-1", &plan.backend_key, 20);
    scrubber(&k).run_once().await.unwrap();
    assert_eq!(
        blob(&k, "disk-1", &plan.backend_key).await.state,
        BlobState::Quarantined
    );
    assert!(k.file("disk-1", &plan.backend_key).exists());
    assert!(k.store.pending_cleanup(10).await.unwrap().is_empty());
    let p = k.store.get_job("scrub").await.unwrap().unwrap();
    assert!(p.detail.contains("quarantined=1"), "{}", p.detail);
}

#[tokio::test]
async fn scrub_backfills_a_missing_digest() {
    use sha2::Digest;
    let k = cp_kit(1, &enc(false)).await;
    let plan = k.put("k", b"no digest yet", &[], false).await;
    assert!(k.cp.locate("b", "k").await.unwrap().segments[0].sha256.is_none());
    scrubber(&k).run_once().await.unwrap();
    let want = hex::encode(sha2::Sha256::digest(b"no digest yet"));
    assert_eq!(blob(&k, "disk-1", &plan.backend_key).await.sha256, Some(want));
    // The cursor wraps around after the last object.
    let p = k.store.get_job("scrub").await.unwrap().unwrap();
    assert_eq!(p.cursor, "b\nk");
    scrubber(&k).run_once().await.unwrap();
    assert_eq!(k.store.get_job("scrub").await.unwrap().unwrap().cursor, "");
}

fn rewriter(k: &CpKit, batch: u32) -> RewriteJob {
    let sealer = k.sealer.clone();
    RewriteJob::new(
        RewriteKind::EncryptExisting,
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        Arc::new(move |b: &str, be: &str| sealer.seals(b, be)),
        batch,
        Duration::from_secs(1),
    )
}

async fn start(k: &CpKit, name: &str, state: &str) {
    let mut p = k.store.get_job(name).await.unwrap().unwrap_or(JobProgress {
        name: name.into(),
        ..JobProgress::default()
    });
    p.state = state.into();
    k.store.put_job(&p).await.unwrap();
}

#[tokio::test]
async fn encrypt_existing_seals_plaintext_blobs_resumes_and_stops_when_cancelled() {
    let mut k = cp_kit(1, &enc(false)).await;
    let plans = [
        k.put("a", b"alpha", &[], true).await,
        k.put("b", b"bravo", &[], true).await,
        k.put("c", b"charlie", &[], true).await,
    ];
    k.with_policy(&enc(true));
    // Not started: nothing happens.
    assert_eq!(rewriter(&k, 1).run_once().await.unwrap(), Outcome::Idle);
    assert!(k.store.get_job("encrypt-existing").await.unwrap().is_none());

    start(&k, "encrypt-existing", "running").await;
    assert_eq!(rewriter(&k, 1).run_once().await.unwrap(), Outcome::Busy);
    let p = k.store.get_job("encrypt-existing").await.unwrap().unwrap();
    assert_eq!((p.cursor.as_str(), p.done, p.total, p.errors), ("b\na", 1, 3, 0));
    let rec = k.cp.locate("b", "a").await.unwrap();
    assert!(rec.segments[0].cipher.is_some());
    let raw = std::fs::read(k.file("disk-1", &rec.segments[0].backend_key)).unwrap();
    assert!(raw.starts_with(b"STRATA"));
    assert_eq!(k.read("a", 0).await.unwrap(), b"alpha");
    let queued = k.store.pending_cleanup(10).await.unwrap();
    assert!(queued.iter().any(|c| c.backend_key == plans[0].backend_key));

    // Cancelled: stops before the next object.
    start(&k, "encrypt-existing", "cancelled").await;
    assert_eq!(rewriter(&k, 1).run_once().await.unwrap(), Outcome::Idle);
    assert!(k.cp.locate("b", "b").await.unwrap().segments[0].cipher.is_none());

    // Restarted: resumes after "a" (a new instance, as after a restart).
    start(&k, "encrypt-existing", "running").await;
    assert_eq!(rewriter(&k, 10).run_once().await.unwrap(), Outcome::Busy);
    assert_eq!(rewriter(&k, 10).run_once().await.unwrap(), Outcome::Idle);
    let p = k.store.get_job("encrypt-existing").await.unwrap().unwrap();
    assert_eq!((p.state.as_str(), p.done, p.total, p.errors), ("done", 3, 3, 0));
    assert!(p.detail.contains("rewritten=3"), "{}", p.detail);
    for (key, data) in [("b", &b"bravo"[..]), ("c", &b"charlie"[..])] {
        let rec = k.cp.locate("b", key).await.unwrap();
        let raw = std::fs::read(k.file("disk-1", &rec.segments[0].backend_key)).unwrap();
        assert!(raw.starts_with(b"STRATA"));
        assert_eq!(k.read(key, 0).await.unwrap(), data);
    }
    assert!(k.store.stale_intents(i64::MAX, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn scrub_leaves_backends_past_their_egress_limit_alone() {
    let k = cp_kit(1, &enc(false)).await;
    let plan = k.put("k", b"corrupt but out of reach", &[], true).await;
    k.flip("disk-1", &plan.backend_key, 2);
    // The backend's monthly egress limit is used up: nothing is read from it.
    let out_of_egress = IntegrityJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        10,
        u64::MAX,
        Duration::from_secs(1),
        Arc::new(|id: &str| id != "disk-1"),
    );
    out_of_egress.run_once().await.unwrap();
    assert_eq!(blob(&k, "disk-1", &plan.backend_key).await.state, BlobState::Ok);
    let p = k.store.get_job("scrub").await.unwrap().unwrap();
    assert!(p.detail.contains("egress-skipped=1"), "{}", p.detail);
    assert_eq!(p.done, 0, "no blob was checked");
    // With egress back, the next pass over the objects (after the cursor
    // wraps around) reads the same blob and finds it corrupt.
    for _ in 0..2 {
        scrubber(&k).run_once().await.unwrap();
    }
    assert_eq!(
        blob(&k, "disk-1", &plan.backend_key).await.state,
        BlobState::Quarantined
    );
}
