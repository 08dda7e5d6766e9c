//! Drain, over-replication cleanup and rebalance against a real control
//! plane, an in-memory store and local disks.

use std::sync::Arc;
use std::time::Duration;

use strata_core::config::{RebalanceConfig, RebalanceStrategy};
use strata_core::{BackendStatus, WriteCondition};
use strata_store::{BackendState, BackendStateRecord, MetaStore};

use crate::rebalance::{Plan, pack_plan, spread_plan};
use crate::testkit::{CpKit, cp_kit, enc};
use crate::{DrainJob, Job, Outcome, OverReplicationJob, RebalanceJob, ReplicationJob};

async fn set_state(store: &Arc<dyn MetaStore>, id: &str, state: BackendState) {
    let rec = BackendStateRecord {
        backend_id: id.into(),
        state,
        since_ms: 1,
        changed_by: "test".into(),
        reason: String::new(),
    };
    assert!(store.set_backend_state(&rec, &[]).await.unwrap());
}

async fn state_of(store: &Arc<dyn MetaStore>, id: &str) -> BackendState {
    (store.backend_states().await.unwrap().into_iter())
        .find(|s| s.backend_id == id)
        .map_or(BackendState::Active, |s| s.state)
}

/// Backends holding any segment of (b, key), copy by copy.
async fn holders(k: &CpKit, key: &str) -> Vec<String> {
    let rec = k.store.get_object("b", key).await.unwrap();
    crate::blobcopy::all_copies(&rec)
        .map(|c| c[0].backend_id.clone())
        .collect()
}

fn drain_job(k: &CpKit) -> DrainJob {
    DrainJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        Duration::from_secs(1),
    )
}

#[tokio::test]
async fn drain_moves_every_copy_and_marks_the_backend_drained() {
    let k = cp_kit(3, &enc(false)).await;
    for i in 0..5 {
        k.put(
            &format!("k{i}"),
            format!("payload {i}").as_bytes(),
            &["disk-1", "disk-3"],
            true,
        )
        .await;
    }
    // A sealed-free plain object with a second copy on disk-1.
    let repl = ReplicationJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        2,
        Duration::from_secs(1),
    );
    repl.run_once().await.unwrap();
    assert_eq!(holders(&k, "k0").await, ["disk-2", "disk-1"]);
    let old_key = k.store.get_object("b", "k0").await.unwrap().segments[0]
        .backend_key
        .clone();

    set_state(&k.store, "disk-2", BackendState::Draining).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the control plane's state cache
    let plan =
        k.cp.plan_write("b", "new", Some(3), &["disk-1".into(), "disk-3".into()])
            .await;
    let e = plan.unwrap_err().to_string();
    assert!(e.contains("disk-2: draining"), "{e}");

    let job = drain_job(&k);
    let mut outcome = Outcome::Busy;
    for _ in 0..5 {
        outcome = job.run_once().await.unwrap();
        if outcome == Outcome::Idle {
            break;
        }
    }
    assert_eq!(outcome, Outcome::Idle);
    assert_eq!(state_of(&k.store, "disk-2").await, BackendState::Drained);
    for i in 0..5 {
        let key = format!("k{i}");
        let h = holders(&k, &key).await;
        assert!(!h.contains(&"disk-2".to_string()), "{key}: {h:?}");
        assert_eq!(h.len(), 2, "{key}: both copies kept, on distinct backends: {h:?}");
        assert_ne!(h[0], h[1]);
        for copy in 0..2 {
            assert_eq!(k.read(&key, copy).await.unwrap(), format!("payload {i}").as_bytes());
        }
    }
    // The old blobs are queued for cleanup, not deleted under a reader.
    let queued = k.store.pending_cleanup(100).await.unwrap();
    assert!(
        queued
            .iter()
            .any(|c| c.backend_key == old_key && c.backend_id == "disk-2")
    );
    let progress = k.store.get_job("drain:disk-2").await.unwrap().unwrap();
    assert_eq!((progress.state.as_str(), progress.done, progress.total), ("done", 5, 5));
    assert!(
        progress.detail.starts_with("remaining 0 objects, 0 bytes"),
        "{}",
        progress.detail
    );
}

#[tokio::test]
async fn a_copy_spread_over_every_backend_still_drains() {
    let k = cp_kit(3, &enc(false)).await;
    // One copy of three segments, one per backend (as a multipart upload
    // whose parts landed on different backends).
    let mut segments = Vec::new();
    for (i, part) in [b"aaaa", b"bbbb", b"cccc"].iter().enumerate() {
        let (id, key) = (format!("disk-{}", i + 1), strata_core::ObjectId::random().to_string());
        let body = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(*part))]));
        let disk = k.backends.get(&id).unwrap();
        disk.put(&key, &Default::default(), body).await.unwrap();
        segments.push(strata_core::Segment {
            backend_id: id,
            backend_key: key,
            length: 4,
            ..Default::default()
        });
    }
    let plan = k.cp.plan_write("b", "m", Some(12), &[]).await.unwrap();
    let rec = strata_core::ObjectRecord {
        bucket: "b".into(),
        key: "m".into(),
        object_id: plan.object_id.clone(),
        meta: strata_core::ObjectMeta {
            size: 12,
            etag: "e".into(),
            ..Default::default()
        },
        segments,
        copies: Vec::new(),
    };
    k.store
        .commit_object(&plan.intent_id, &rec, &WriteCondition::NONE)
        .await
        .unwrap();
    set_state(&k.store, "disk-2", BackendState::Draining).await;
    let job = drain_job(&k);
    for _ in 0..3 {
        job.run_once().await.unwrap();
    }
    assert_eq!(state_of(&k.store, "disk-2").await, BackendState::Drained);
    let got = k.store.get_object("b", "m").await.unwrap();
    assert_eq!(got.segments.len(), 1, "rewritten as one blob: {:?}", got.segments);
    assert_ne!(got.segments[0].backend_id, "disk-2");
    assert_eq!(k.read("m", 0).await.unwrap(), b"aaaabbbbcccc");
}

