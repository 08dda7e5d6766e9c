//! Per-blob facts (integrity and encryption) and job progress.

use strata_store::{BlobRecord, BlobState, JobProgress, MetaStore};

use crate::support::{commit_part, part, plan, put, upload};

fn blob(backend_key: &str, key_id: Option<&str>) -> BlobRecord {
    BlobRecord {
        backend_id: "disk-1".into(),
        backend_key: backend_key.into(),
        key_id: key_id.map(Into::into),
        wrapped_dek: key_id.map(|k| format!("dek-under-{k}").into_bytes()),
        ..BlobRecord::default()
    }
}

fn id(key: &str) -> (String, String) {
    ("disk-1".into(), key.into())
}

async fn sorted_blobs(s: &dyn MetaStore, keys: &[&str]) -> Vec<BlobRecord> {
    let keys: Vec<_> = keys.iter().map(|k| id(k)).collect();
    let mut got = s.get_blobs(&keys).await.unwrap();
    got.sort_by(|a, b| a.backend_key.cmp(&b.backend_key));
    got
}

pub async fn blob_upserts_merge_and_marks_apply(s: &dyn MetaStore) {
    let mut first = blob("b1", Some("mk-1"));
    first.context = Some("obj-1".into());
    s.put_blobs(&[first.clone(), blob("b2", None)], 10).await.unwrap();
    // The commit adds the digest; absent fields and the state are kept.
    let commit = BlobRecord {
        backend_id: "disk-1".into(),
        backend_key: "b1".into(),
        sha256: Some("ab".repeat(32)),
        state: BlobState::Corrupt,
        checked_ms: 99,
        ..BlobRecord::default()
    };
    s.put_blobs(&[commit], 20).await.unwrap();
    let merged = BlobRecord {
        sha256: Some("ab".repeat(32)),
        ..first.clone()
    };
    let got = sorted_blobs(s, &["b1", "b2", "missing"]).await;
    assert_eq!(got, vec![merged.clone(), blob("b2", None)]);
    assert!(s.get_blobs(&[]).await.unwrap().is_empty());

    s.mark_blob("disk-1", "b1", BlobState::Quarantined, 1234).await.unwrap();
    s.mark_blob("disk-1", "absent", BlobState::Corrupt, 1).await.unwrap();
    let got = sorted_blobs(s, &["b1", "absent"]).await;
    let marked = BlobRecord {
        state: BlobState::Quarantined,
        checked_ms: 1234,
        ..merged
    };
    assert_eq!(got, vec![marked]);
    for st in [BlobState::Ok, BlobState::Corrupt, BlobState::Quarantined] {
        assert_eq!(BlobState::parse(st.as_str()), Some(st));
    }
    assert_eq!(BlobState::parse("nope"), None);
}

pub async fn blob_key_counts_and_blobs_not_under(s: &dyn MetaStore) {
    let rows = [
        blob("c", Some("mk-1")),
        blob("a", Some("mk-1")),
        blob("b", Some("mk-2")),
        blob("d", Some("sse-c:0123")),
        blob("e", None),
    ];
    s.put_blobs(&rows, 1).await.unwrap();
    let counts = s.blob_key_counts().await.unwrap();
    let want = [("", 1), ("mk-1", 2), ("mk-2", 1), ("sse-c:0123", 1)];
    assert_eq!(counts, want.map(|(k, n)| (k.to_string(), n)).to_vec());

    let keys = |v: Vec<BlobRecord>| v.into_iter().map(|b| b.backend_key).collect::<Vec<_>>();
    assert_eq!(keys(s.blobs_not_under("mk-2", 10).await.unwrap()), vec!["a", "c"]);
    assert_eq!(keys(s.blobs_not_under("mk-2", 1).await.unwrap()), vec!["a"]);
    assert_eq!(keys(s.blobs_not_under("mk-1", 10).await.unwrap()), vec!["b"]);
    assert_eq!(keys(s.blobs_not_under("mk-3", 10).await.unwrap()), vec!["a", "b", "c"]);
}

