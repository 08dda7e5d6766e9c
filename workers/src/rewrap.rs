//! Moves every data key under the primary master key after a rotation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_core::SSE_C_KEY_PREFIX;
use strata_crypto::Kms;
use strata_store::{JobProgress, MetaStore};

use crate::{Clock, Job, Outcome, metrics, system_clock};

/// Name of the job and of its progress row.
const NAME: &str = "rewrap";

/// Re-wraps the data keys of blobs sealed under an older master key (one
/// listed in `encryption.previous_keys`) under the primary key, `batch` blobs
/// per cycle, with a compare-and-set per blob so that it never undoes a
/// concurrent change. No blob byte is read or written. Progress is saved in
/// the `rewrap` row of the job table: `done` counts re-wrapped keys, `total`
/// is `done` plus those remaining, `detail` the blobs per key id (`k1=0
/// k2=120 sse-c=3`), `state` `running` until nothing is left (`done`). A
/// blob whose old key is not configured is an error naming that key; the
/// others still move.
pub struct RewrapJob {
    pub store: Arc<dyn MetaStore>,
    pub kms: Arc<dyn Kms>,
    pub batch: u32,
    pub period: Duration,
    /// Time stamps of the progress row.
    pub clock: Clock,
}

impl RewrapJob {
    pub fn new(store: Arc<dyn MetaStore>, kms: Arc<dyn Kms>, batch: u32, period: Duration) -> Self {
        RewrapJob {
            store,
            kms,
            batch: batch.max(1),
            period,
            clock: system_clock(),
        }
    }

    /// Blobs still under another master key, and the per-key detail line.
    async fn remaining(&self, primary: &str) -> Result<(u64, String), String> {
        let counts = (self.store.blob_key_counts().await).map_err(|e| format!("count blobs per key: {e}"))?;
        let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
        let mut remaining = 0;
        for (key_id, n) in counts {
            if key_id.is_empty() {
                continue;
            }
            if key_id.starts_with(SSE_C_KEY_PREFIX) {
                *per_key.entry("sse-c".into()).or_default() += n;
                continue;
            }
            if key_id != primary {
                remaining += n;
            }
            *per_key.entry(key_id).or_default() += n;
        }
        per_key.entry(primary.to_owned()).or_default();
        let detail = (per_key.iter())
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        Ok((remaining, detail))
    }

    async fn save(&self, moved: u64, errors: u64, primary: &str) -> Result<u64, String> {
        let (remaining, detail) = self.remaining(primary).await?;
        let mut p = (self.store.get_job(NAME).await)
            .map_err(|e| format!("read the rewrap progress: {e}"))?
            .unwrap_or_else(|| JobProgress {
                name: NAME.into(),
                ..JobProgress::default()
            });
        p.done += moved;
        p.errors += errors;
        p.total = p.done + remaining;
        p.state = if remaining == 0 { "done" } else { "running" }.into();
        p.detail = detail;
        p.updated_ms = (self.clock)();
        (self.store.put_job(&p).await).map_err(|e| format!("save the rewrap progress: {e}"))?;
        Ok(remaining)
    }
}

#[async_trait]
impl Job for RewrapJob {
    fn name(&self) -> &'static str {
        NAME
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let primary = self.kms.primary_key_id().to_owned();
        let todo = (self.store.blobs_not_under(&primary, self.batch).await)
            .map_err(|e| format!("list blobs under older keys: {e}"))?;
        if todo.is_empty() {
            let done = self.store.get_job(NAME).await.ok().flatten();
            if done.is_none_or(|p| p.state != "done") {
                self.save(0, 0, &primary).await?;
            }
            return Ok(Outcome::Idle);
        }
        let (mut moved, mut errors) = (0u64, 0u64);
        let mut first_error = None;
        for blob in &todo {
            let (Some(old), Some(wrapped)) = (blob.key_id.as_deref(), blob.wrapped_dek.as_deref()) else {
                continue;
            };
            let result = async {
                let dek = self.kms.unwrap(old, wrapped).await.map_err(|e| {
                    if self.kms.has_key(old) {
                        format!("unwrap the data key of {}/{}: {e}", blob.backend_id, blob.backend_key)
                    } else {
                        format!(
                            "the data key of {}/{} is wrapped under key `{old}`, which is not configured: \
                             add it to `encryption.previous_keys` ({e})",
                            blob.backend_id, blob.backend_key
                        )
                    }
                })?;
                let (new_id, new_wrapped) = (self.kms.wrap(&dek).await).map_err(|e| format!("wrap a data key: {e}"))?;
                (self.store)
                    .rewrap_blob(&blob.backend_id, &blob.backend_key, old, &new_id, &new_wrapped)
                    .await
                    .map_err(|e| format!("save the re-wrapped key of {}: {e}", blob.backend_key))
            }
            .await;
            match result {
                Ok(true) => {
                    moved += 1;
                    metrics::REWRAP_BLOBS.inc();
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = NAME, backend = %blob.backend_id, blob = %blob.backend_key, error = %e, "re-wrap failed");
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let remaining = self.save(moved, errors, &primary).await?;
        tracing::info!(job = NAME, moved, errors, remaining, "re-wrap cycle");
        match first_error {
            // Nothing moved: the batch is stuck on keys that cannot be unwrapped.
            Some(e) if moved == 0 => Err(e),
            _ if remaining == 0 => Ok(Outcome::Idle),
            _ => Ok(Outcome::Busy),
        }
    }
}
