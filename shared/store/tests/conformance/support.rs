//! Builders shared by the conformance cases.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use strata_core::{ObjectMeta, ObjectRecord, PartInfo, Segment, UploadInfo, WriteCondition, WritePlan};
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
