//! Resolves write intents that were never committed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use md5::{Digest, Md5};
use strata_backend::{BackendError, Backends, BlobHead};
use strata_core::blobtags::{self, BlobRole};
use strata_core::{ObjectRecord, Segment};
use strata_store::{MetaStore, StaleIntent};

use crate::{Clock, Job, Outcome, system_clock};

/// Resolves pending write intents older than `min_age`: the writes of a data
/// plane that crashed, lost its control plane, or failed to clean up after a
/// failed write (see `abort()` in the data plane's writer).
///
/// Each intent is resolved by a HEAD of its bytes:
/// - **promoted** when the bytes are there with their catalog tags (see
///   `strata_core::blobtags`): a whole object becomes the key's current
///   object unless a newer write to that key exists; a replication copy is
///   attached to its object if that is still current. Backends only make
///   complete, verified bodies visible, so present bytes are whole.
/// - **dropped** otherwise (no bytes, no tags, a multipart part, or a newer
///   write won): the bytes are deleted if present, then the intent row goes.
///
/// Either is correct: committing a write removes its intent in the same
/// transaction that makes the object visible, and a client got its 200 only
/// after that commit, so a surviving intent belongs to a write nobody was told
/// succeeded; S3 allows such a write to take effect or not.
///
/// A write still in flight when its intent is reaped loses its bytes, but it
/// cannot commit: the store refuses a commit whose intent is gone, so the
/// client gets a retryable 503 instead of an object whose bytes are missing.
/// `min_age` only decides how long a slow write may take before that happens.
///
/// An intent whose backend is not configured is left alone (with a warning):
/// its bytes cannot be checked, and dropping the intent would forget them.
pub struct ReaperJob {
    pub store: Arc<dyn MetaStore>,
    pub backends: Backends,
    /// Intents younger than this are writes that may still be in flight.
    pub min_age: Duration,
    /// Intents looked at per cycle.
    pub batch: u32,
    /// Pause between cycles when no stale intent is left.
    pub period: Duration,
    pub clock: Clock,
}

impl ReaperJob {
    /// A job with the defaults: intents older than 1 hour, 100 per cycle,
    /// every 60 s, on the system clock. The hour leaves room for a 5 GiB
    /// single PUT from a slow client.
    pub fn new(store: Arc<dyn MetaStore>, backends: Backends) -> ReaperJob {
        ReaperJob {
            store,
            backends,
            min_age: Duration::from_secs(3600),
            batch: 100,
            period: Duration::from_secs(60),
            clock: system_clock(),
        }
    }

    /// Deletes the intent's bytes and drops it; `Err` leaves it for a later cycle.
    async fn reap(&self, intent: &StaleIntent) -> Result<Resolution, String> {
        let Some(backend) = self.backends.get(&intent.backend_id) else {
            return Err(format!(
                "unknown backend id `{}`: it is not in the configuration",
                intent.backend_id
            ));
        };
        let head = match backend.head(&intent.backend_key).await {
            Ok(h) => Some(h),
            Err(BackendError::NotFound) => None,
            Err(e) => return Err(format!("backend `{}`: head: {e}", intent.backend_id)),
        };
        if let Some(h) = &head
            && self.promote(intent, h).await?
        {
            return Ok(Resolution::Promoted);
        }
        let present = head.is_some();
        if present {
            match backend.delete(&intent.backend_key).await {
                Ok(()) | Err(BackendError::NotFound) => {}
                Err(e) => return Err(format!("backend `{}`: delete: {e}", intent.backend_id)),
            }
        }
        self.store
            .delete_intent(&intent.intent_id)
            .await
            .map_err(|e| format!("drop the intent: {e}"))?;
        Ok(if present {
            Resolution::DroppedBytes
        } else {
            Resolution::Dropped
        })
    }

