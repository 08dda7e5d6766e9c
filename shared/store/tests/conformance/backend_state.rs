//! Backend lifecycle (drain, removal) and what the catalog holds on a backend.

use strata_core::{CpError, ObjectRecord};
use strata_store::{BackendState, BackendStateRecord, MetaStore};

use crate::support::{add_copy, keys_of, on, put};

fn state(id: &str, state: BackendState, since_ms: i64) -> BackendStateRecord {
    BackendStateRecord {
        backend_id: id.into(),
        state,
        since_ms,
        changed_by: "cli:test".into(),
        reason: "disk swap".into(),
    }
}

pub async fn backend_state_is_compare_and_set(s: &dyn MetaStore) {
    use BackendState::*;
    // Whether the compare-and-set took.
    let set = |to: BackendStateRecord, from: &'static [BackendState]| async move {
        s.set_backend_state(&to, from).await.unwrap()
    };
    assert!(
        s.backend_states().await.unwrap().is_empty(),
        "no row: every backend is active"
    );
    // Draining is allowed only from active (a missing row counts as active).
    assert!(set(state("disk-2", Draining, 10), &[Active]).await);
    assert!(!set(state("disk-2", Draining, 11), &[Active]).await);
    assert!(set(state("disk-1", Removed, 12), &[]).await);
    let got = s.backend_states().await.unwrap();
    assert_eq!(got, vec![state("disk-1", Removed, 12), state("disk-2", Draining, 10)]);
    // Drained only while still draining: an undrain in between wins.
    assert!(set(state("disk-2", Active, 13), &[Draining, Drained]).await);
    assert!(!set(state("disk-2", Drained, 14), &[Draining]).await);
    let got = s.backend_states().await.unwrap();
    assert_eq!((got[1].state, got[1].since_ms), (Active, 13));
    assert!(!Draining.takes_writes() && Active.takes_writes());
}

pub async fn objects_on_a_backend_and_holdings(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    // a: only on disk-1; b: disk-1 + a copy on disk-2; c: only on disk-2.
    let a = put(s, "b", "a", "a", 5).await;
    let b = put(s, "b", "b", "b", 7).await;
    add_copy(s, &b, "b2", &[on("disk-2", "b2", 7)]).await;
    let c = put(s, "b", "c", "c", 3).await;
    add_copy(s, &c, "c2", &[on("disk-2", "c2", 3)]).await;
    s.drop_copy("b", "c", &c.object_id, 0, &c.segments)
        .await
        .unwrap()
        .unwrap();

    let ids = |v: Vec<ObjectRecord>| v.into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(ids(s.objects_on_backend("disk-1", "", 10).await.unwrap()), ["a", "b"]);
    assert_eq!(ids(s.objects_on_backend("disk-2", "", 10).await.unwrap()), ["b", "c"]);
    assert_eq!(ids(s.objects_on_backend("disk-2", "", 1).await.unwrap()), ["b"]);
    assert_eq!(
        ids(s.objects_on_backend("disk-2", &b.object_id, 10).await.unwrap()),
        ["c"]
    );
    assert!(s.objects_on_backend("disk-9", "", 10).await.unwrap().is_empty());
    let full = &s.objects_on_backend("disk-2", "", 1).await.unwrap()[0];
    assert_eq!(
        full.copies,
        vec![vec![on("disk-2", "b2", 7)]],
        "full records, copies included"
    );

    let h = s.backend_holdings("disk-1").await.unwrap();
    assert_eq!(
        (h.objects, h.segments, h.segment_bytes, h.sole_copy_objects),
        (2, 2, 12, 1)
    );
    let h = s.backend_holdings("disk-2").await.unwrap();
    assert_eq!(
        (h.objects, h.segments, h.segment_bytes, h.sole_copy_objects),
        (2, 2, 10, 1)
    );
    // c's dropped primary sits in the cleanup queue.
    let h = s.backend_holdings("disk-1").await.unwrap();
    assert_eq!((h.queued, h.queued_bytes), (1, 3));
    assert_eq!(a.segments[0].backend_id, "disk-1");
}

pub async fn over_replicated_lists_objects_above_the_factor(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let one = put(s, "b", "one", "one", 1).await;
    let three = put(s, "b", "three", "three", 2).await;
    add_copy(s, &three, "t2", &[on("disk-2", "t2", 2)]).await;
    add_copy(s, &three, "t3", &[on("disk-3", "t3", 2)]).await;
    let two = put(s, "b", "two", "two", 3).await;
    add_copy(s, &two, "w2", &[on("disk-2", "w2", 3)]).await;
    let keys = |v: Vec<ObjectRecord>| v.into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(keys(s.over_replicated(2, "", 10).await.unwrap()), ["three"]);
    let mut by_id = keys(s.over_replicated(1, "", 10).await.unwrap());
    by_id.sort();
    assert_eq!(by_id, ["three", "two"]);
    assert!(s.over_replicated(3, "", 10).await.unwrap().is_empty());
    assert!(s.over_replicated(2, &three.object_id, 10).await.unwrap().is_empty());
    assert_eq!(one.copies.len(), 0);
}

pub async fn forget_backend_refuses_referenced_then_drops_rows(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let rec = put(s, "b", "k", "v1", 5).await;
    add_copy(s, &rec, "c1", &[on("disk-2", "c1", 5)]).await;
    let e = s.forget_backend("disk-1", 10).await.unwrap_err();
    assert!(
        matches!(&e, CpError::InvalidArgument(m) if m.contains("1 segments")),
        "{e:?}"
    );
    // Moving the primary away leaves its blob queued on disk-1.
    s.drop_copy("b", "k", &rec.object_id, 0, &rec.segments)
        .await
        .unwrap()
        .unwrap();
    put(s, "b", "other", "o1", 4).await;
    s.delete_object("b", "other").await.unwrap();
    let first = s.forget_backend("disk-1", 1).await.unwrap();
    let second = s.forget_backend("disk-1", 10).await.unwrap();
    let mut all = keys_of(&first);
    all.extend(keys_of(&second));
    all.sort();
    assert_eq!(all, ["blob-o1", "blob-v1"]);
    assert!(s.forget_backend("disk-1", 10).await.unwrap().is_empty());
    let h = s.backend_holdings("disk-1").await.unwrap();
    assert_eq!((h.segments, h.queued), (0, 0));
    // Other backends' queued rows stay.
    assert_eq!(
        s.get_object("b", "k").await.unwrap().segments,
        vec![on("disk-2", "c1", 5)]
    );
}
