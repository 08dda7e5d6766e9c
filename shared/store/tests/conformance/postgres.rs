//! The conformance suite on a real PostgreSQL (see `pg_cluster`), plus the
//! concurrency cases that matter for a store with concurrent writers.

use std::sync::Arc;

use strata_core::{BackendTraffic, CpError, WriteCondition};
use strata_store::prelude::*;
use strata_store::{BackendUsage, MetaStore, PgStore};

use crate::pg_cluster;
use crate::support::{claims_are_exclusive, concurrent_commits, plan, put, record};

/// A store on a fresh database; `None` when `STRATA_SKIP_PG=1`.
pub async fn pg_store() -> Option<PgStore> {
    if pg_cluster::skipped() {
        return None;
    }
    let url = pg_cluster::fresh_database().await;
    Some(PgStore::connect(&url, 8).await.expect("open the PostgreSQL store"))
}

mod pg {
    all_cases!(super::pg_store);
}

async fn usage_of(s: &dyn MetaStore, backend_id: &str) -> BackendUsage {
    (s.backend_usage().await.unwrap().into_iter())
        .find(|u| u.backend_id == backend_id)
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_urls_are_errors() {
    assert!(matches!(
        PgStore::connect("sqlite::memory:", 1).await,
        Err(CpError::InvalidArgument(_))
    ));
    assert!(matches!(
        PgStore::connect("postgres://u@h:notaport/x", 1).await,
        Err(CpError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    if pg_cluster::skipped() {
        return;
    }
    let url = pg_cluster::fresh_database().await;
    {
        let s = PgStore::connect(&url, 2).await.unwrap();
        s.create_bucket("b", "admin", 5).await.unwrap();
        put(&s, "b", "k", "t1", 3).await;
    }
    let s = PgStore::connect(&url, 2).await.unwrap();
    assert_eq!(s.get_bucket("b").await.unwrap().created_unix_ms, 5);
    assert_eq!(s.get_object("b", "k").await.unwrap().meta.size, 3);
}

/// Races on a store with concurrent writers, each case on a fresh database.
macro_rules! races {
    ($($(#[$doc:meta])* $name:ident => $case:path),* $(,)?) => {
        $(
            $(#[$doc])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(s) = pg_store().await else { return };
                $case(Arc::new(s)).await;
            }
        )*
    };
}

races! {
    /// 64 writers, half on one hot key: exactly one current object per key and
    /// exactly the replaced versions queued.
    concurrent_writers => crate::support::concurrent_writers,
    concurrent_reservations_never_overshoot => crate::reserve::concurrent_reservations_never_overshoot,
    concurrent_cleanup_claims_are_exclusive => claims_are_exclusive,
}

/// 96 concurrent commits with reservations, 8 keys written 12 times each: the
/// usage sums are exact (and stay exact across folding the deltas).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_is_exact_under_concurrent_commits() {
    let Some(s) = pg_store().await else { return };
    let current = concurrent_commits(Arc::new(s.clone()), 96, true).await;
    let u = usage_of(&s, "disk-1").await;
    assert_eq!(
        (u.bytes_used, u.orphan_bytes, u.reserved_bytes, u.objects),
        (current, 11 * current, 0, 8)
    );
    let pending = s.pending_cleanup(1000).await.unwrap();
    assert_eq!(pending.len(), 88);
    let ids: Vec<i64> = pending.iter().map(|c| c.id).collect();
    s.ack_cleanup(&ids).await.unwrap();
    let u = usage_of(&s, "disk-1").await;
    assert_eq!((u.bytes_used, u.orphan_bytes, u.objects), (current, 0, 8));
}

/// Reports naming the same backends in different orders never deadlock, and
/// the totals are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_monthly_reports_add_up() {
    let Some(s) = pg_store().await else { return };
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut traffic: Vec<BackendTraffic> = ["a", "b", "c"]
                    .iter()
                    .map(|id| BackendTraffic {
                        backend_id: (*id).into(),
                        requests: 1,
                        egress_bytes: 10,
                        ingress_bytes: 100,
                        ..Default::default()
                    })
                    .collect();
                if i % 2 == 1 {
                    traffic.reverse();
                }
                s.add_monthly_usage("2026-11", &traffic).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let got = s.monthly_usage("2026-11").await.unwrap();
    let totals: Vec<(&str, u64, u64, u64)> = (got.iter())
        .map(|m| (m.backend_id.as_str(), m.requests, m.egress_bytes, m.ingress_bytes))
        .collect();
    assert_eq!(
        totals,
        [("a", 40, 400, 4000), ("b", 40, 400, 4000), ("c", 40, 400, 4000)]
    );
}

/// A bucket deletion racing with writes either wins (the writes fail with
/// NoSuchBucket) or loses (BucketNotEmpty); the catalog never holds an object
/// of a deleted bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_bucket_races_with_commits() {
    let Some(s) = pg_store().await else { return };
    for round in 0..10 {
        let bucket = format!("b{round}");
        s.create_bucket(&bucket, "admin", 1).await.unwrap();
        let p = plan(&format!("r{round}"));
        s.insert_intent(&p, &bucket, "k", None, 1).await.unwrap();
        let rec = record(&bucket, "k", &format!("r{round}"), 1);
        let (a, b) = (s.clone(), s.clone());
        let bucket2 = bucket.clone();
        let commit = tokio::spawn(async move { a.commit_object(&p.intent_id, &rec, &WriteCondition::NONE).await });
        let delete = tokio::spawn(async move { b.delete_bucket(&bucket2).await });
        let (commit, delete) = (commit.await.unwrap(), delete.await.unwrap());
        match (commit, delete) {
            (Ok(_), Err(CpError::BucketNotEmpty)) => {
                assert_eq!(s.get_object(&bucket, "k").await.unwrap().meta.size, 1)
            }
            (Err(CpError::NoSuchBucket), Ok(())) => {
                assert_eq!(s.get_bucket(&bucket).await, Err(CpError::NoSuchBucket))
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
}