    /// Promotes the intent's bytes if their tags allow; `Ok(false)` to drop.
    async fn promote(&self, intent: &StaleIntent, head: &BlobHead) -> Result<bool, String> {
        let Some(facts) = blobtags::decode(&head.meta) else {
            return Ok(false);
        };
        if facts.role != BlobRole::Object || facts.bucket != intent.bucket || facts.key != intent.key {
            return Ok(false);
        }
        // Sealed, compressed and delta blobs, and references, are not an
        // object's plain bytes: they are dropped, never promoted.
        if facts.codec != "none" {
            return Ok(false);
        }
        if facts.meta.size > 0 && facts.meta.size != head.size {
            return Ok(false);
        }
        let segment = Segment {
            backend_id: intent.backend_id.clone(),
            backend_key: intent.backend_key.clone(),
            length: head.size,
            ..Default::default()
        };
        if facts.object_id != intent.object_id {
            // A replication copy of object `facts.object_id`.
            return (self.store)
                .add_copy(
                    &intent.intent_id,
                    &facts.bucket,
                    &facts.key,
                    &facts.object_id,
                    &[segment],
                )
                .await
                .map_err(|e| format!("attach a copy: {e}"));
        }
        let mut meta = facts.meta;
        meta.size = head.size;
        if meta.etag.is_empty() {
            meta.etag = self.md5_of(intent, head.size).await?;
        }
        meta.last_modified_unix_ms = (self.clock)();
        let record = ObjectRecord {
            bucket: facts.bucket,
            key: facts.key,
            object_id: intent.object_id.clone(),
            meta,
            segments: vec![segment],
            copies: Vec::new(),
        };
        (self.store)
            .promote_intent(&intent.intent_id, &record, intent.created_ms)
            .await
            .map_err(|e| format!("promote: {e}"))
    }

    /// The hex MD5 of the intent's bytes (the ETag of a single PUT), streamed.
    async fn md5_of(&self, intent: &StaleIntent, size: u64) -> Result<String, String> {
        let backend = self.backends.get(&intent.backend_id).ok_or("backend vanished")?;
        let mut body = (backend.get(&intent.backend_key, 0, size).await).map_err(|e| format!("read back: {e}"))?;
        let mut md5 = Md5::new();
        while let Some(chunk) = body.next().await {
            md5.update(&chunk.map_err(|e| format!("read back: {e}"))?);
        }
        Ok(hex::encode(md5.finalize()))
    }
}

/// What happened to one stale intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Promoted,
    /// Dropped, and its bytes were deleted.
    DroppedBytes,
    /// Dropped; there were no bytes.
    Dropped,
}

