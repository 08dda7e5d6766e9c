//! The reconciler's view of the catalog: every blob key named on a backend,
//! in byte order and paged, and orphans queued only when nothing names them.

use strata_core::{Segment, WritePlan};
use strata_store::{BlobUse, KnownBlob, MetaStore};

use crate::support::{commit_part, part, plan, put, upload};

fn known(key: &str, used_as: BlobUse) -> KnownBlob {
    KnownBlob {
        backend_key: key.into(),
        used_as,
    }
}

/// Every known blob of `backend`, read `page` keys at a time.
async fn all_known(s: &dyn MetaStore, backend: &str, page: u32) -> Vec<KnownBlob> {
    let mut out: Vec<KnownBlob> = Vec::new();
    loop {
        let after = out.last().map(|k| k.backend_key.clone()).unwrap_or_default();
        let got = s.known_blobs(backend, &after, page).await.unwrap();
        assert!(got.len() <= page as usize);
        let last = got.len() < page as usize;
        out.extend(got);
        if last {
            return out;
        }
    }
}

pub async fn known_blobs_merge_every_source_in_byte_order(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    // Segments: "blob-Zeta" sorts before "blob-alpha" in byte order (not in
    // a natural-language collation).
    put(s, "b", "k1", "alpha", 3).await;
    put(s, "b", "k2", "Zeta", 3).await;
    // A further copy on another backend is that backend's.
    let rec = put(s, "b", "k3", "m", 3).await;
    let p = plan("copy");
    s.insert_intent(&p, "b", "k3", None, 1).await.unwrap();
    let copy = Segment {
        backend_id: "disk-2".into(),
        backend_key: "blob-m-copy".into(),
        length: 3,
        ..Default::default()
    };
    assert!(
        s.add_copy(&p.intent_id, "b", "k3", &rec.object_id, &[copy])
            .await
            .unwrap()
    );
    // A part of an upload in progress.
    s.create_upload(&upload("b", "movie", "u1")).await.unwrap();
    commit_part(s, "b", &part("u1", 1, "p", 3), "u1").await;
    // A write in flight, one whose planned blob is also a segment, and a
    // deleted object's blob in the cleanup queue.
    s.insert_intent(&plan("inflight"), "b", "k4", None, 1).await.unwrap();
    let again = WritePlan {
        intent_id: "intent-again".into(),
        backend_key: "blob-alpha".into(),
        ..plan("again")
    };
    s.insert_intent(&again, "b", "k1", None, 1).await.unwrap();
    put(s, "b", "gone", "deleted", 3).await;
    assert_eq!(s.delete_object("b", "gone").await.unwrap().len(), 1);

    let want = vec![
        known("blob-Zeta", BlobUse::Segment),
        known("blob-alpha", BlobUse::Segment),
        known("blob-deleted", BlobUse::Transient),
        known("blob-inflight", BlobUse::Transient),
        known("blob-m", BlobUse::Segment),
        known("u1/1/p", BlobUse::Part),
    ];
    for page in [1, 2, 4, 1000] {
        assert_eq!(all_known(s, "disk-1", page).await, want, "pages of {page}");
    }
    assert_eq!(
        all_known(s, "disk-2", 2).await,
        vec![known("blob-m-copy", BlobUse::Segment)]
    );
    assert!(all_known(s, "disk-9", 2).await.is_empty());
    assert_eq!(
        s.known_blobs("disk-1", "blob-inflight", 2).await.unwrap(),
        want[4..].to_vec(),
        "strictly after the cursor"
    );
}

pub async fn orphans_are_queued_only_when_nothing_names_them(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    put(s, "b", "k", "live", 3).await;
    assert!(!s.enqueue_orphan("disk-1", "blob-live", 3).await.unwrap(), "a segment");
    s.insert_intent(&plan("inflight"), "b", "k2", None, 1).await.unwrap();
    assert!(
        !s.enqueue_orphan("disk-1", "blob-inflight", 3).await.unwrap(),
        "an intent"
    );

    assert!(s.enqueue_orphan("disk-1", "stray", 7).await.unwrap());
    let queued = s.pending_cleanup(10).await.unwrap();
    assert_eq!(
        queued
            .iter()
            .map(|i| (i.backend_id.as_str(), i.backend_key.as_str()))
            .collect::<Vec<_>>(),
        vec![("disk-1", "stray")]
    );
    let usage = s.backend_usage().await.unwrap();
    let orphan = usage
        .iter()
        .find(|u| u.backend_id == "disk-1")
        .map_or(0, |u| u.orphan_bytes);
    assert_eq!(orphan, 7, "queued bytes count as orphan bytes until deleted");
    assert!(!s.enqueue_orphan("disk-1", "stray", 7).await.unwrap(), "queued once");
    assert!(s.enqueue_orphan("disk-2", "stray", 7).await.unwrap(), "per backend");
    assert_eq!(
        s.known_blobs("disk-1", "", 10).await.unwrap().last(),
        Some(&known("stray", BlobUse::Transient))
    );
}