#[tokio::test]
async fn a_last_copy_waits_for_room_and_undrain_stops_the_drain() {
    let k = cp_kit(2, &enc(false)).await;
    k.put("only", b"single copy", &["disk-2"], true).await;
    set_state(&k.store, "disk-1", BackendState::Draining).await;
    set_state(&k.store, "disk-2", BackendState::Draining).await;
    let job = drain_job(&k);
    // Nowhere to go: the last copy stays and nothing is lost.
    job.run_once().await.unwrap();
    assert_eq!(holders(&k, "only").await, ["disk-1"]);
    assert_eq!(state_of(&k.store, "disk-1").await, BackendState::Draining);
    assert_eq!(
        state_of(&k.store, "disk-2").await,
        BackendState::Drained,
        "it held nothing"
    );
    // Undrain disk-2: the copy moves there.
    set_state(&k.store, "disk-2", BackendState::Active).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        job.run_once().await.unwrap();
    }
    assert_eq!(holders(&k, "only").await, ["disk-2"]);
    assert_eq!(k.read("only", 0).await.unwrap(), b"single copy");
    assert_eq!(state_of(&k.store, "disk-1").await, BackendState::Drained);
}

#[tokio::test]
async fn overreplication_drops_surplus_copies_draining_first() {
    let k = cp_kit(3, &enc(false)).await;
    k.put("k", b"three copies", &["disk-2", "disk-3"], true).await;
    let repl = ReplicationJob::new(
        k.store.clone(),
        k.cp.clone(),
        k.backends.clone(),
        3,
        Duration::from_secs(1),
    );
    // One copy per object and cycle; the cursor passes the object once per pass.
    for _ in 0..4 {
        let _ = repl.run_once().await;
    }
    assert_eq!(holders(&k, "k").await.len(), 3);
    set_state(&k.store, "disk-2", BackendState::Draining).await;
    let job = OverReplicationJob::new(k.store.clone(), k.cp.clone(), 2, Duration::from_secs(1));
    assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
    let h = holders(&k, "k").await;
    assert_eq!(h.len(), 2);
    assert!(!h.contains(&"disk-2".to_string()), "{h:?}");
    // Down to one: never below one copy, and the bytes still read back.
    let job = OverReplicationJob::new(k.store.clone(), k.cp.clone(), 1, Duration::from_secs(1));
    job.run_once().await.unwrap();
    assert_eq!(holders(&k, "k").await.len(), 1);
    assert_eq!(k.read("k", 0).await.unwrap(), b"three copies");
    assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
}

#[tokio::test]
async fn rebalance_spread_moves_from_the_fullest_to_the_emptiest() {
    let k = cp_kit(2, &enc(false)).await;
    for i in 0..10 {
        k.put(&format!("k{i}"), &[i as u8; 100], &["disk-2"], true).await;
    }
    let config = RebalanceConfig {
        enabled: true,
        strategy: RebalanceStrategy::Spread,
        ..Default::default()
    };
    let job = RebalanceJob::new(k.store.clone(), k.cp.clone(), k.backends.clone(), config);
    for _ in 0..5 {
        if job.run_once().await.unwrap() == Outcome::Idle {
            break;
        }
    }
    let usage = k.store.backend_usage().await.unwrap();
    let used = |id: &str| usage.iter().find(|u| u.backend_id == id).map_or(0, |u| u.bytes_used);
    assert_eq!((used("disk-1"), used("disk-2")), (500, 500));
    for i in 0..10 {
        assert_eq!(k.read(&format!("k{i}"), 0).await.unwrap(), vec![i as u8; 100]);
    }
}

fn status(id: &str, used: u64, quota: Option<u64>) -> BackendStatus {
    BackendStatus {
        backend_id: id.into(),
        bytes_used: used,
        quota_bytes: quota,
        ..Default::default()
    }
}

#[test]
fn spread_and_pack_plans() {
    let (a, b, c) = (status("a", 900, None), status("b", 100, None), status("c", 500, None));
    let want = |from: &str, to: &str, budget| {
        Some(Plan {
            from: from.into(),
            to: to.into(),
            budget,
        })
    };
    assert_eq!(spread_plan(&[&a, &b, &c], 10), want("a", "b", 400));
    let (x, y) = (status("x", 1000, None), status("y", 950, None));
    assert_eq!(spread_plan(&[&x, &y], 10), None, "within 10 %");
    // With quotas, the share of the quota counts: 50 % vs 10 %.
    let (q1, q2) = (status("q1", 500, Some(1000)), status("q2", 1000, Some(10000)));
    assert_eq!(spread_plan(&[&q1, &q2], 10), want("q1", "q2", 363));
    assert_eq!(pack_plan(&[&a, &b, &c]), want("c", "a", 500));
    let full = status("f", 100, Some(100));
    assert_eq!(pack_plan(&[&full, &b]), None, "nothing before b has room");
    assert_eq!(pack_plan(&[&b]), None);
}
