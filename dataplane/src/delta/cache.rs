//! The reference cache: deltaspace references, decoded, as files on local
//! disk (size-bounded, least recently used first out), with the most recently
//! used small ones also kept in memory. A miss fetches the reference blob
//! through the control plane's `locate_reference`, opens (decrypts) and
//! decompresses it while hashing, and keeps it only if its SHA-256 matches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use strata_backend::Backends;
use strata_backend::sealed::get_encoded;
use strata_core::{ControlPlane, Encoding};
use tokio::io::AsyncWriteExt;

use super::metrics;

struct Entry {
    path: PathBuf,
    size: u64,
    used: Instant,
    /// Whether `path` holds the reference now (the disk tier).
    on_disk: bool,
    /// The whole reference, when it is small enough for the memory tier;
    /// it outlives the file and rewrites it without a backend fetch.
    bytes: Option<Bytes>,
}

/// Decoded references on local disk and in memory.
pub struct RefCache {
    dir: PathBuf,
    max_bytes: u64,
    memory_max: u64,
    entries: Mutex<HashMap<String, Entry>>,
    /// One fetch per reference at a time.
    fetching: tokio::sync::Mutex<()>,
}

/// References up to this size also live in the memory tier.
const MEMORY_ENTRY_MAX: u64 = 8 << 20;

