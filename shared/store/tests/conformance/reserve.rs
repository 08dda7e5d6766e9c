//! Quota-checked reservations: the check and the intent are one transaction.

use std::sync::Arc;

use strata_store::MetaStore;

use crate::support::plan;

pub async fn reserve_refuses_beyond_the_quota(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    assert!(
        s.reserve_intent(&plan("a"), "b", "k", Some(60), 1, Some(100))
            .await
            .unwrap()
    );
    assert!(
        !s.reserve_intent(&plan("b"), "b", "k", Some(41), 1, Some(100))
            .await
            .unwrap()
    );
    assert!(
        s.reserve_intent(&plan("c"), "b", "k", Some(40), 1, Some(100))
            .await
            .unwrap()
    );
    // Unknown size needs one free byte; none is left.
    assert!(
        !s.reserve_intent(&plan("d"), "b", "k", None, 1, Some(100))
            .await
            .unwrap()
    );
    // No quota: always recorded.
    assert!(
        s.reserve_intent(&plan("e"), "b", "k", Some(1 << 40), 1, None)
            .await
            .unwrap()
    );
    assert_eq!(
        s.reserve_intent(&plan("f"), "missing", "k", Some(1), 1, None).await,
        Err(strata_core::CpError::NoSuchBucket)
    );
    let ids: Vec<String> = (s.stale_intents(i64::MAX, 10).await.unwrap().into_iter())
        .map(|i| i.intent_id)
        .collect();
    assert_eq!(ids, ["intent-a", "intent-c", "intent-e"]);
}

/// 40 concurrent reservations of 10 bytes against a 100-byte quota: exactly 10 win.
pub async fn concurrent_reservations_never_overshoot(s: Arc<dyn MetaStore>) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.reserve_intent(&plan(&format!("r{i}")), "b", "k", Some(10), 1, Some(100))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 10);
    let reserved: u64 = s.backend_usage().await.unwrap().iter().map(|u| u.reserved_bytes).sum();
    assert_eq!(reserved, 100);
}