pub async fn rewrap_is_compare_and_set(s: &dyn MetaStore) {
    s.put_blobs(&[blob("a", Some("mk-1"))], 1).await.unwrap();
    assert!(s.rewrap_blob("disk-1", "a", "mk-1", "mk-2", b"new-dek").await.unwrap());
    assert!(!s.rewrap_blob("disk-1", "a", "mk-1", "mk-3", b"stale").await.unwrap());
    assert!(!s.rewrap_blob("disk-1", "absent", "mk-1", "mk-2", b"x").await.unwrap());
    let got = sorted_blobs(s, &["a"]).await;
    assert_eq!(got[0].key_id.as_deref(), Some("mk-2"));
    assert_eq!(got[0].wrapped_dek.as_deref(), Some(&b"new-dek"[..]));
    assert!(s.blobs_not_under("mk-2", 10).await.unwrap().is_empty());
}

pub async fn prune_keeps_referenced_blobs(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "seg", 5).await;
    s.create_upload(&upload("b", "k", "u1")).await.unwrap();
    let p1 = part("u1", 1, "p", 3);
    commit_part(s, "b", &p1, "u1").await;
    let pending = plan("pending");
    s.insert_intent(&pending, "b", "k2", None, 1).await.unwrap();

    let old = [
        blob("blob-seg", None),
        blob(&p1.segment.backend_key, None),
        blob("blob-pending", None),
        blob("gone-1", None),
        blob("gone-2", None),
    ];
    s.put_blobs(&old, 100).await.unwrap();
    s.put_blobs(&[blob("gone-recent", None)], 1000).await.unwrap();
    assert_eq!(s.prune_blobs(500, 1).await.unwrap(), 1);
    assert_eq!(s.prune_blobs(500, 10).await.unwrap(), 1);
    assert_eq!(s.prune_blobs(500, 10).await.unwrap(), 0);
    let all = [
        "blob-seg",
        &p1.segment.backend_key,
        "blob-pending",
        "gone-1",
        "gone-2",
        "gone-recent",
    ];
    let left: Vec<String> = sorted_blobs(s, &all).await.into_iter().map(|b| b.backend_key).collect();
    let mut want = vec![
        "blob-pending",
        "blob-seg",
        "gone-recent",
        p1.segment.backend_key.as_str(),
    ];
    want.sort();
    assert_eq!(left, want);

    // Once unreferenced, they go too.
    s.delete_object("b", "k").await.unwrap();
    s.abort_upload("b", "u1").await.unwrap();
    s.delete_intent(&pending.intent_id).await.unwrap();
    assert_eq!(s.prune_blobs(500, 10).await.unwrap(), 3);
    assert_eq!(s.prune_blobs(i64::MAX, 10).await.unwrap(), 1);
}

pub async fn job_progress_round_trip(s: &dyn MetaStore) {
    assert_eq!(s.get_job("scrub").await.unwrap(), None);
    assert!(s.list_jobs().await.unwrap().is_empty());
    let mut scrub = JobProgress {
        name: "scrub".into(),
        state: "running".into(),
        cursor: "b/k".into(),
        done: 10,
        total: 100,
        errors: 1,
        detail: "1 corrupt".into(),
        updated_ms: 5,
    };
    s.put_job(&scrub).await.unwrap();
    let rewrap = JobProgress {
        name: "rewrap".into(),
        state: "paused".into(),
        updated_ms: 6,
        ..JobProgress::default()
    };
    s.put_job(&rewrap).await.unwrap();
    scrub.state = "done".into();
    scrub.done = u64::from(u32::MAX) + 1;
    scrub.cursor = String::new();
    s.put_job(&scrub).await.unwrap();
    assert_eq!(s.get_job("scrub").await.unwrap(), Some(scrub.clone()));
    assert_eq!(s.list_jobs().await.unwrap(), vec![rewrap, scrub]);
}
