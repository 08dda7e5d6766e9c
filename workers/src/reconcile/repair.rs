//! What the reconciler does about one key found on only one side: queue an
//! orphan, drop a lost copy, or quarantine a lost last copy; and its metrics.

use strata_backend::{Backend, BackendError, ListedBlob};
use strata_core::CpError;
use strata_store::{BlobRecord, BlobState, BlobUse, KnownBlob};

use super::{Counts, NAME, ReconcileJob, millis};

pub(super) use crate::metrics::RECONCILE_SCANNED as SCANNED;
use crate::metrics::{RECONCILE_LOST as LOST, RECONCILE_MISSING as MISSING, RECONCILE_ORPHANS as ORPHANS};

impl ReconcileJob {
    /// A blob on the backend that the catalog does not name.
    pub(super) async fn on_unknown(&self, id: &str, blob: &ListedBlob, counts: &mut Counts) {
        let age_ms = (self.clock)().saturating_sub(blob.modified_ms);
        if age_ms < millis(self.grace) {
            counts.young += 1;
            return;
        }
        match self.store.enqueue_orphan(id, &blob.key, blob.size).await {
            Ok(true) => {
                counts.orphans += 1;
                ORPHANS.with_label_values(&[id]).inc();
                tracing::info!(job = NAME, backend = id, blob = %blob.key, bytes = blob.size, age_secs = age_ms / 1000,
                    "orphan blob (named by no catalog row) queued for cleanup");
            }
            Ok(false) => {} // Named meanwhile.
            Err(e) => {
                counts.errors += 1;
                tracing::warn!(job = NAME, backend = id, blob = %blob.key, error = %e, "cannot queue an orphan");
            }
        }
    }

    /// A blob the catalog names that the backend did not list.
    pub(super) async fn on_unlisted(&self, backend: &dyn Backend, known: &KnownBlob, counts: &mut Counts) {
        let (id, key) = (backend.id(), known.backend_key.as_str());
        if known.used_as == BlobUse::Transient {
            return; // A write in flight, or bytes already deleted and not yet acknowledged.
        }
        // Listed before it was written? Only a HEAD says it is gone.
        match backend.head(key).await {
            Ok(_) => return,
            Err(BackendError::NotFound) => {}
            Err(e) => {
                counts.errors += 1;
                tracing::warn!(job = NAME, backend = id, blob = key, error = %e, "cannot check a blob the listing lacks");
                return;
            }
        }
        counts.missing += 1;
        MISSING.with_label_values(&[id]).inc();
        if known.used_as == BlobUse::Part {
            tracing::error!(
                job = NAME,
                backend = id,
                blob = key,
                "a multipart part is missing from its backend; its upload cannot complete and must be restarted"
            );
            return;
        }
        if let Err(e) = self.drop_lost(id, key, counts).await {
            counts.errors += 1;
            tracing::warn!(job = NAME, backend = id, blob = key, error = %e, "cannot handle a missing copy; will retry");
        }
    }

    /// Drops the copy holding the missing blob, or quarantines a last copy.
    async fn drop_lost(&self, id: &str, key: &str, counts: &mut Counts) -> Result<(), String> {
        let Some((bucket, object)) = (self.store.blob_owner(id, key).await).map_err(|e| e.to_string())? else {
            return Ok(()); // No current object uses it any more.
        };
        let rec = match self.store.get_object(&bucket, &object).await {
            Ok(r) => r,
            Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let copies: Vec<&[strata_core::Segment]> = std::iter::once(rec.segments.as_slice())
            .chain(rec.copies.iter().map(Vec::as_slice))
            .collect();
        let holds = |segs: &&[strata_core::Segment]| segs.iter().any(|s| s.backend_id == id && s.backend_key == key);
        let Some(copy) = copies.iter().position(holds) else {
            return Ok(());
        };
        if copies.len() > 1 {
            let old = copies[copy].to_vec();
            let dropped = (self
                .store
                .drop_copy(&bucket, &object, &rec.object_id, copy as u32, &old)
                .await)
                .map_err(|e| format!("drop the lost copy: {e}"))?;
            if dropped.is_some() {
                tracing::warn!(job = NAME, backend = id, blob = key, %bucket, key = %object, copy,
                    "a copy was missing from its backend: dropped from the catalog; replication will make a new one");
            }
            return Ok(());
        }
        let now = (self.clock)();
        let row = BlobRecord {
            backend_id: id.to_owned(),
            backend_key: key.to_owned(),
            state: BlobState::Quarantined,
            checked_ms: now,
            ..BlobRecord::default()
        };
        (self.store.put_blobs(&[row], now).await).map_err(|e| e.to_string())?;
        (self.store.mark_blob(id, key, BlobState::Quarantined, now).await).map_err(|e| e.to_string())?;
        counts.lost += 1;
        LOST.with_label_values(&[id]).inc();
        tracing::error!(job = NAME, backend = id, blob = key, %bucket, key = %object, object_id = %rec.object_id,
            "the only copy of an object is missing from its backend: quarantined, reads fail; restore the blob or delete the object");
        Ok(())
    }
}