#[async_trait]
impl Job for ReaperJob {
    fn name(&self) -> &'static str {
        "reaper"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let now = (self.clock)();
        let min_age = i64::try_from(self.min_age.as_millis()).unwrap_or(i64::MAX);
        let stale = self
            .store
            .stale_intents(now.saturating_sub(min_age), self.batch)
            .await
            .map_err(|e| format!("list stale intents: {e}"))?;
        if stale.is_empty() {
            return Ok(Outcome::Idle);
        }
        let (mut dropped, mut deleted, mut promoted, mut failed) = (0usize, 0usize, 0usize, 0usize);
        for intent in &stale {
            match self.reap(intent).await {
                Ok(Resolution::Promoted) => {
                    promoted += 1;
                    tracing::info!(
                        job = "reaper", intent = %intent.intent_id, backend = %intent.backend_id,
                        bucket = %intent.bucket, key = %intent.key, age_ms = now - intent.created_ms,
                        "promoted the complete bytes of an uncommitted write",
                    );
                }
                Ok(r) => {
                    let had_bytes = r == Resolution::DroppedBytes;
                    dropped += 1;
                    deleted += usize::from(had_bytes);
                    tracing::info!(
                        job = "reaper", intent = %intent.intent_id, backend = %intent.backend_id,
                        key = %intent.backend_key, age_ms = now - intent.created_ms, had_bytes,
                        "dropped an uncommitted write intent",
                    );
                }
                Err(error) => {
                    failed += 1;
                    tracing::warn!(
                        job = "reaper", intent = %intent.intent_id, backend = %intent.backend_id,
                        key = %intent.backend_key, %error, "could not resolve a stale write intent; will retry",
                    );
                }
            }
        }
        tracing::info!(
            job = "reaper",
            stale = stale.len(),
            dropped,
            promoted,
            bytes_deleted = deleted,
            failed,
            "reaper cycle"
        );
        // A full batch with progress: more may be waiting. Failures alone would
        // only spin on the same intents.
        if stale.len() >= self.batch as usize && dropped + promoted > 0 {
            Ok(Outcome::Busy)
        } else {
            Ok(Outcome::Idle)
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_core::WritePlan;

    use super::*;
    use crate::testkit::{Kit, kit};

    async fn intent(k: &Kit, tag: &str, backend_id: &str, backend_key: &str, at: i64) {
        let _ = k.store.create_bucket("b", "admin", 1).await;
        let plan = WritePlan {
            intent_id: format!("intent-{tag}"),
            object_id: format!("obj-{tag}"),
            backend_id: backend_id.into(),
            backend_key: backend_key.into(),
            ..Default::default()
        };
        k.store.insert_intent(&plan, "b", tag, Some(10), at).await.unwrap();
    }

    async fn intents(k: &Kit) -> Vec<String> {
        k.store
            .stale_intents(i64::MAX, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.intent_id)
            .collect()
    }

    #[tokio::test]
    async fn reaper_drops_old_intents_and_keeps_young_ones() {
        let k = kit().await;
        let old = k.put_bytes(b"orphaned").await;
        let young = k.put_bytes(b"in flight").await;
        intent(&k, "old", "disk-1", &old, k.now() - 11 * 60_000).await;
        // Old, but its bytes never landed.
        intent(
            &k,
            "empty",
            "disk-1",
            "00000000000000000000000000000000",
            k.now() - 20 * 60_000,
        )
        .await;
        intent(&k, "young", "disk-1", &young, k.now() - 60_000).await;

        let mut job = ReaperJob::new(k.store.clone(), k.backends.clone());
        job.clock = k.clock.clone();
        job.min_age = Duration::from_secs(600);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert!(!k.exists(&old).await);
        assert!(k.exists(&young).await);
        assert_eq!(intents(&k).await, ["intent-young"]);
        // The dropped intents no longer reserve space.
        let reserved: u64 = k
            .store
            .backend_usage()
            .await
            .unwrap()
            .iter()
            .map(|u| u.reserved_bytes)
            .sum();
        assert_eq!(reserved, 10);

        // Once old enough, the young one goes too.
        k.advance(9 * 60_000 + 1);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert!(!k.exists(&young).await);
        assert!(intents(&k).await.is_empty());
    }

    fn tags(key: &str, object_id: &str) -> strata_backend::BlobMeta {
        blobtags::encode(&blobtags::BlobFacts {
            bucket: "b".into(),
            key: key.into(),
            object_id: object_id.into(),
            role: BlobRole::Object,
            meta: strata_core::ObjectMeta {
                content_type: Some("text/plain".into()),
                ..Default::default()
            },
            codec: "none".into(),
        })
    }

    #[tokio::test]
    async fn reaper_promotes_complete_tagged_writes_unless_a_newer_write_exists() {
        let k = kit().await;
        let crashed = k.put_tagged(b"crashed write", &tags("won", "obj-won")).await;
        intent(&k, "won", "disk-1", &crashed, k.now() - 2 * 3_600_000).await;
        let mut job = ReaperJob::new(k.store.clone(), k.backends.clone());
        job.clock = k.clock.clone();
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        let rec = k.store.get_object("b", "won").await.unwrap();
        assert_eq!(rec.meta.size, 13);
        assert_eq!(rec.meta.etag, hex::encode(Md5::digest(b"crashed write")));
        assert_eq!(rec.meta.content_type.as_deref(), Some("text/plain"));
        assert!(k.exists(&crashed).await, "promoted bytes stay");
        assert!(intents(&k).await.is_empty());

        // An older intent for a key written since then is dropped with its bytes.
        let late = k.put_tagged(b"stale", &tags("won", "obj-late")).await;
        intent(&k, "late", "disk-1", &late, k.now() - 3 * 3_600_000).await;
        // Untagged bytes are never promoted.
        let bare = k.put_bytes(b"no tags").await;
        intent(&k, "bare", "disk-1", &bare, k.now() - 2 * 3_600_000).await;
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert_eq!(k.store.get_object("b", "won").await.unwrap().object_id, "obj-won");
        assert!(!k.exists(&late).await && !k.exists(&bare).await);
        assert!(matches!(
            k.store.get_object("b", "bare").await,
            Err(strata_core::CpError::NoSuchKey)
        ));
        assert!(intents(&k).await.is_empty());
    }

    #[tokio::test]
    async fn reaper_keeps_intents_of_unknown_backends_and_reports_busy() {
        let k = kit().await;
        intent(&k, "lost", "gone", "k", k.now() - 3_600_000).await;
        for i in 0..3 {
            let key = k.put_bytes(b"x").await;
            intent(&k, &format!("n{i}"), "disk-1", &key, k.now() - 1_800_000).await;
        }
        let mut job = ReaperJob::new(k.store.clone(), k.backends.clone());
        job.clock = k.clock.clone();
        job.min_age = Duration::from_secs(600);
        job.batch = 2;
        // The unknown backend's intent fails and stays, one other is dropped.
        assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
        assert_eq!(intents(&k).await.len(), 3);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Busy);
        assert_eq!(intents(&k).await, ["intent-lost"]);
        // Only the failing intent is left: idle, not spinning.
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert_eq!(intents(&k).await, ["intent-lost"]);
    }
}
