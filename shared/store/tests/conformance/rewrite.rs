//! Walking all objects, and replacing or dropping one copy of an object (for
//! scrubbing, re-encryption and repair jobs) with exact usage counters.

use strata_store::{BackendUsage, MetaStore};

use crate::support::{add_copy, keys_of, on, plan, put, segment};
use strata_store::{BlobRecord, BlobState};

async fn usage_of(s: &dyn MetaStore, backend_id: &str) -> BackendUsage {
    (s.backend_usage().await.unwrap().into_iter())
        .find(|u| u.backend_id == backend_id)
        .unwrap_or_default()
}

/// (bytes_used, orphan_bytes) of a backend.
async fn bytes(s: &dyn MetaStore, backend_id: &str) -> (u64, u64) {
    let u = usage_of(s, backend_id).await;
    (u.bytes_used, u.orphan_bytes)
}

pub async fn objects_after_pages_across_buckets(s: &dyn MetaStore) {
    for b in ["a", "b", "c"] {
        s.create_bucket(b, "admin", 1).await.unwrap();
    }
    let recs = [
        put(s, "a", "x", "ax", 1).await,
        put(s, "a", "y", "ay", 2).await,
        put(s, "b", "a", "ba", 3).await,
        put(s, "b", "z/\u{e9}", "bz", 4).await,
    ];
    let copy = [on("disk-2", "ay-copy", 2)];
    add_copy(s, &recs[1], "ay-c", &copy).await;
    let page = s.objects_after(("", ""), 3).await.unwrap();
    let mut with_copy = recs[1].clone();
    with_copy.copies = vec![copy.to_vec()];
    assert_eq!(page, vec![recs[0].clone(), with_copy, recs[2].clone()]);
    let page = s.objects_after(("b", "a"), 3).await.unwrap();
    assert_eq!(page, vec![recs[3].clone()]);
    assert!(s.objects_after(("b", "z/\u{e9}"), 3).await.unwrap().is_empty());
    let page = s.objects_after(("a", "\u{10ffff}"), 10).await.unwrap();
    assert_eq!(page.len(), 2, "the cursor crosses into the next bucket");
}

pub async fn replace_copy_moves_bytes_exactly(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let rec = put(s, "b", "k", "v1", 5).await;
    add_copy(s, &rec, "c1", &[on("disk-2", "c1", 5)]).await;
    assert_eq!((bytes(s, "disk-1").await, bytes(s, "disk-2").await), ((5, 0), (5, 0)));

    // Rewrite copy 1 onto another backend.
    let (old, new) = ([on("disk-2", "c1", 5)], [on("disk-3", "c1b", 5)]);
    let items = s
        .replace_copy("b", "k", "obj-v1", 1, &old, &new, None, 7)
        .await
        .unwrap();
    assert_eq!(keys_of(&items.unwrap()), vec!["c1"]);
    let got = s.get_object("b", "k").await.unwrap();
    assert_eq!(got.segments, rec.segments);
    assert_eq!(got.copies, vec![vec![on("disk-3", "c1b", 5)]]);
    assert_eq!(bytes(s, "disk-2").await, (0, 5), "the old copy's bytes are orphaned");
    assert_eq!(bytes(s, "disk-3").await, (5, 0));

    // Rewrite the primary as two segments.
    let new = [on("disk-1", "v1-a", 2), on("disk-1", "v1-b", 3)];
    let items = s
        .replace_copy("b", "k", "obj-v1", 0, &rec.segments, &new, None, 8)
        .await
        .unwrap();
    assert_eq!(keys_of(&items.unwrap()), vec!["blob-v1"]);
    let got = s.get_object("b", "k").await.unwrap();
    assert_eq!((got.segments.clone(), got.copies.len()), (new.to_vec(), 1));
    assert_eq!(bytes(s, "disk-1").await, (5, 5));
    let usage = usage_of(s, "disk-1").await;
    assert_eq!(usage.objects, 2);

    // A stale `old` loses: the new bytes are queued, the object is unchanged.
    let x = [on("disk-4", "x", 5)];
    assert_eq!(
        s.replace_copy("b", "k", "obj-v1", 0, &rec.segments, &x, None, 9)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_object("b", "k").await.unwrap(), got);
    assert_eq!(bytes(s, "disk-4").await, (0, 5));
    // So does a missing copy, and a copy of an overwritten object.
    let y = [on("disk-4", "y", 1)];
    assert_eq!(
        s.replace_copy("b", "k", "obj-v1", 2, &[], &y, None, 9).await.unwrap(),
        None
    );
    put(s, "b", "k", "v2", 4).await;
    let z = [on("disk-4", "z", 2)];
    assert_eq!(
        s.replace_copy("b", "k", "obj-v1", 0, &new, &z, None, 9).await.unwrap(),
        None
    );
    assert_eq!(bytes(s, "disk-4").await, (0, 8));
    assert_eq!(bytes(s, "disk-1").await, (4, 10));
    assert_eq!(bytes(s, "disk-3").await, (0, 5));
    // Never queues bytes the current object uses.
    let v2 = s.get_object("b", "k").await.unwrap();
    let lost = s.replace_copy("b", "k", "obj-v1", 0, &new, &v2.segments, None, 9).await;
    assert_eq!(lost.unwrap(), None);
    assert_eq!(bytes(s, "disk-1").await, (4, 10));
}

