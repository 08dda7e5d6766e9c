//! Backend health from breaker reports, replication counted on healthy
//! backends only, and commits of several copies at once (quorum writes).

use strata_core::{BreakerState, CpError, WriteCondition};
use strata_store::MetaStore;

use crate::support::{keys_of, on, plan, put, record};

fn states(list: &[(&str, BreakerState)]) -> Vec<(String, BreakerState)> {
    list.iter().map(|(b, s)| ((*b).to_owned(), *s)).collect()
}

pub async fn backend_health_tracks_how_long_a_breaker_stays_open(s: &dyn MetaStore) {
    use BreakerState::{Closed, HalfOpen, Open};
    assert!(s.unhealthy_backends(i64::MAX, 0).await.unwrap().is_empty());
    s.record_backend_health("dp1", &states(&[("a", Open), ("b", Closed)]), 1_000)
        .await
        .unwrap();
    s.record_backend_health("dp2", &states(&[("a", Closed), ("b", Closed)]), 1_500)
        .await
        .unwrap();
    // Half-open still counts as not closed: the unhealthy-since time stays.
    s.record_backend_health("dp1", &states(&[("a", HalfOpen), ("b", Closed)]), 5_000)
        .await
        .unwrap();
    assert_eq!(s.unhealthy_backends(1_000, 0).await.unwrap(), vec!["a"]);
    assert!(
        s.unhealthy_backends(999, 0).await.unwrap().is_empty(),
        "not yet unhealthy for long enough"
    );
    assert!(
        s.unhealthy_backends(1_000, 5_001).await.unwrap().is_empty(),
        "a reporter not heard from recently does not count"
    );
    // A closed report clears it; a later open starts a new period.
    s.record_backend_health("dp1", &states(&[("a", Closed)]), 6_000)
        .await
        .unwrap();
    assert!(s.unhealthy_backends(i64::MAX, 0).await.unwrap().is_empty());
    s.record_backend_health("dp1", &states(&[("a", Open)]), 7_000)
        .await
        .unwrap();
    s.record_backend_health("dp2", &states(&[("b", Open)]), 7_500)
        .await
        .unwrap();
    assert!(s.unhealthy_backends(6_999, 0).await.unwrap().is_empty());
    assert_eq!(s.unhealthy_backends(8_000, 0).await.unwrap(), vec!["a", "b"]);
    // Rows of reporters gone for a day are pruned.
    let day = 24 * 3600 * 1000;
    s.record_backend_health("dp3", &states(&[("c", Closed)]), 7_500 + day + 1)
        .await
        .unwrap();
    assert!(s.unhealthy_backends(i64::MAX, 0).await.unwrap().is_empty());
}

pub async fn copies_on_unhealthy_backends_do_not_count(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let rec = put(s, "b", "k", "v1", 5).await; // primary on disk-1
    let p = plan("copy1");
    s.insert_intent(&p, "b", "k", Some(5), 1).await.unwrap();
    s.add_copy(&p.intent_id, "b", "k", &rec.object_id, &[on("disk-2", "c1", 5)])
        .await
        .unwrap();
    let none: [String; 0] = [];
    assert!(s.under_replicated_healthy(2, "", 10, &none).await.unwrap().is_empty());
    let sick = ["disk-2".to_owned()];
    let got = s.under_replicated_healthy(2, "", 10, &sick).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].copies,
        vec![vec![on("disk-2", "c1", 5)]],
        "the record is complete"
    );
    assert!(s.under_replicated_healthy(1, "", 10, &sick).await.unwrap().is_empty());
    let both = ["disk-1".to_owned(), "disk-2".to_owned()];
    assert_eq!(s.under_replicated_healthy(1, "", 10, &both).await.unwrap().len(), 1);
    assert!(
        s.under_replicated_healthy(2, &rec.object_id, 10, &sick)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn commit_replicated_redeems_every_intent_or_none(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "old", 3).await;
    let (p1, p2) = (plan("q1"), plan("q2"));
    s.insert_intent(&p1, "b", "k", Some(4), 1).await.unwrap();
    let mut rec = record("b", "k", "q1", 4);
    rec.copies = vec![vec![on("disk-2", "blob-q2", 4)]];
    let ids = [p1.intent_id.clone(), p2.intent_id.clone()];
    // The second copy's intent is missing: nothing is committed.
    assert!(matches!(
        s.commit_replicated(&ids, &rec, &WriteCondition::NONE).await,
        Err(CpError::Unavailable(_))
    ));
    assert_eq!(s.get_object("b", "k").await.unwrap().object_id, "obj-old");
    assert_eq!(
        s.stale_intents(i64::MAX, 10).await.unwrap().len(),
        1,
        "the first intent is kept"
    );

    s.insert_intent(&p2, "b", "k", Some(4), 1).await.unwrap();
    let obsolete = s.commit_replicated(&ids, &rec, &WriteCondition::NONE).await.unwrap();
    assert_eq!(keys_of(&obsolete), vec!["blob-old"]);
    assert_eq!(s.get_object("b", "k").await.unwrap(), rec);
    assert!(s.stale_intents(i64::MAX, 10).await.unwrap().is_empty());
    assert!(s.under_replicated(2, "", 10).await.unwrap().is_empty());
}
