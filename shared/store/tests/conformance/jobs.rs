//! Background-job state: cleanup claims, retries with backoff, dead letters,
//! and stale intents for the reaper.

use std::collections::BTreeSet;

use strata_store::MetaStore;

use crate::support::{plan, put};

/// Queues one cleanup row per key (of `size` bytes each on `disk-1`), in order.
async fn queue(s: &dyn MetaStore, keys: &[&str], size: u64) -> Vec<i64> {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let mut ids = Vec::new();
    for k in keys {
        put(s, "b", k, k, size).await;
        let items = s.delete_object("b", k).await.unwrap();
        assert_eq!(items.len(), 1);
        ids.push(items[0].id);
    }
    ids
}

async fn orphan_bytes(s: &dyn MetaStore) -> u64 {
    s.backend_usage()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.backend_id == "disk-1")
        .map_or(0, |u| u.orphan_bytes)
}

async fn claim_ids(s: &dyn MetaStore, now: i64, lease: i64, limit: u32) -> Vec<i64> {
    s.claim_cleanup(now, lease, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.item.id)
        .collect()
}

pub async fn cleanup_claims_are_exclusive_and_expire(s: &dyn MetaStore) {
    let ids = queue(s, &["a", "b", "c"], 10).await;
    // Oldest first, limited.
    assert_eq!(claim_ids(s, 1_000, 500, 2).await, ids[..2]);
    let claims = s.claim_cleanup(1_000, 500, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].item.id, ids[2]);
    assert_eq!(claims[0].item.backend_id, "disk-1");
    assert_eq!(claims[0].item.backend_key, "blob-c");
    assert_eq!(claims[0].attempts, 0);
    // Everything is leased until 1 500.
    assert!(claim_ids(s, 1_000, 500, 10).await.is_empty());
    assert!(claim_ids(s, 1_499, 500, 10).await.is_empty());
    // A lease that ran out (the claimer crashed) frees the rows again.
    assert_eq!(claim_ids(s, 1_500, 500, 10).await, ids);
    assert_eq!(claim_ids(s, 0, 0, 0).await, Vec::<i64>::new());
    // Two concurrent claimers split the rows, never sharing one.
    let (x, y) = tokio::join!(claim_ids(s, 3_000, 500, 2), claim_ids(s, 3_000, 500, 2));
    let (x, y): (BTreeSet<i64>, BTreeSet<i64>) = (x.into_iter().collect(), y.into_iter().collect());
    assert!(x.is_disjoint(&y), "{x:?} {y:?}");
    assert_eq!(x.len() + y.len(), 3);
    // Claiming does not change the usage counters.
    assert_eq!(orphan_bytes(s).await, 30);
}

pub async fn cleanup_failures_back_off_then_dead_letter(s: &dyn MetaStore) {
    let ids = queue(s, &["a", "b"], 10).await;
    let id = ids[0];
    assert_eq!(orphan_bytes(s).await, 20);
    assert_eq!(claim_ids(s, 0, 60_000, 1).await, [id]);
    // First failure: due again after 2 s, and released from its lease.
    assert!(!s.fail_cleanup(id, "boom 1", 0, 3).await.unwrap());
    assert_eq!(claim_ids(s, 1_999, 60_000, 10).await, [ids[1]]);
    let claims = s.claim_cleanup(2_000, 60_000, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!((claims[0].item.id, claims[0].attempts), (id, 1));
    // Second failure: 4 s.
    assert!(!s.fail_cleanup(id, "boom 2", 2_000, 3).await.unwrap());
    assert!(claim_ids(s, 5_999, 60_000, 10).await.is_empty());
    let claims = s.claim_cleanup(6_000, 60_000, 10).await.unwrap();
    assert_eq!((claims[0].item.id, claims[0].attempts), (id, 2));
    assert_eq!(s.dead_letter_count().await.unwrap(), 0);
    // Third failure reaches max_attempts: dead letter.
    assert!(s.fail_cleanup(id, "boom 3", 6_000, 3).await.unwrap());
    assert_eq!(s.dead_letter_count().await.unwrap(), 1);
    let pending: Vec<i64> = s.pending_cleanup(10).await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(pending, [ids[1]]);
    assert!(claim_ids(s, i64::MAX / 2, 1, 10).await.iter().all(|i| *i != id));
    // The dead-lettered bytes are still on the backend: still orphan bytes.
    assert_eq!(orphan_bytes(s).await, 20);
    // Failing a row that is gone changes nothing.
    assert!(!s.fail_cleanup(id, "late", 7_000, 3).await.unwrap());
    assert_eq!(s.dead_letter_count().await.unwrap(), 1);
    assert_eq!(orphan_bytes(s).await, 20);
    // The backoff is capped at one hour.
    let other = ids[1];
    for n in 0..20 {
        assert!(!s.fail_cleanup(other, "slow", 0, 100).await.unwrap(), "attempt {n}");
    }
    assert!(claim_ids(s, 3_599_999, 1, 10).await.is_empty());
    assert_eq!(claim_ids(s, 3_600_000, 1, 10).await, [other]);
}

pub async fn cleanup_ack_removes_claimed_rows(s: &dyn MetaStore) {
    let ids = queue(s, &["a", "b"], 7).await;
    let claimed = claim_ids(s, 100, 1_000, 10).await;
    assert_eq!(claimed, ids);
    s.ack_cleanup(&claimed[..1]).await.unwrap();
    assert_eq!(orphan_bytes(s).await, 7);
    // After the lease only the unacknowledged row comes back.
    assert_eq!(claim_ids(s, 2_000, 1_000, 10).await, [ids[1]]);
    s.ack_cleanup(&[ids[1]]).await.unwrap();
    assert!(claim_ids(s, 10_000, 1_000, 10).await.is_empty());
    assert!(s.pending_cleanup(10).await.unwrap().is_empty());
    assert_eq!(orphan_bytes(s).await, 0);
    assert_eq!(s.dead_letter_count().await.unwrap(), 0);
}

pub async fn stale_intents_returns_only_old_ones(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for (tag, at) in [("new", 300), ("old", 100), ("mid", 200)] {
        s.insert_intent(&plan(tag), "b", tag, Some(5), at).await.unwrap();
    }
    let stale = s.stale_intents(250, 10).await.unwrap();
    let got: Vec<(&str, &str, &str, i64)> = stale
        .iter()
        .map(|i| {
            (
                i.intent_id.as_str(),
                i.backend_id.as_str(),
                i.backend_key.as_str(),
                i.created_ms,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("intent-old", "disk-1", "blob-old", 100),
            ("intent-mid", "disk-1", "blob-mid", 200)
        ]
    );
    assert_eq!(s.stale_intents(250, 1).await.unwrap().len(), 1);
    assert!(s.stale_intents(100, 10).await.unwrap().is_empty());
    // Dropped intents are no longer stale.
    s.delete_intent("intent-old").await.unwrap();
    let ids: Vec<String> = s
        .stale_intents(1_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.intent_id)
        .collect();
    assert_eq!(ids, ["intent-mid", "intent-new"]);
}