pub async fn drop_copy_never_removes_the_last(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let rec = put(s, "b", "k", "v1", 5).await;
    assert_eq!(s.drop_copy("b", "k", "obj-v1", 0, &rec.segments).await.unwrap(), None);
    add_copy(s, &rec, "c1", &[on("disk-2", "c1", 5)]).await;
    add_copy(s, &rec, "c2", &[on("disk-3", "c2", 5)]).await;
    // A wrong `old` or object id changes nothing.
    assert_eq!(s.drop_copy("b", "k", "obj-v1", 1, &rec.segments).await.unwrap(), None);
    assert_eq!(
        s.drop_copy("b", "k", "obj-x", 1, &[on("disk-2", "c1", 5)])
            .await
            .unwrap(),
        None
    );

    let items = s
        .drop_copy("b", "k", "obj-v1", 1, &[on("disk-2", "c1", 5)])
        .await
        .unwrap();
    assert_eq!(keys_of(&items.unwrap()), vec!["c1"]);
    let got = s.get_object("b", "k").await.unwrap();
    assert_eq!(got.copies, vec![vec![on("disk-3", "c2", 5)]]);
    assert_eq!(bytes(s, "disk-2").await, (0, 5));
    // Copies stay dense: the count and the next copy's slot follow.
    assert_eq!(s.under_replicated(3, "", 10).await.unwrap().len(), 1);
    assert!(s.under_replicated(2, "", 10).await.unwrap().is_empty());

    // Dropping the primary promotes the next copy.
    let items = s.drop_copy("b", "k", "obj-v1", 0, &rec.segments).await.unwrap();
    assert_eq!(keys_of(&items.unwrap()), vec!["blob-v1"]);
    let got = s.get_object("b", "k").await.unwrap();
    assert_eq!(
        (got.segments.clone(), got.copies.len()),
        (vec![on("disk-3", "c2", 5)], 0)
    );
    assert_eq!(s.drop_copy("b", "k", "obj-v1", 0, &got.segments).await.unwrap(), None);
    assert_eq!(bytes(s, "disk-3").await, (5, 0));
    assert_eq!(bytes(s, "disk-1").await, (0, 5));
    add_copy(s, &got, "c3", &[on("disk-2", "c3", 5)]).await;
    assert_eq!(
        s.get_object("b", "k").await.unwrap().copies,
        vec![vec![on("disk-2", "c3", 5)]]
    );
}

