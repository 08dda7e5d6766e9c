//! Further copies of an object (replication) and promotion of stale intents.

use strata_core::CpError;
use strata_store::MetaStore;

use crate::support::{keys_of, on, plan, put, record};

async fn used(s: &dyn MetaStore, backend: &str) -> u64 {
    (s.backend_usage().await.unwrap().into_iter())
        .find(|u| u.backend_id == backend)
        .map_or(0, |u| u.bytes_used)
}

pub async fn copies_are_added_listed_and_removed_with_the_object(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let rec = put(s, "b", "k", "v1", 5).await;
    assert_eq!(s.under_replicated(2, "", 10).await.unwrap(), vec![rec.clone()]);
    assert!(s.under_replicated(1, "", 10).await.unwrap().is_empty());

    let p = plan("copy1");
    s.insert_intent(&p, "b", "k", Some(5), 1).await.unwrap();
    let copy = vec![on("disk-2", "c1", 5)];
    assert!(s.add_copy(&p.intent_id, "b", "k", &rec.object_id, &copy).await.unwrap());
    let got = s.get_object("b", "k").await.unwrap();
    assert_eq!(
        (got.segments.clone(), got.copies.clone()),
        (rec.segments.clone(), vec![copy])
    );
    assert_eq!(used(s, "disk-2").await, 5, "a copy occupies its backend");
    assert!(s.under_replicated(2, "", 10).await.unwrap().is_empty());
    assert_eq!(s.under_replicated(3, "", 10).await.unwrap().len(), 1);
    assert!(
        s.under_replicated(3, &rec.object_id, 10).await.unwrap().is_empty(),
        "the cursor skips ids up to `after`"
    );
    // The intent was redeemed: a second use is refused.
    assert!(matches!(
        s.add_copy(&p.intent_id, "b", "k", &rec.object_id, &[]).await,
        Err(CpError::Unavailable(_))
    ));

    // Overwriting queues every copy's bytes.
    put(s, "b", "k", "v2", 7).await;
    let pending = s.pending_cleanup(10).await.unwrap();
    assert_eq!(keys_of(&pending), vec!["blob-v1", "c1"]);
    assert_eq!(used(s, "disk-2").await, 0);
}

pub async fn a_copy_of_a_replaced_object_is_queued_not_attached(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let old = put(s, "b", "k", "v1", 5).await;
    let p = plan("late");
    s.insert_intent(&p, "b", "k", Some(5), 1).await.unwrap();
    put(s, "b", "k", "v2", 5).await;
    let copy = [on("disk-2", "late-copy", 5)];
    assert!(!s.add_copy(&p.intent_id, "b", "k", &old.object_id, &copy).await.unwrap());
    assert!(s.get_object("b", "k").await.unwrap().copies.is_empty());
    let pending = s.pending_cleanup(10).await.unwrap();
    assert!(keys_of(&pending).contains(&"late-copy".to_string()));
}

pub async fn promotion_respects_newer_writes(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    // No current object: the stale intent's bytes become the object.
    let p = plan("crashed");
    s.insert_intent(&p, "b", "k", None, 1000).await.unwrap();
    let mut rec = record("b", "k", "crashed", 9);
    rec.meta.last_modified_unix_ms = 1000;
    assert!(s.promote_intent(&p.intent_id, &rec, 1000).await.unwrap());
    assert_eq!(s.get_object("b", "k").await.unwrap(), rec);
    assert!(s.stale_intents(i64::MAX, 10).await.unwrap().is_empty());

    // A newer object wins over an older stale intent; the intent stays for the reaper to drop.
    let p2 = plan("older");
    s.insert_intent(&p2, "b", "k", None, 500).await.unwrap();
    let rec2 = record("b", "k", "older", 3);
    assert!(!s.promote_intent(&p2.intent_id, &rec2, 500).await.unwrap());
    assert_eq!(s.get_object("b", "k").await.unwrap(), rec);
    let stale = s.stale_intents(i64::MAX, 10).await.unwrap();
    assert_eq!(
        (
            stale[0].object_id.as_str(),
            stale[0].bucket.as_str(),
            stale[0].key.as_str()
        ),
        ("obj-older", "b", "k")
    );
}
