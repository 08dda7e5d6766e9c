//! Per-backend usage counters: bytes used, orphaned (queued for cleanup),
//! reserved by pending intents, and blob counts.

use strata_core::WriteCondition;
use strata_store::prelude::*;
use strata_store::{BackendUsage, MetaStore, SqliteStore};

use crate::support::{MIB, commit_part, concurrent_commits, md5_hex, part, plan, put, record, upload};

/// The usage of `backend_id`, zero when the store has never seen it.
async fn usage_of(s: &dyn MetaStore, backend_id: &str) -> BackendUsage {
    s.backend_usage()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.backend_id == backend_id)
        .unwrap_or_else(|| BackendUsage {
            backend_id: backend_id.into(),
            ..BackendUsage::default()
        })
}

fn usage(used: u64, orphan: u64, reserved: u64, objects: u64) -> BackendUsage {
    BackendUsage {
        backend_id: "disk-1".into(),
        bytes_used: used,
        orphan_bytes: orphan,
        reserved_bytes: reserved,
        objects,
    }
}

pub async fn usage_overwrite_moves_bytes_to_orphan(s: &dyn MetaStore) {
    assert!(s.backend_usage().await.unwrap().is_empty());
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "v1", 5).await;
    put(s, "b", "other", "o1", 100).await;
    assert_eq!(usage_of(s, "disk-1").await, usage(105, 0, 0, 2));
    // Overwrite: the new bytes are used, the old ones wait in the cleanup queue.
    put(s, "b", "k", "v2", 7).await;
    assert_eq!(usage_of(s, "disk-1").await, usage(107, 5, 0, 2));
    // Deleting queues the object's bytes.
    s.delete_object("b", "other").await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(7, 105, 0, 1));
    // Acknowledged cleanup drops the orphan bytes, item by item.
    let pending = s.pending_cleanup(100).await.unwrap();
    assert_eq!(pending.len(), 2);
    s.ack_cleanup(&[pending[0].id]).await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(7, 100, 0, 1));
    s.ack_cleanup(&[pending[1].id]).await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(7, 0, 0, 1));
    // Deleting a missing key changes nothing.
    s.delete_object("b", "nothing").await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(7, 0, 0, 1));
}

pub async fn usage_intents_reserve_until_commit_or_abort(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let p1 = plan("r1");
    let p2 = plan("r2");
    s.insert_intent(&p1, "b", "k1", Some(1000), 1).await.unwrap();
    s.insert_intent(&p2, "b", "k2", Some(50), 1).await.unwrap();
    // An unknown size reserves nothing.
    s.insert_intent(&plan("r3"), "b", "k3", None, 1).await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(0, 0, 1050, 0));
    // Abort releases the reservation; deleting it again is harmless.
    s.delete_intent(&p1.intent_id).await.unwrap();
    s.delete_intent(&p1.intent_id).await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(0, 0, 50, 0));
    // Commit turns the reservation into the object's real size.
    s.commit_object(&p2.intent_id, &record("b", "k2", "r2", 48), &WriteCondition::NONE)
        .await
        .unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(48, 0, 0, 1));
}

pub async fn usage_follows_multipart_parts(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    s.create_upload(&upload("b", "movie", "u1")).await.unwrap();
    let p1 = part("u1", 1, "one", 5 * MIB);
    let p2 = part("u1", 2, "two", 10);
    let p3 = part("u1", 3, "three", 20);
    for p in [&p1, &p2, &p3] {
        commit_part(s, "b", p, "u1").await;
    }
    assert_eq!(usage_of(s, "disk-1").await, usage(5 * MIB + 30, 0, 0, 3));
    // Replacing part 2 orphans the old part's bytes.
    let p2b = part("u1", 2, "two-again", 11);
    commit_part(s, "b", &p2b, "u1").await;
    assert_eq!(usage_of(s, "disk-1").await, usage(5 * MIB + 31, 10, 0, 3));
    // Completing with parts 1 and 2 keeps them (as segments) and orphans part 3.
    let list = [(1, p1.etag.clone()), (2, md5_hex(b"two-again"))];
    s.complete_upload("b", "u1", &list, "obj-movie", 5, &WriteCondition::NONE)
        .await
        .unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(5 * MIB + 11, 30, 0, 2));
    // Aborting another upload orphans its parts.
    s.create_upload(&upload("b", "movie", "u2")).await.unwrap();
    commit_part(s, "b", &part("u2", 1, "x", 7), "u2").await;
    assert_eq!(usage_of(s, "disk-1").await, usage(5 * MIB + 18, 30, 0, 3));
    s.abort_upload("b", "u2").await.unwrap();
    assert_eq!(usage_of(s, "disk-1").await, usage(5 * MIB + 11, 37, 0, 2));
}

pub async fn usage_is_per_backend(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "v1", 5).await;
    let mut rec = record("b", "k2", "v2", 9);
    rec.segments[0].backend_id = "disk-2".into();
    let mut p = plan("v2");
    p.backend_id = "disk-2".into();
    s.insert_intent(&p, "b", "k2", Some(9), 1).await.unwrap();
    let all = s.backend_usage().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], usage(5, 0, 0, 1));
    assert_eq!((all[1].backend_id.as_str(), all[1].reserved_bytes), ("disk-2", 9));
    s.commit_object(&p.intent_id, &rec, &WriteCondition::NONE)
        .await
        .unwrap();
    let d2 = usage_of(s, "disk-2").await;
    assert_eq!((d2.bytes_used, d2.reserved_bytes, d2.objects), (9, 0, 1));
    assert_eq!(usage_of(s, "disk-1").await, usage(5, 0, 0, 1));
}

/// 32 concurrent commits with reservations, 8 keys written 4 times each, on a
/// file database (several connections): the sums are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_is_exact_under_concurrent_commits() {
    let dir = std::env::temp_dir().join(format!("strata-store-usage-{}", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("meta.db").display());
    let s = SqliteStore::connect(&url).await.unwrap();
    let current = concurrent_commits(std::sync::Arc::new(s.clone()), 32, false).await;
    assert_eq!(usage_of(&s, "disk-1").await, usage(current, 3 * current, 0, 8));
    // Acknowledging every cleanup item leaves only the current objects.
    let pending = s.pending_cleanup(1000).await.unwrap();
    assert_eq!(pending.len(), 24);
    let ids: Vec<i64> = pending.iter().map(|c| c.id).collect();
    s.ack_cleanup(&ids).await.unwrap();
    assert_eq!(usage_of(&s, "disk-1").await, usage(current, 0, 0, 8));
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}
