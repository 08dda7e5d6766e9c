use std::collections::BTreeMap;

use strata_core::{CpError, ObjectMeta, WriteCondition};
use strata_store::MetaStore;

use crate::support::{commit, keys_of, plan, put, record, segment};

pub async fn commit_and_get_round_trip(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let mut rec = record("b", "dir/file.txt", "t1", 10);
    rec.meta = ObjectMeta {
        size: 10,
        etag: "9e107d9d372bb6826bd81d3542a419d6".into(),
        content_type: Some("text/plain".into()),
        content_encoding: Some("gzip".into()),
        content_disposition: Some("attachment; filename=\"a.txt\"".into()),
        content_language: Some("de-CH".into()),
        cache_control: Some("max-age=60".into()),
        expires: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
        user_metadata: BTreeMap::from([
            ("color".to_string(), "blue".to_string()),
            ("note".to_string(), "ünïcödé \"quoted\"".to_string()),
        ]),
        checksums: BTreeMap::from([("CRC32C".to_string(), "yZRlqg==".to_string())]),
        parts_count: 0,
        last_modified_unix_ms: 1_234_567,
    };
    rec.segments = vec![segment("a", 4), segment("b", 6)];
    let p = plan("t1");
    s.insert_intent(&p, "b", "dir/file.txt", None, 5).await.unwrap();
    let cleanup = commit(s, &p.intent_id, &rec).await.unwrap();
    assert!(cleanup.is_empty());
    assert_eq!(s.get_object("b", "dir/file.txt").await.unwrap(), rec);
    // The intent is gone; deleting it again is harmless.
    s.delete_intent(&p.intent_id).await.unwrap();
}

pub async fn overwrite_queues_old_segments(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "v1", 5).await;
    let v2 = record("b", "k", "v2", 7);
    let p2 = plan("v2");
    s.insert_intent(&p2, "b", "k", None, 2).await.unwrap();
    let cleanup = commit(s, &p2.intent_id, &v2).await.unwrap();
    assert_eq!(keys_of(&cleanup), ["blob-v1"]);
    assert_eq!(cleanup[0].backend_id, "disk-1");
    assert_eq!(s.get_object("b", "k").await.unwrap(), v2);

    let pending = s.pending_cleanup(100).await.unwrap();
    assert_eq!(pending, cleanup);

    // Delete returns the current segments.
    let deleted = s.delete_object("b", "k").await.unwrap();
    assert_eq!(keys_of(&deleted), ["blob-v2"]);
    assert_eq!(s.get_object("b", "k").await, Err(CpError::NoSuchKey));
    assert!(s.delete_object("b", "k").await.unwrap().is_empty());
    assert_eq!(s.pending_cleanup(100).await.unwrap().len(), 2);
}

pub async fn cleanup_queue_ack_and_limit(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for i in 0..5 {
        put(s, "b", &format!("k{i}"), &format!("t{i}"), 1).await;
    }
    let mut queued = Vec::new();
    for i in 0..5 {
        queued.extend(s.delete_object("b", &format!("k{i}")).await.unwrap());
    }
    assert_eq!(queued.len(), 5);
    // Oldest first, and limited.
    assert_eq!(s.pending_cleanup(3).await.unwrap(), queued[..3]);
    assert_eq!(s.pending_cleanup(0).await.unwrap(), []);
    s.ack_cleanup(&[]).await.unwrap();
    s.ack_cleanup(&[queued[0].id, queued[2].id, 987_654]).await.unwrap();
    let rest = s.pending_cleanup(100).await.unwrap();
    assert_eq!(rest, [queued[1].clone(), queued[3].clone(), queued[4].clone()]);
    // Acknowledging twice is harmless.
    s.ack_cleanup(&[queued[0].id]).await.unwrap();
    assert_eq!(s.pending_cleanup(100).await.unwrap().len(), 3);
}

pub async fn commit_without_intent_and_missing_bucket(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    // The intent was reaped (and with it, possibly, the bytes): the commit is
    // refused so that the catalog never points at deleted bytes.
    let rec = record("b", "k", "t1", 1);
    assert!(matches!(
        s.commit_object("never-inserted", &rec, &WriteCondition::NONE).await,
        Err(CpError::Unavailable(_))
    ));
    assert_eq!(s.get_object("b", "k").await, Err(CpError::NoSuchKey));

    // The bucket vanished between the intent and the commit.
    s.create_bucket("gone", "admin", 1).await.unwrap();
    let p = plan("t2");
    s.insert_intent(&p, "gone", "k", None, 1).await.unwrap();
    s.delete_bucket("gone").await.unwrap();
    let rec = record("gone", "k", "t2", 1);
    assert_eq!(
        s.commit_object(&p.intent_id, &rec, &WriteCondition::NONE).await,
        Err(CpError::NoSuchBucket)
    );
    assert_eq!(s.get_object("gone", "k").await, Err(CpError::NoSuchBucket));
    // Recreating the bucket shows nothing was left behind.
    s.create_bucket("gone", "admin", 2).await.unwrap();
    assert_eq!(s.get_object("gone", "k").await, Err(CpError::NoSuchKey));
    s.delete_bucket("gone").await.unwrap();
}

