//! Delta compression: references, deltaspaces, decisions, the report and
//! reference liveness.

use strata_core::DeltaBucketReport;
use strata_store::{
    BlobRecord, DeltaDecisionRecord, DeltaRefRecord, MetaStore, REF_CURRENT, REF_RETIRED, ReselectPolicy, refs_bucket,
};

use crate::support::put;

fn reference(ref_id: &str, space: &str, used_ms: i64) -> DeltaRefRecord {
    DeltaRefRecord {
        ref_id: ref_id.into(),
        bucket: "b".into(),
        space: space.into(),
        ref_bucket: refs_bucket("b"),
        ref_key: format!("{space}/{ref_id}"),
        size: 1000,
        sha256: "ab".repeat(32),
        state: REF_CURRENT.into(),
        last_used_ms: used_ms,
        created_ms: used_ms,
    }
}

fn decision(tag: &str, decision: &str, logical: u64, stored: u64) -> DeltaDecisionRecord {
    DeltaDecisionRecord {
        object_id: format!("obj-{tag}"),
        bucket: "b".into(),
        decision: decision.into(),
        reason: "test".into(),
        ref_id: Some("r1".into()),
        logical_bytes: logical,
        stored_bytes: stored,
        created_ms: 1,
    }
}

/// Records blob facts saying blob-`tag` is a delta against `ref_id`.
async fn delta_blob(s: &dyn MetaStore, tag: &str, ref_id: &str, encoded: u64) {
    let row = BlobRecord {
        backend_id: "disk-1".into(),
        backend_key: format!("blob-{tag}"),
        codec: Some("delta".into()),
        encoded_len: Some(encoded),
        ref_id: Some(ref_id.into()),
        ..BlobRecord::default()
    };
    s.put_blobs(&[row], 1).await.unwrap();
}

const POLICY: ReselectPolicy = ReselectPolicy {
    window: 3,
    threshold_permille: 500,
};

pub async fn delta_refs_current_and_retired(s: &dyn MetaStore) {
    s.create_bucket("b", "o", 1).await.unwrap();
    s.create_bucket(&refs_bucket("b"), "o", 1).await.unwrap();
    let names: Vec<String> = s.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, vec!["b"], "internal buckets are hidden");
    s.get_bucket(".refs.b").await.unwrap();

    assert_eq!(s.get_deltaspace("b/x/").await.unwrap(), None);
    assert_eq!(s.set_current_ref(&reference("r1", "b/x/", 10)).await.unwrap(), None);
    let space = s.get_deltaspace("b/x/").await.unwrap().unwrap();
    assert_eq!(space.current_ref_id.as_deref(), Some("r1"));
    assert_eq!(space.bucket, "b");
    assert!(!space.want_new_ref && space.recent.is_empty());
    assert_eq!(s.get_delta_ref("r1").await.unwrap(), Some(reference("r1", "b/x/", 10)));
    assert!(
        s.set_current_ref(&reference("r1", "b/x/", 10)).await.is_err(),
        "ids are unique"
    );

    s.touch_delta_ref("r1", 50).await.unwrap();
    s.touch_delta_ref("r1", 20).await.unwrap();
    s.touch_delta_ref("absent", 20).await.unwrap();
    assert_eq!(s.get_delta_ref("r1").await.unwrap().unwrap().last_used_ms, 50);

    // Window of the last 3 ratios; the mean must exceed 500 permille once full.
    let mut wants = Vec::new();
    for (tag, stored) in [("a", 600), ("b", 900), ("c", 100)] {
        let d = decision(tag, "delta", 1000, stored);
        wants.push(s.record_delta_decision(&d, Some("b/x/"), POLICY).await.unwrap());
    }
    assert_eq!(wants, vec![false, false, true]);
    let space = s.get_deltaspace("b/x/").await.unwrap().unwrap();
    assert_eq!(space.recent, vec![600, 900, 100]);
    assert!(space.want_new_ref);
    // Other decisions leave the window alone; unknown spaces and kinds.
    let d = decision("d", "passthrough", 1000, 1000);
    assert!(s.record_delta_decision(&d, Some("b/x/"), POLICY).await.unwrap());
    assert!(!s.record_delta_decision(&d, Some("b/none/"), POLICY).await.unwrap());
    assert!(!s.record_delta_decision(&d, None, POLICY).await.unwrap());
    assert!(
        s.record_delta_decision(&decision("e", "bogus", 1, 1), None, POLICY)
            .await
            .is_err()
    );
    // The window slides: 900, 100, 50 → 350, but want_new_ref stays until a new reference.
    let d = decision("f", "delta", 1000, 50);
    assert!(s.record_delta_decision(&d, Some("b/x/"), POLICY).await.unwrap());
    assert_eq!(
        s.get_deltaspace("b/x/").await.unwrap().unwrap().recent,
        vec![900, 100, 50]
    );

    // A new reference retires the old one and resets the window.
    let mut r2 = reference("r2", "b/x/", 60);
    r2.state = REF_RETIRED.into();
    assert_eq!(s.set_current_ref(&r2).await.unwrap(), Some("r1".into()));
    let space = s.get_deltaspace("b/x/").await.unwrap().unwrap();
    assert_eq!(space.current_ref_id.as_deref(), Some("r2"));
    assert!(!space.want_new_ref && space.recent.is_empty());
    assert_eq!(s.get_delta_ref("r1").await.unwrap().unwrap().state, REF_RETIRED);
    assert_eq!(s.get_delta_ref("r2").await.unwrap().unwrap().state, REF_CURRENT);
    // Another space is independent.
    assert_eq!(s.set_current_ref(&reference("r3", "b/y/", 60)).await.unwrap(), None);
    assert_eq!(s.get_delta_ref("r2").await.unwrap().unwrap().state, REF_CURRENT);
}