impl RefCache {
    /// Opens (and empties: entries are not trusted across restarts) `dir`.
    pub async fn open(dir: PathBuf, max_bytes: u64, memory_max: u64) -> Result<RefCache, String> {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("delta.cache_dir {}: {e}", dir.display()))?;
        Ok(RefCache {
            dir,
            max_bytes,
            memory_max,
            entries: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Where scratch files (spooled bodies, encoded output) go.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join(format!("scratch-{}", uuid::Uuid::new_v4().simple()))
    }

    fn lookup(&self, ref_id: &str) -> Option<(PathBuf, bool, Option<Bytes>)> {
        let mut entries = self.entries.lock().expect("ref cache");
        let e = entries.get_mut(ref_id)?;
        e.used = Instant::now();
        Some((e.path.clone(), e.on_disk, e.bytes.clone()))
    }

    /// The decoded reference as a local file, fetching it on a miss.
    pub async fn get(&self, ref_id: &str, cp: &dyn ControlPlane, backends: &Backends) -> std::io::Result<PathBuf> {
        if let Some((path, true, _)) = self.lookup(ref_id) {
            metrics::cache("disk");
            return Ok(path);
        }
        let _one = self.fetching.lock().await;
        match self.lookup(ref_id) {
            Some((path, true, _)) => {
                metrics::cache("disk");
                return Ok(path);
            }
            Some((path, false, Some(bytes))) => {
                tokio::fs::write(&path, &bytes).await?;
                metrics::cache("memory");
                self.insert(ref_id, path.clone(), bytes.len() as u64).await;
                return Ok(path);
            }
            _ => {}
        }
        metrics::cache("miss");
        let path = self.fetch(ref_id, cp, backends).await?;
        Ok(path)
    }

    /// Adds a reference whose decoded bytes are already in `file` (the body
    /// that just became the reference), moving the file into the cache.
    pub async fn adopt(&self, ref_id: &str, file: &Path, size: u64) -> std::io::Result<PathBuf> {
        let path = self.dir.join(format!("ref-{ref_id}"));
        tokio::fs::rename(file, &path).await?;
        self.insert(ref_id, path.clone(), size).await;
        Ok(path)
    }

    async fn fetch(&self, ref_id: &str, cp: &dyn ControlPlane, backends: &Backends) -> std::io::Result<PathBuf> {
        let rec = cp
            .locate_reference(ref_id)
            .await
            .map_err(|e| std::io::Error::other(format!("reference {ref_id}: {e}")))?;
        let copies = std::iter::once(&rec.segments).chain(rec.copies.iter());
        let mut last = std::io::Error::other(format!("reference {ref_id} has no readable copy"));
        for copy in copies {
            let [seg] = copy.as_slice() else { continue };
            let Some(backend) = backends.get(&seg.backend_id) else {
                continue;
            };
            match self.fetch_one(ref_id, &**backend, seg).await {
                Ok(p) => return Ok(p),
                Err(e) => {
                    tracing::warn!(ref_id, backend = %seg.backend_id, error = %e, "reference copy unreadable; trying the next");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn fetch_one(
        &self,
        ref_id: &str,
        backend: &dyn strata_backend::Backend,
        seg: &strata_core::Segment,
    ) -> std::io::Result<PathBuf> {
        let encoded = get_encoded(backend, seg, 0, u64::MAX)
            .await
            .map_err(std::io::Error::other)?;
        let mut plain = match seg.encoding {
            Some(Encoding::Zstd { .. }) => strata_delta::decompress_stream(encoded),
            None => encoded,
            Some(Encoding::Delta { .. }) => {
                return Err(std::io::Error::other("a reference is never a delta"));
            }
        };
        let tmp = self.scratch();
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let result = async {
            while let Some(chunk) = plain.next().await {
                let chunk = chunk?;
                hash.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.flush().await
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let got = hex::encode(hash.finalize());
        if seg.sha256.as_deref().is_some_and(|want| want != got) || size != seg.length {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("reference {ref_id} does not match its recorded SHA-256 or length"),
            ));
        }
        let path = self.dir.join(format!("ref-{ref_id}"));
        tokio::fs::rename(&tmp, &path).await?;
        self.insert(ref_id, path.clone(), size).await;
        Ok(path)
    }

    async fn insert(&self, ref_id: &str, path: PathBuf, size: u64) {
        let known = self
            .entries
            .lock()
            .expect("ref cache")
            .get(ref_id)
            .and_then(|e| e.bytes.clone());
        let bytes = match known {
            Some(b) => Some(b),
            None if size <= MEMORY_ENTRY_MAX && size <= self.memory_max => {
                tokio::fs::read(&path).await.ok().map(Bytes::from)
            }
            None => None,
        };
        let evicted = {
            let mut entries = self.entries.lock().expect("ref cache");
            entries.insert(
                ref_id.to_owned(),
                Entry {
                    path,
                    size,
                    used: Instant::now(),
                    on_disk: true,
                    bytes,
                },
            );
            evict(&mut entries, self.max_bytes, self.memory_max, ref_id)
        };
        for p in evicted {
            let _ = tokio::fs::remove_file(p).await;
        }
        let entries = self.entries.lock().expect("ref cache");
        let disk: u64 = entries.values().filter(|e| e.on_disk).map(|e| e.size).sum();
        let mem: u64 = entries
            .values()
            .filter_map(|e| e.bytes.as_ref())
            .map(|b| b.len() as u64)
            .sum();
        metrics::cache_bytes(disk, mem);
    }
}

/// Drops least recently used entries (never `keep`) until both tiers fit;
/// returns the files to delete.
fn evict(entries: &mut HashMap<String, Entry>, max_disk: u64, max_mem: u64, keep: &str) -> Vec<PathBuf> {
    let mut order: Vec<(Instant, String)> = entries.iter().map(|(k, e)| (e.used, k.clone())).collect();
    order.sort();
    let mut removed = Vec::new();
    let mut mem: u64 = entries
        .values()
        .filter_map(|e| e.bytes.as_ref())
        .map(|b| b.len() as u64)
        .sum();
    for (_, k) in &order {
        if mem <= max_mem {
            break;
        }
        if let Some(e) = entries.get_mut(k).filter(|_| k != keep)
            && let Some(b) = e.bytes.take()
        {
            mem -= b.len() as u64;
        }
    }
    let mut disk: u64 = entries.values().filter(|e| e.on_disk).map(|e| e.size).sum();
    for (_, k) in order {
        if disk <= max_disk {
            break;
        }
        let Some(e) = entries.get_mut(&k).filter(|e| e.on_disk && k != keep) else {
            continue;
        };
        disk -= e.size;
        e.on_disk = false;
        removed.push(e.path.clone());
        if e.bytes.is_none() {
            entries.remove(&k);
        }
    }
    // Entries in neither tier are forgotten.
    entries.retain(|_, e| e.on_disk || e.bytes.is_some());
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, age_ms: u64, mem: bool) -> Entry {
        Entry {
            path: PathBuf::from(format!("/x/{size}")),
            size,
            used: Instant::now() - std::time::Duration::from_millis(age_ms),
            on_disk: true,
            bytes: mem.then(|| Bytes::from(vec![0u8; size as usize])),
        }
    }

    #[test]
    fn eviction_drops_the_least_recently_used_first_and_keeps_the_new_entry() {
        let mut m = HashMap::new();
        m.insert("old".to_string(), entry(40, 300, false));
        m.insert("mid".to_string(), entry(40, 200, false));
        m.insert("new".to_string(), entry(40, 0, false));
        let removed = evict(&mut m, 80, 0, "new");
        assert_eq!(removed, vec![PathBuf::from("/x/40")]);
        assert!(m.contains_key("new") && m.contains_key("mid") && !m.contains_key("old"));
    }

    #[test]
    fn the_memory_tier_is_bounded_separately() {
        let mut m = HashMap::new();
        m.insert("a".to_string(), entry(10, 100, true));
        m.insert("b".to_string(), entry(10, 0, true));
        assert!(evict(&mut m, 1000, 10, "b").is_empty());
        assert!(m["a"].bytes.is_none() && m["b"].bytes.is_some());
    }

    #[test]
    fn a_file_evicted_from_disk_stays_in_memory_when_small() {
        let mut m = HashMap::new();
        m.insert("small".to_string(), entry(10, 100, true));
        m.insert("big".to_string(), entry(100, 0, false));
        let removed = evict(&mut m, 100, 1000, "big");
        assert_eq!(removed, vec![PathBuf::from("/x/10")]);
        assert!(
            !m["small"].on_disk && m["small"].bytes.is_some(),
            "kept in the memory tier"
        );
        assert!(m["big"].on_disk);
    }
}
