//! Keeps every object on `factor` backends by copying it in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use strata_backend::{BackendError, Backends, ByteStream};
use strata_core::blobtags::{self, BlobFacts, BlobRole};
use strata_core::{ControlPlane, CpError, ObjectRecord, Segment};
use strata_store::MetaStore;

use crate::{Job, Outcome};

/// Copies under-replicated objects to further backends until each has
/// `factor` copies (the primary included).
///
/// For each object the control plane chooses the target like any write
/// (quotas, limits, pins), excluding the backends that already hold a copy,
/// and records an intent; the bytes of one existing copy are streamed to the
/// target with the object's blob tags, then `add_copy` attaches the copy in
/// one transaction with redeeming the intent. A copy of an object replaced
/// meanwhile is queued for cleanup instead. A crash in between leaves an
/// intent that the reaper resolves (attaching the copy or dropping it).
pub struct ReplicationJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    pub factor: u32,
    pub period: Duration,
    /// Objects looked at per cycle.
    pub batch: u32,
    /// The last object id handled, so that objects that cannot be copied now
    /// (no room) do not block the ones after them.
    cursor: Mutex<String>,
}

impl ReplicationJob {
    pub fn new(
        store: Arc<dyn MetaStore>,
        cp: Arc<dyn ControlPlane>,
        backends: Backends,
        factor: u32,
        period: Duration,
    ) -> Self {
        ReplicationJob {
            store,
            cp,
            backends,
            factor,
            period,
            batch: 32,
            cursor: Mutex::new(String::new()),
        }
    }

    /// The bytes of the first copy whose backends are all configured.
    fn source(&self, rec: &ObjectRecord) -> Option<ByteStream> {
        let copies = std::iter::once(&rec.segments).chain(rec.copies.iter());
        for segs in copies {
            let opened: Option<Vec<_>> = (segs.iter())
                .map(|s| self.backends.get(&s.backend_id).cloned().map(|b| (b, s.clone())))
                .collect();
            if let Some(opened) = opened {
                let s = stream::iter(opened)
                    .then(|(b, seg)| async move { b.get(&seg.backend_key, 0, seg.length).await.map_err(io) })
                    .try_flatten();
                return Some(Box::pin(sync_wrapper::SyncStream::new(s)));
            }
        }
        None
    }

    /// Makes one more copy of `rec`. `Ok(false)` when no backend can take it now.
    async fn replicate(&self, rec: &ObjectRecord) -> Result<bool, String> {
        let holders: Vec<String> = (rec.segments.iter())
            .chain(rec.copies.iter().flatten())
            .map(|s| s.backend_id.clone())
            .collect();
        let plan = match (self.cp)
            .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &holders)
            .await
        {
            Ok(p) => p,
            Err(CpError::NoCapacity(why)) => {
                tracing::debug!(job = "replication", bucket = %rec.bucket, key = %rec.key, %why, "no backend for another copy");
                return Ok(false);
            }
            Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(true),
            Err(e) => return Err(format!("plan a copy: {e}")),
        };
        let target = self.backends.get(&plan.backend_id).cloned();
        let body = self.source(rec);
        let (Some(target), Some(body)) = (target, body) else {
            let _ = self.cp.abort_write(&plan.intent_id).await;
            return Err(format!("object {} has no readable copy or target", rec.object_id));
        };
        let tags = blobtags::encode(&BlobFacts {
            bucket: rec.bucket.clone(),
            key: rec.key.clone(),
            object_id: rec.object_id.clone(),
            role: BlobRole::Object,
            meta: rec.meta.clone(),
            codec: "none".into(),
        });
        let written = match target.put(&plan.backend_key, &tags, body).await {
            Ok(n) if n == rec.meta.size => n,
            result => {
                let _ = target.delete(&plan.backend_key).await;
                let _ = self.cp.abort_write(&plan.intent_id).await;
                return Err(match result {
                    Ok(n) => format!("copy of {} wrote {n} of {} bytes", rec.object_id, rec.meta.size),
                    Err(e) => format!("copy {} to {}: {e}", rec.object_id, plan.backend_id),
                });
            }
        };
        let segment = Segment {
            backend_id: plan.backend_id.clone(),
            backend_key: plan.backend_key.clone(),
            length: written,
            ..Default::default()
        };
        let attached = (self.store)
            .add_copy(&plan.intent_id, &rec.bucket, &rec.key, &rec.object_id, &[segment])
            .await
            .map_err(|e| format!("attach the copy: {e}"))?;
        tracing::info!(
            job = "replication", bucket = %rec.bucket, key = %rec.key, object = %rec.object_id,
            to = %plan.backend_id, bytes = written, attached, "copied an object",
        );
        Ok(true)
    }
}

fn io(e: BackendError) -> std::io::Error {
    std::io::Error::other(e)
}

#[async_trait]
impl Job for ReplicationJob {
    fn name(&self) -> &'static str {
        "replication"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let after = self.cursor.lock().expect("cursor").clone();
        let todo = (self.store)
            .under_replicated(self.factor, &after, self.batch)
            .await
            .map_err(|e| format!("list under-replicated objects: {e}"))?;
        let Some(last) = todo.last() else {
            self.cursor.lock().expect("cursor").clear();
            return Ok(Outcome::Idle);
        };
        *self.cursor.lock().expect("cursor") = last.object_id.clone();
        let (mut copied, mut no_room, mut failed) = (0, 0, 0);
        let mut first_error = None;
        for rec in &todo {
            match self.replicate(rec).await {
                Ok(true) => copied += 1,
                Ok(false) => no_room += 1,
                Err(e) => {
                    tracing::warn!(job = "replication", object = %rec.object_id, error = %e, "copy failed; will retry");
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        tracing::info!(
            job = "replication",
            looked_at = todo.len(),
            copied,
            no_room,
            failed,
            "replication cycle"
        );
        match first_error {
            Some(e) if copied == 0 => Err(e),
            _ if copied > 0 => Ok(Outcome::Busy),
            _ => Ok(Outcome::Throttled),
        }
    }
}