pub async fn blob_codec_facts_merge(s: &dyn MetaStore) {
    delta_blob(s, "x", "r1", 77).await;
    // A later upsert without codec facts keeps them.
    let digest = BlobRecord {
        backend_id: "disk-1".into(),
        backend_key: "blob-x".into(),
        sha256: Some("cd".repeat(32)),
        ..BlobRecord::default()
    };
    s.put_blobs(&[digest], 2).await.unwrap();
    let got = s.get_blobs(&[("disk-1".into(), "blob-x".into())]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].codec.as_deref(), Some("delta"));
    assert_eq!(got[0].encoded_len, Some(77));
    assert_eq!(got[0].ref_id.as_deref(), Some("r1"));
    assert_eq!(got[0].sha256, Some("cd".repeat(32)));
}

pub async fn delta_report_and_reference_liveness(s: &dyn MetaStore) {
    s.create_bucket("b", "o", 1).await.unwrap();
    s.create_bucket("plain", "o", 1).await.unwrap();
    s.create_bucket(&refs_bucket("b"), "o", 1).await.unwrap();
    // The reference's object: 1000 logical bytes stored as 300 (zstd).
    let r1 = reference("r1", "b/x/", 10);
    put(s, &r1.ref_bucket, &r1.ref_key, "ref1", 1000).await;
    let zstd = BlobRecord {
        backend_id: "disk-1".into(),
        backend_key: "blob-ref1".into(),
        codec: Some("zstd".into()),
        encoded_len: Some(300),
        ..BlobRecord::default()
    };
    s.put_blobs(&[zstd], 1).await.unwrap();
    s.set_current_ref(&r1).await.unwrap();

    // v1 became the reference (stored as a 10-byte identity delta), v2 a
    // 50-byte delta, v3 passed through, v4 has no decision.
    for (tag, key) in [("v1", "x/1"), ("v2", "x/2"), ("v3", "x/3.gz"), ("v4", "x/4")] {
        put(s, "b", key, tag, 1000).await;
    }
    delta_blob(s, "v1", "r1", 10).await;
    delta_blob(s, "v2", "r1", 50).await;
    for d in [
        decision("v1", "reference", 1000, 10),
        decision("v2", "delta", 1000, 50),
        decision("v3", "passthrough", 1000, 1000),
        // A decision of an object that no longer exists is not counted.
        decision("gone", "delta", 1000, 1),
    ] {
        s.record_delta_decision(&d, Some("b/x/"), POLICY).await.unwrap();
    }
    put(s, "plain", "k", "p1", 5).await;
    let report = s.delta_report().await.unwrap();
    let want = DeltaBucketReport {
        bucket: "b".into(),
        logical_bytes: 4000,
        stored_bytes: 10 + 50 + 1000 + 1000 + 300,
        decisions: vec![("delta".into(), 1), ("passthrough".into(), 1), ("reference".into(), 1)],
        references: 1,
    };
    assert_eq!(report, vec![want]);

    // In use by v1 and v2: not freeable.
    assert!(s.unreferenced_refs(i64::MAX, 10).await.unwrap().is_empty());
    assert!(!s.drop_ref("r1", i64::MAX).await.unwrap());
    s.delete_object("b", "x/1").await.unwrap();
    assert!(s.unreferenced_refs(i64::MAX, 10).await.unwrap().is_empty());
    s.delete_object("b", "x/2").await.unwrap();
    // Unused now, but used recently: the grace period protects it.
    assert!(s.unreferenced_refs(10, 10).await.unwrap().is_empty());
    assert!(!s.drop_ref("r1", 10).await.unwrap());
    let free = s.unreferenced_refs(11, 10).await.unwrap();
    assert_eq!(free.iter().map(|r| r.ref_id.as_str()).collect::<Vec<_>>(), vec!["r1"]);
    assert_eq!(s.unreferenced_refs(11, 0).await.unwrap().len(), 0);
    assert!(s.drop_ref("r1", 11).await.unwrap());
    assert!(!s.drop_ref("r1", 11).await.unwrap());
    assert_eq!(s.get_delta_ref("r1").await.unwrap(), None);
    let space = s.get_deltaspace("b/x/").await.unwrap().unwrap();
    assert_eq!(space.current_ref_id, None);
    // The reference's object is the caller's to delete; until then it still counts.
    let report = s.delta_report().await.unwrap();
    assert_eq!(report[0].references, 0);
    assert_eq!(report[0].logical_bytes, 2000);
    assert_eq!(report[0].stored_bytes, 2000);
}