pub async fn get_and_delete_errors(s: &dyn MetaStore) {
    assert_eq!(s.get_object("nope", "k").await, Err(CpError::NoSuchBucket));
    assert_eq!(s.delete_object("nope", "k").await, Err(CpError::NoSuchBucket));
    s.create_bucket("b", "admin", 1).await.unwrap();
    s.create_bucket("c", "admin", 1).await.unwrap();
    put(s, "b", "k", "t1", 1).await;
    assert_eq!(s.get_object("b", "K").await, Err(CpError::NoSuchKey));
    assert_eq!(s.get_object("c", "k").await, Err(CpError::NoSuchKey));
    assert!(s.delete_object("c", "k").await.unwrap().is_empty());
    assert!(s.get_object("b", "k").await.is_ok());
}

pub async fn odd_keys_round_trip(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let keys = [
        "%41",
        "a_b",
        "../x",
        " space",
        "ü",
        "日本/語",
        "a\u{10FFFF}",
        "tab\tnl\n",
        "'; DROP TABLE objects; --",
    ];
    for (i, key) in keys.iter().enumerate() {
        put(s, "b", key, &format!("t{i}"), i as u64).await;
    }
    for (i, key) in keys.iter().enumerate() {
        let got = s.get_object("b", key).await.unwrap();
        assert_eq!(got.key, *key);
        assert_eq!(got.meta.size, i as u64);
    }
    assert_eq!(s.get_object("b", "%").await, Err(CpError::NoSuchKey));
    assert_eq!(s.get_object("b", "a-b").await, Err(CpError::NoSuchKey));
}

/// A commit's condition is checked against the current object inside the
/// commit: If-None-Match `*` only creates, If-Match names the current ETag
/// (or `*`), and a missing key fails If-Match with NoSuchKey. A refused
/// commit keeps its intent (the caller aborts it) and changes nothing.
pub async fn commit_checks_its_condition(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let create_only = WriteCondition {
        if_match: None,
        if_none_match: true,
    };
    let if_match = |etag: &str| WriteCondition {
        if_match: Some(etag.to_owned()),
        if_none_match: false,
    };
    let attempt = |tag: &'static str, cond: WriteCondition| async move {
        let p = plan(tag);
        s.insert_intent(&p, "b", "k", None, 1).await.unwrap();
        let r = s.commit_object(&p.intent_id, &record("b", "k", tag, 3), &cond).await;
        if r.is_err() {
            s.delete_intent(&p.intent_id).await.unwrap();
        }
        r.map(|_| ())
    };
    assert_eq!(attempt("m0", if_match("*")).await, Err(CpError::NoSuchKey));
    assert_eq!(attempt("v1", create_only.clone()).await, Ok(()));
    let v1 = s.get_object("b", "k").await.unwrap();
    assert_eq!(attempt("v2", create_only).await, Err(CpError::PreconditionFailed));
    assert_eq!(
        attempt("v3", if_match("\"ffff\"")).await,
        Err(CpError::PreconditionFailed)
    );
    assert_eq!(
        s.get_object("b", "k").await.unwrap(),
        v1,
        "refused commits change nothing"
    );
    assert_eq!(attempt("v4", if_match(&format!("\"{}\"", v1.meta.etag))).await, Ok(()));
    assert_eq!(s.get_object("b", "k").await.unwrap().object_id, "obj-v4");
    assert_eq!(attempt("v5", if_match("*")).await, Ok(()));
    // Only the replaced objects' bytes are queued, never a refused write's.
    let queued = keys_of(&s.pending_cleanup(100).await.unwrap());
    assert_eq!(queued, ["blob-v1", "blob-v4"]);
}

/// Twenty writers commit one new key at once with If-None-Match `*`:
/// exactly one wins, the others are refused, and the winner is current.
pub async fn concurrent_create_only_commits_one(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let tags: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    for t in &tags {
        s.insert_intent(&plan(t), "b", "lock", None, 1).await.unwrap();
    }
    let create_only = WriteCondition {
        if_match: None,
        if_none_match: true,
    };
    let records: Vec<_> = tags.iter().map(|t| record("b", "lock", t, 1)).collect();
    let commits = (tags.iter().zip(&records)).map(|(t, r)| {
        let intent = plan(t).intent_id;
        let cond = &create_only;
        async move { s.commit_object(&intent, r, cond).await }
    });
    let results = futures::future::join_all(commits).await;
    let won: Vec<usize> = (results.iter().enumerate())
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    assert_eq!(won.len(), 1, "exactly one writer wins: {results:?}");
    for (i, r) in results.iter().enumerate() {
        if i != won[0] {
            assert_eq!(r, &Err(CpError::PreconditionFailed));
        }
    }
    assert_eq!(s.get_object("b", "lock").await.unwrap(), records[won[0]]);
}
