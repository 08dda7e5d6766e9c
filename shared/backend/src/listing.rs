//! Listing a backend's blobs in key order, a page at a time, for the
//! reconciler. The local-disk walk lives here; the S3 one is in `s3/list.rs`.

use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

use strata_core::ObjectId;
use tokio::fs;

/// The most blobs one [`crate::Backend::list_page`] call returns (S3's own
/// page size), so a page never holds more than this many keys.
pub const LIST_PAGE_MAX: u32 = 1000;

/// One blob found on a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    pub key: String,
    /// Bytes stored (sealed or encoded form: what the backend holds).
    pub size: u64,
    /// Last modification, Unix milliseconds (0 when the backend does not say).
    pub modified_ms: i64,
}

/// Whether `key` is a blob key Strata could have written.
pub(crate) fn is_blob_key(key: &str) -> bool {
    ObjectId::parse(key).is_ok()
}

/// Sorted names of the entries of `dir` that pass `keep`; an absent
/// directory is empty.
async fn sorted_names(dir: &Path, keep: impl Fn(&str) -> bool) -> io::Result<Vec<String>> {
    let mut rd = match fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    while let Some(e) = rd.next_entry().await? {
        if let Some(name) = e.file_name().to_str().filter(|n| keep(n)) {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable();
    Ok(names)
}

fn is_shard(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Lists the blobs of a local disk laid out as `objects/ab/cd/<id>` (see
/// `LocalDisk`), keys strictly after `after`, in byte order.
///
/// The two shard levels are the key's first four characters, so walking the
/// shard directories in sorted order and sorting each leaf directory yields
/// the keys in byte order. Memory: the 256 names of one shard level and the
/// names of one leaf directory (1/65536 of the disk's blobs) at a time,
/// plus the page. Sidecars (`.meta`) and anything not named like a blob are
/// skipped; temporary files live under `tmp/`, which is not walked.
pub(crate) async fn list_local(root: &Path, after: &str, limit: u32) -> io::Result<Vec<crate::ListedBlob>> {
    let limit = limit.clamp(1, LIST_PAGE_MAX) as usize;
    let objects = root.join("objects");
    // The shards at or after `after`'s own; `after` may be any string.
    let (a1, a2) = (after.get(0..2).unwrap_or(after), after.get(0..4).unwrap_or(after));
    let mut out = Vec::new();
    for d1 in sorted_names(&objects, is_shard).await? {
        if d1.as_str() < a1 {
            continue;
        }
        for d2 in sorted_names(&objects.join(&d1), is_shard).await? {
            let prefix = format!("{d1}{d2}");
            if prefix.as_str() < a2 {
                continue;
            }
            let leaf = objects.join(&d1).join(&d2);
            let names = sorted_names(&leaf, |n| is_blob_key(n) && n.starts_with(&prefix) && n > after).await?;
            for name in names {
                let meta = match fs::metadata(leaf.join(&name)).await {
                    Ok(m) if m.is_file() => m,
                    Ok(_) => continue,
                    // Deleted since the directory was read.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let modified_ms = (meta.modified().ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                out.push(crate::ListedBlob {
                    key: name,
                    size: meta.len(),
                    modified_ms,
                });
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, BlobMeta, LocalDisk};
    use bytes::Bytes;

    #[tokio::test]
    async fn local_disk_lists_blobs_in_byte_order_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let disk = LocalDisk::open("d".into(), dir.path().to_owned()).await.unwrap();
        let meta = BlobMeta::from([("v".to_owned(), "1".to_owned())]);
        let mut keys: Vec<String> = (0..23).map(|_| ObjectId::random().to_string()).collect();
        // Two keys in one leaf directory, and one sorting first.
        keys.push(format!("{}0", &keys[0][..31]));
        keys.push("0".repeat(32));
        for k in &keys {
            let body = Box::pin(futures::stream::iter([Ok(Bytes::from_static(b"abc"))]));
            disk.put(k, &meta, body).await.unwrap();
        }
        // Not blobs: a stray file, a temp file.
        std::fs::write(dir.path().join("objects").join("zz"), b"x").unwrap();
        std::fs::write(dir.path().join("tmp").join("partial"), b"x").unwrap();
        keys.sort();
        keys.dedup();
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = disk.list_page(&after, 7).await.unwrap();
            assert!(page.len() <= 7);
            assert!(page.iter().all(|b| b.size == 3 && b.modified_ms > 0));
            seen.extend(page.iter().map(|b| b.key.clone()));
            if page.len() < 7 {
                break;
            }
            after = page.last().unwrap().key.clone();
        }
        assert_eq!(seen, keys, "every blob once, in byte order, sidecars left out");
        // Any string works as `after`.
        let from = &keys[10][..5];
        let tail: Vec<String> = (disk.list_page(from, 1000).await.unwrap().into_iter())
            .map(|b| b.key)
            .collect();
        let want: Vec<String> = keys.iter().filter(|k| k.as_str() > from).cloned().collect();
        assert_eq!(tail, want);
        assert!(disk.list_page("g", 10).await.unwrap().is_empty());
    }
}
