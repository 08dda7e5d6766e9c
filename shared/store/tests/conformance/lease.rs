//! The control-plane leader lease and its write fence (docs/leadership.md).

use std::time::Duration;

use strata_core::{CpError, WriteCondition};
use strata_store::prelude::*;
use strata_store::{MetaStore, WriteFence};

use crate::support::{commit, plan, put, record};

const LONG: i64 = 60_000;
const SHORT: i64 = 300;

async fn expire() {
    tokio::time::sleep(Duration::from_millis(SHORT as u64 + 200)).await;
}

pub async fn lease_acquire_renew_and_refuse(s: &dyn MetaStore) {
    assert_eq!(s.get_lease().await.unwrap(), None);
    let a = s.acquire_lease("cp-a", "http://a:9100", LONG).await.unwrap();
    assert_eq!(
        (a.holder.as_str(), a.url.as_str(), a.term),
        ("cp-a", "http://a:9100", 1)
    );
    assert!(a.remaining_ms > LONG - 5_000, "{a:?}");
    assert!(s.renew_lease("cp-a", 1, LONG).await.unwrap());
    // Acquiring again while holding keeps the term.
    assert_eq!(s.acquire_lease("cp-a", "http://a:9100", LONG).await.unwrap().term, 1);
    // A second holder is refused while the lease is valid, and learns the leader.
    let b = s.acquire_lease("cp-b", "http://b:9100", LONG).await.unwrap();
    assert_eq!(
        (b.holder.as_str(), b.url.as_str(), b.term),
        ("cp-a", "http://a:9100", 1)
    );
    assert!(!s.renew_lease("cp-b", 1, LONG).await.unwrap());
    let seen = s.get_lease().await.unwrap().unwrap();
    assert!(seen.held_by("cp-a") && !seen.held_by("cp-b"));
}

pub async fn lease_takeover_after_expiry_bumps_term(s: &dyn MetaStore) {
    assert_eq!(s.acquire_lease("cp-a", "http://a", SHORT).await.unwrap().term, 1);
    expire().await;
    // Expired: the holder cannot renew it any more.
    assert!(!s.renew_lease("cp-a", 1, LONG).await.unwrap());
    let b = s.acquire_lease("cp-b", "http://b", LONG).await.unwrap();
    assert_eq!((b.holder.as_str(), b.term), ("cp-b", 2));
    // The deposed holder can neither renew nor take it back while valid.
    assert!(!s.renew_lease("cp-a", 1, LONG).await.unwrap());
    assert_eq!(s.acquire_lease("cp-a", "http://a", LONG).await.unwrap().holder, "cp-b");
    // Releasing hands it over at once, with the next term.
    s.release_lease("cp-a", 2).await.unwrap();
    assert_eq!(s.acquire_lease("cp-a", "http://a", LONG).await.unwrap().holder, "cp-b");
    s.release_lease("cp-b", 2).await.unwrap();
    let a = s.acquire_lease("cp-a", "http://a", LONG).await.unwrap();
    assert_eq!((a.holder.as_str(), a.term), ("cp-a", 3));
    // Even an expired lease of our own is taken with a new term.
    s.release_lease("cp-a", 3).await.unwrap();
    assert_eq!(s.acquire_lease("cp-a", "http://a", LONG).await.unwrap().term, 4);
}

pub async fn lease_fence_rejects_deposed_commits(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let fence_a = WriteFence::new();
    let a = s.fenced(fence_a.clone()).expect("the store can fence");
    // Before any term is set, fenced writes fail.
    let p = plan("early");
    s.insert_intent(&p, "b", "early", None, 1).await.unwrap();
    let early = commit(a.as_ref(), &p.intent_id, &record("b", "early", "early", 1)).await;
    assert!(matches!(early, Err(CpError::Unavailable(_))), "{early:?}");

    let term = s.acquire_lease("cp-a", "http://a", SHORT).await.unwrap().term;
    fence_a.set(term);
    put(a.as_ref(), "b", "k1", "t1", 1).await;

    // cp-a stalls past its lease; cp-b takes over.
    expire().await;
    let b_term = s.acquire_lease("cp-b", "http://b", LONG).await.unwrap().term;
    assert_eq!(b_term, term + 1);
    let fence_b = WriteFence::new();
    fence_b.set(b_term);
    let b = s.fenced(fence_b).unwrap();

    // cp-a's late commit is rejected and changes nothing.
    let p = plan("late");
    s.insert_intent(&p, "b", "k2", None, 1).await.unwrap();
    let late = commit(a.as_ref(), &p.intent_id, &record("b", "k2", "late", 1)).await;
    assert!(matches!(late, Err(CpError::Unavailable(_))), "{late:?}");
    assert_eq!(s.get_object("b", "k2").await, Err(CpError::NoSuchKey));
    assert!(matches!(a.delete_object("b", "k1").await, Err(CpError::Unavailable(_))));
    assert_eq!(s.get_object("b", "k1").await.unwrap().object_id, "obj-t1");

    // The new leader commits the very same intent.
    b.commit_object(&p.intent_id, &record("b", "k2", "late", 1), &WriteCondition::NONE)
        .await
        .unwrap();
    assert_eq!(s.get_object("b", "k2").await.unwrap().object_id, "obj-late");
}

/// PostgreSQL: a takeover (which changes the UNIQUE term) waits for the
/// deposed leader's open fenced transaction, which holds the lease row FOR
/// KEY SHARE; a renewal (a non-key update) does not.
#[tokio::test]
async fn pg_takeover_waits_for_open_fenced_transactions() {
    let Some(s) = crate::postgres::pg_store().await else {
        return;
    };
    let term = s.acquire_lease("cp-a", "http://a", 2_000).await.unwrap().term;
    // What the fenced store's write transaction holds while it commits.
    let mut tx = s.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM cp_lease WHERE id = 1 AND term = $1 FOR KEY SHARE")
        .bind(term)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let renew = tokio::time::timeout(Duration::from_secs(2), s.renew_lease("cp-a", term, SHORT));
    assert!(renew.await.expect("a renewal never waits for commits").unwrap());
    expire().await;
    let takeover = {
        let s = s.clone();
        tokio::spawn(async move { s.acquire_lease("cp-b", "http://b", LONG).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !takeover.is_finished(),
        "the takeover must wait for the open fenced transaction"
    );
    tx.commit().await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(5), takeover)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((b.holder.as_str(), b.term), ("cp-b", term + 1));
}
