//! Catalog facts stored with every blob on its backend, so that the catalog
//! can be rebuilt from the backends alone (see `docs/catalog-recovery.md`).
//!
//! The tags are a flat map of lower-case `[a-z0-9-]` keys to UTF-8 values;
//! backends store them as user metadata (S3) or a sidecar file (local disk).

use std::collections::BTreeMap;

use crate::ObjectMeta;

pub type Tags = BTreeMap<String, String>;

/// Version of the tag layout.
pub const VERSION: &str = "1";
/// S3 allows 2 KiB of user metadata per object; Strata's own tags stay well
/// under it and user metadata is dropped from the tags (`meta-dropped: 1`)
/// when it would not fit.
const BUDGET: usize = 1800;

/// What a blob belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobRole {
    /// The bytes of one object version (a single PUT or a copy).
    Object,
    /// One part of a multipart upload.
    Part { upload_id: String, part_number: u32 },
}

/// Everything recoverable about a blob from its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFacts {
    pub bucket: String,
    pub key: String,
    /// The catalog's object id: the version of the key this blob holds.
    pub object_id: String,
    pub role: BlobRole,
    /// Content headers and user metadata; `size` and `etag` only when they
    /// were known before the bytes were sent (0 and empty otherwise).
    pub meta: ObjectMeta,
    /// `none` today; delta and encryption codecs record themselves here.
    pub codec: String,
}

fn put_opt(t: &mut Tags, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        t.insert(k.to_owned(), v.clone());
    }
}

/// The tags for a blob. `meta.size`/`meta.etag` may be 0/empty when unknown.
pub fn encode(f: &BlobFacts) -> Tags {
    let mut t = Tags::new();
    t.insert("v".into(), VERSION.into());
    t.insert("bucket".into(), f.bucket.clone());
    t.insert("key".into(), f.key.clone());
    t.insert("object-id".into(), f.object_id.clone());
    t.insert("codec".into(), f.codec.clone());
    if let BlobRole::Part { upload_id, part_number } = &f.role {
        t.insert("upload-id".into(), upload_id.clone());
        t.insert("part-number".into(), part_number.to_string());
    }
    if f.meta.size > 0 {
        t.insert("size".into(), f.meta.size.to_string());
    }
    if !f.meta.etag.is_empty() {
        t.insert("etag".into(), f.meta.etag.clone());
    }
    put_opt(&mut t, "content-type", &f.meta.content_type);
    put_opt(&mut t, "content-encoding", &f.meta.content_encoding);
    put_opt(&mut t, "content-disposition", &f.meta.content_disposition);
    put_opt(&mut t, "content-language", &f.meta.content_language);
    put_opt(&mut t, "cache-control", &f.meta.cache_control);
    put_opt(&mut t, "expires", &f.meta.expires);
    let own: usize = t.iter().map(|(k, v)| k.len() + v.len()).sum();
    let user: usize = f.meta.user_metadata.iter().map(|(k, v)| k.len() + 2 + v.len()).sum();
    if own + user <= BUDGET {
        for (k, v) in &f.meta.user_metadata {
            t.insert(format!("m-{}", k.to_ascii_lowercase()), v.clone());
        }
    } else {
        t.insert("meta-dropped".into(), "1".into());
    }
    t
}

/// Reads tags written by [`encode`]; `None` for blobs without Strata tags.
pub fn decode(t: &Tags) -> Option<BlobFacts> {
    if t.get("v")? != VERSION {
        return None;
    }
    let get = |k: &str| t.get(k).cloned();
    let role = match (t.get("upload-id"), t.get("part-number")) {
        (Some(u), Some(n)) => BlobRole::Part {
            upload_id: u.clone(),
            part_number: n.parse().ok()?,
        },
        _ => BlobRole::Object,
    };
    let meta = ObjectMeta {
        size: t.get("size").and_then(|s| s.parse().ok()).unwrap_or(0),
        etag: get("etag").unwrap_or_default(),
        content_type: get("content-type"),
        content_encoding: get("content-encoding"),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
        user_metadata: (t.iter())
            .filter_map(|(k, v)| k.strip_prefix("m-").map(|k| (k.to_owned(), v.clone())))
            .collect(),
        ..ObjectMeta::default()
    };
    Some(BlobFacts {
        bucket: get("bucket")?,
        key: get("key")?,
        object_id: get("object-id")?,
        role,
        meta,
        codec: get("codec").unwrap_or_else(|| "none".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(role: BlobRole) -> BlobFacts {
        BlobFacts {
            bucket: "b".into(),
            key: "dir/ключ".into(),
            object_id: "0123".into(),
            role,
            meta: ObjectMeta {
                size: 42,
                etag: "abc".into(),
                content_type: Some("text/plain".into()),
                user_metadata: [("owner".to_owned(), "me".to_owned())].into(),
                ..ObjectMeta::default()
            },
            codec: "none".into(),
        }
    }

    #[test]
    fn round_trips() {
        for role in [
            BlobRole::Object,
            BlobRole::Part {
                upload_id: "u".into(),
                part_number: 7,
            },
        ] {
            let f = facts(role);
            assert_eq!(decode(&encode(&f)), Some(f));
        }
        assert_eq!(decode(&Tags::new()), None);
    }

    #[test]
    fn oversized_user_metadata_is_dropped_not_sent() {
        let mut f = facts(BlobRole::Object);
        f.meta.user_metadata.insert("big".into(), "x".repeat(4000));
        let t = encode(&f);
        assert_eq!(t.get("meta-dropped").map(String::as_str), Some("1"));
        assert!(!t.contains_key("m-big"));
        assert_eq!(decode(&t).unwrap().key, f.key);
    }
}