/// The intent of a rewrite goes with the replacement, whether it wins or loses.
pub async fn replace_copy_deletes_its_intent(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let rec = put(s, "b", "k", "v1", 5).await;
    let mut p = plan("rw1");
    p.backend_key = "v1-new".into();
    s.insert_intent(&p, "b", "k", Some(5), 1).await.unwrap();
    assert_eq!(s.stale_intents(i64::MAX, 10).await.unwrap().len(), 1);
    let new = [segment("v1-new", 5)];
    let won = s
        .replace_copy("b", "k", "obj-v1", 0, &rec.segments, &new, Some(&p.intent_id), 2)
        .await
        .unwrap();
    assert_eq!(keys_of(&won.unwrap()), vec!["blob-v1"]);
    assert!(s.stale_intents(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(usage_of(s, "disk-1").await.reserved_bytes, 0);

    // A lost race still removes the intent and queues the new bytes.
    let mut p = plan("rw2");
    p.backend_key = "lost".into();
    s.insert_intent(&p, "b", "k", Some(5), 1).await.unwrap();
    let lost = s
        .replace_copy(
            "b",
            "k",
            "obj-v1",
            0,
            &rec.segments,
            &[segment("lost", 5)],
            Some(&p.intent_id),
            3,
        )
        .await
        .unwrap();
    assert_eq!(lost, None);
    assert!(s.stale_intents(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(bytes(s, "disk-1").await, (5, 10));
}

/// Corrupt blobs, blob owners and the object count, for the scrubber and
/// rewrite jobs.
pub async fn corrupt_blobs_owners_and_counts(s: &dyn MetaStore) {
    assert_eq!(s.count_objects().await.unwrap(), 0);
    for b in ["a", "b"] {
        s.create_bucket(b, "admin", 1).await.unwrap();
    }
    let x = put(s, "a", "x", "ax", 3).await;
    put(s, "b", "y", "by", 4).await;
    add_copy(s, &x, "ax-c", &[on("disk-2", "ax-copy", 3)]).await;
    assert_eq!(s.count_objects().await.unwrap(), 2);

    let owner = |b: &str, k: &str| Some((b.to_string(), k.to_string()));
    assert_eq!(s.blob_owner("disk-1", "blob-ax").await.unwrap(), owner("a", "x"));
    assert_eq!(s.blob_owner("disk-2", "ax-copy").await.unwrap(), owner("a", "x"));
    assert_eq!(s.blob_owner("disk-1", "blob-by").await.unwrap(), owner("b", "y"));
    assert_eq!(s.blob_owner("disk-2", "blob-ax").await.unwrap(), None);
    assert_eq!(s.blob_owner("disk-1", "nothing").await.unwrap(), None);

    let rows: Vec<BlobRecord> = ["c1", "c2", "c3", "ok"]
        .iter()
        .map(|k| BlobRecord {
            backend_id: "disk-1".into(),
            backend_key: (*k).into(),
            ..BlobRecord::default()
        })
        .collect();
    s.put_blobs(&rows, 1).await.unwrap();
    assert!(s.corrupt_blobs(10).await.unwrap().is_empty());
    for k in ["c3", "c1", "c2"] {
        s.mark_blob("disk-1", k, BlobState::Corrupt, 5).await.unwrap();
    }
    s.mark_blob("disk-1", "c2", BlobState::Quarantined, 6).await.unwrap();
    let got = s.corrupt_blobs(10).await.unwrap();
    let keys: Vec<&str> = got.iter().map(|b| b.backend_key.as_str()).collect();
    assert_eq!(keys, vec!["c1", "c3"]);
    assert_eq!(got[0].state, BlobState::Corrupt);
    assert_eq!(s.corrupt_blobs(1).await.unwrap().len(), 1);

    s.delete_object("a", "x").await.unwrap();
    assert_eq!(s.count_objects().await.unwrap(), 1);
    assert_eq!(s.blob_owner("disk-2", "ax-copy").await.unwrap(), None);
}