pub async fn refs_to_compact_and_mark(s: &dyn MetaStore) {
    let ids = |v: Vec<DeltaRefRecord>| v.into_iter().map(|r| r.ref_id).collect::<Vec<_>>();
    assert!(s.refs_to_compact(19, 10).await.unwrap().is_empty());
    // r2 created before r1; r3 (another space) last; r1 is retired by r4.
    s.set_current_ref(&reference("r2", "b/y/", 5)).await.unwrap();
    s.set_current_ref(&reference("r1", "b/x/", 10)).await.unwrap();
    s.set_current_ref(&reference("r3", "b/z/", 20)).await.unwrap();
    s.set_current_ref(&reference("r4", "b/x/", 30)).await.unwrap();
    assert_eq!(s.get_delta_ref("r1").await.unwrap().unwrap().state, REF_RETIRED);
    assert_eq!(ids(s.refs_to_compact(19, 10).await.unwrap()), ["r2", "r1", "r3", "r4"]);
    assert_eq!(ids(s.refs_to_compact(19, 2).await.unwrap()), ["r2", "r1"]);
    assert!(s.refs_to_compact(19, 0).await.unwrap().is_empty());
    // Level 0 is what every reference starts at.
    assert!(s.refs_to_compact(0, 10).await.unwrap().is_empty());

    s.mark_ref_compacted("r2", 19).await.unwrap();
    s.mark_ref_compacted("r1", 12).await.unwrap();
    s.mark_ref_compacted("absent", 19).await.unwrap();
    assert_eq!(ids(s.refs_to_compact(19, 10).await.unwrap()), ["r1", "r3", "r4"]);
    assert_eq!(ids(s.refs_to_compact(12, 10).await.unwrap()), ["r3", "r4"]);
    assert_eq!(ids(s.refs_to_compact(20, 10).await.unwrap()), ["r2", "r1", "r3", "r4"]);
    // The record itself is unchanged by marking.
    assert_eq!(s.get_delta_ref("r2").await.unwrap(), Some(reference("r2", "b/y/", 5)));
    // A dropped reference is gone from the list.
    assert!(s.drop_ref("r3", i64::MAX).await.unwrap());
    assert_eq!(ids(s.refs_to_compact(19, 10).await.unwrap()), ["r1", "r4"]);
}

