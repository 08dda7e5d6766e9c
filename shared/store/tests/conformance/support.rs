//! Builders shared by the conformance cases.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use strata_core::{
    CleanupItem, CpResult, ObjectMeta, ObjectRecord, PartInfo, Segment, UploadInfo, WriteCondition, WritePlan,
};
use strata_store::MetaStore;

pub const MIB: u64 = 1024 * 1024;

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

pub fn segment(backend_key: &str, length: u64) -> Segment {
    Segment {
        backend_id: "disk-1".into(),
        backend_key: backend_key.into(),
        length,
        ..Default::default()
    }
}

/// A segment of `length` bytes on `backend`.
pub fn on(backend: &str, key: &str, length: u64) -> Segment {
    Segment {
        backend_id: backend.into(),
        backend_key: key.into(),
        length,
        ..Default::default()
    }
}

/// Adds `segments` as a further copy of the object `rec`.
pub async fn add_copy(s: &dyn MetaStore, rec: &ObjectRecord, tag: &str, segments: &[Segment]) {
    let p = plan(tag);
    s.insert_intent(&p, &rec.bucket, &rec.key, None, 1).await.unwrap();
    assert!(
        s.add_copy(&p.intent_id, &rec.bucket, &rec.key, &rec.object_id, segments)
            .await
            .unwrap()
    );
}

pub fn plan(tag: &str) -> WritePlan {
    WritePlan {
        intent_id: format!("intent-{tag}"),
        object_id: format!("obj-{tag}"),
        backend_id: "disk-1".into(),
        backend_key: format!("blob-{tag}"),
        ..Default::default()
    }
}

/// A single-segment object whose ids derive from `tag`.
pub fn record(bucket: &str, key: &str, tag: &str, size: u64) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        object_id: format!("obj-{tag}"),
        meta: ObjectMeta {
            size,
            etag: md5_hex(tag.as_bytes()),
            last_modified_unix_ms: 1_700_000_000_000,
            ..ObjectMeta::default()
        },
        segments: vec![segment(&format!("blob-{tag}"), size)],
        copies: Vec::new(),
    }
}

/// Writes an object the way the control plane does: intent, then commit.
/// Commits `rec` under `intent_id` with no condition.
pub async fn commit(s: &dyn MetaStore, intent_id: &str, rec: &ObjectRecord) -> CpResult<Vec<CleanupItem>> {
    s.commit_object(intent_id, rec, &WriteCondition::NONE).await
}

pub async fn put(s: &dyn MetaStore, bucket: &str, key: &str, tag: &str, size: u64) -> ObjectRecord {
    let rec = record(bucket, key, tag, size);
    let p = plan(tag);
    s.insert_intent(&p, bucket, key, None, 1).await.unwrap();
    s.commit_object(&p.intent_id, &rec, &WriteCondition::NONE)
        .await
        .unwrap();
    rec
}

pub fn upload(bucket: &str, key: &str, upload_id: &str) -> UploadInfo {
    UploadInfo {
        upload_id: upload_id.into(),
        bucket: bucket.into(),
        key: key.into(),
        meta: ObjectMeta {
            content_type: Some("video/mp4".into()),
            cache_control: Some("no-cache".into()),
            user_metadata: BTreeMap::from([("origin".to_string(), "camera".to_string())]),
            ..ObjectMeta::default()
        },
        initiated_unix_ms: 1_700_000_000_123,
    }
}

/// A part whose ETag is the MD5 of `content`.
pub fn part(upload_id: &str, number: u32, content: &str, size: u64) -> PartInfo {
    PartInfo {
        part_number: number,
        etag: md5_hex(content.as_bytes()),
        size,
        last_modified_unix_ms: 1_700_000_000_456,
        segment: segment(&format!("{upload_id}/{number}/{content}"), size),
        checksums: BTreeMap::from([("CRC32C".to_string(), format!("crc-{content}"))]),
    }
}

pub async fn commit_part(
    s: &dyn MetaStore,
    bucket: &str,
    p: &PartInfo,
    upload_id: &str,
) -> Vec<strata_core::CleanupItem> {
    let wp = WritePlan {
        intent_id: format!("intent-{upload_id}-{}-{}", p.part_number, p.segment.backend_key),
        object_id: format!("part-{upload_id}-{}", p.part_number),
        backend_id: p.segment.backend_id.clone(),
        backend_key: p.segment.backend_key.clone(),
        ..Default::default()
    };
    s.insert_intent(&wp, bucket, "k", None, 1).await.unwrap();
    s.commit_part(&wp.intent_id, bucket, upload_id, p).await.unwrap()
}

/// The (backend_id, backend_key) pairs of cleanup items, sorted.
pub fn keys_of(items: &[strata_core::CleanupItem]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|i| i.backend_key.clone()).collect();
    v.sort();
    v
}

/// The size of key `k{key}` in [`concurrent_commits`].
pub fn size_of_key(key: u64) -> u64 {
    (key + 1) * 1000
}

/// `writers` concurrent writes (intent with a size hint, then commit) to 8
/// keys of bucket `b` (`k{i % 8}`, [`size_of_key`] bytes); with `read_usage`
/// each writer then reads the usage (PostgreSQL folds its deltas meanwhile).
/// Returns the bytes of the 8 current objects.
pub async fn concurrent_commits(s: std::sync::Arc<dyn MetaStore>, writers: u64, read_usage: bool) -> u64 {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let key = i % 8;
                let tag = format!("c{i}");
                let p = plan(&tag);
                s.insert_intent(&p, "b", &format!("k{key}"), Some(size_of_key(key)), 1)
                    .await
                    .unwrap();
                let rec = record("b", &format!("k{key}"), &tag, size_of_key(key));
                s.commit_object(&p.intent_id, &rec, &WriteCondition::NONE)
                    .await
                    .unwrap();
                if read_usage {
                    s.backend_usage().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (0..8).map(size_of_key).sum()
}

/// 50 deleted objects' rows claimed by 16 concurrent claimers of 5: every
/// row is claimed exactly once, none twice.
pub async fn claims_are_exclusive(s: std::sync::Arc<dyn MetaStore>) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for i in 0..50 {
        let key = format!("k{i}");
        put(s.as_ref(), "b", &key, &key, 1).await;
        s.delete_object("b", &key).await.unwrap();
    }
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_cleanup(1_000, 60_000, 5).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap().into_iter().map(|c| c.item.id));
    }
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((total, ids.len()), (50, 50));
}

/// 64 writers to bucket `b`, half on one hot key, each listing the bucket
/// after its write: exactly one current object per key, and every overwrite
/// of the hot key queued exactly the previous version's bytes.
pub async fn concurrent_writers(s: std::sync::Arc<dyn MetaStore>) {
    let all = strata_core::ListQuery {
        bucket: "b".into(),
        max_keys: 1000,
        ..Default::default()
    };
    s.create_bucket("b", "admin", 1).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (s, all) = (s.clone(), all.clone());
            tokio::spawn(async move {
                let key = if i % 2 == 0 { "hot".to_string() } else { format!("k{i}") };
                put(s.as_ref(), "b", &key, &format!("t{i}"), 1).await;
                s.list_objects(&all).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.list_objects(&all).await.unwrap().objects.len(), 33);
    assert_eq!(s.pending_cleanup(1000).await.unwrap().len(), 31);
}