pub async fn deltas_to_compact_and_mark(s: &dyn MetaStore) {
    s.create_bucket("b", "o", 1).await.unwrap();
    assert!(s.deltas_to_compact(19, 10).await.unwrap().is_empty());
    // v1 a reference, v2..v5 deltas (v3 decided first), v6 passed through;
    // v5's object is replaced, its decision left behind.
    for (tag, key) in [
        ("v1", "x/1"),
        ("v2", "x/2"),
        ("v3", "x/3"),
        ("v4", "y/4"),
        ("v5", "x/5"),
        ("v6", "x/6"),
    ] {
        put(s, "b", key, tag, 1000).await;
    }
    for (tag, kind, created) in [
        ("v1", "reference", 1),
        ("v2", "delta", 5),
        ("v3", "delta", 2),
        ("v4", "delta", 7),
        ("v5", "delta", 3),
        ("v6", "passthrough", 4),
    ] {
        let mut d = decision(tag, kind, 1000, 100);
        d.created_ms = created;
        s.record_delta_decision(&d, Some("b/x/"), POLICY).await.unwrap();
    }
    put(s, "b", "x/5", "v5b", 1000).await;
    let ids = |v: Vec<(String, String, String)>| v.into_iter().map(|(_, _, id)| id).collect::<Vec<_>>();
    let todo = s.deltas_to_compact(19, 10).await.unwrap();
    assert_eq!(todo[0], ("b".to_string(), "x/3".to_string(), "obj-v3".to_string()));
    assert_eq!(ids(todo), ["obj-v3", "obj-v2", "obj-v4"]);
    assert_eq!(ids(s.deltas_to_compact(19, 2).await.unwrap()), ["obj-v3", "obj-v2"]);
    assert!(s.deltas_to_compact(19, 0).await.unwrap().is_empty());
    assert!(s.deltas_to_compact(0, 10).await.unwrap().is_empty());

    let stored = |rep: Vec<DeltaBucketReport>| rep.into_iter().find(|r| r.bucket == "b").unwrap().stored_bytes;
    let before = stored(s.delta_report().await.unwrap());
    // v3 recompacted smaller; v2 looked at at level 12, unchanged; absent ids are no-ops.
    s.mark_delta_compacted("obj-v3", 19, Some(40)).await.unwrap();
    s.mark_delta_compacted("obj-v2", 12, None).await.unwrap();
    s.mark_delta_compacted("absent", 19, Some(1)).await.unwrap();
    assert_eq!(ids(s.deltas_to_compact(19, 10).await.unwrap()), ["obj-v2", "obj-v4"]);
    assert_eq!(ids(s.deltas_to_compact(12, 10).await.unwrap()), ["obj-v4"]);
    assert_eq!(
        ids(s.deltas_to_compact(20, 10).await.unwrap()),
        ["obj-v3", "obj-v2", "obj-v4"]
    );
    assert_eq!(stored(s.delta_report().await.unwrap()), before - 60);
    // A deleted object is gone from the list.
    s.delete_object("b", "y/4").await.unwrap();
    assert_eq!(ids(s.deltas_to_compact(19, 10).await.unwrap()), ["obj-v2"]);
}
