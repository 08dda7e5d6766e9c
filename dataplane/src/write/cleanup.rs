//! Deleting bytes the catalog no longer references, after the response.
//!
//! Overwrites and deletes hand their obsolete blobs to one background task
//! per data plane. It deletes up to `PARALLEL` blobs at a time and
//! acknowledges the deleted ones in batches, so a burst of DELETEs costs one
//! acknowledgement transaction per batch rather than one per request. Rows
//! that are not acknowledged (a full queue, a failed delete, a shutdown) stay
//! in the durable cleanup queue, where the cleanup job finds them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use strata_backend::Backends;
use strata_core::{CleanupItem, ControlPlane};
use tokio::sync::mpsc;

use crate::s3::StrataS3;

/// Blobs waiting in memory; beyond this the durable queue takes over.
const QUEUE: usize = 4096;
/// Deletes in flight at once.
const PARALLEL: usize = 16;
/// Acknowledge at the latest after this many ids or this long.
const ACK_BATCH: usize = 256;
const ACK_AFTER: Duration = Duration::from_millis(20);

/// The sending side of the background cleaner, started on first use.
#[derive(Clone, Default)]
pub(crate) struct Cleaner {
    tx: Arc<OnceLock<mpsc::Sender<CleanupItem>>>,
}

impl Cleaner {
    fn sender(&self, cp: &Arc<dyn ControlPlane>, backends: &Backends) -> &mpsc::Sender<CleanupItem> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(rx, cp.clone(), backends.clone()));
            tx
        })
    }
}

async fn run(rx: mpsc::Receiver<CleanupItem>, cp: Arc<dyn ControlPlane>, backends: Backends) {
    let deleted = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|item| {
            let backend = backends.get(&item.backend_id).cloned();
            async move {
                let backend = backend?;
                match backend.delete(&item.backend_key).await {
                    Ok(()) => Some(item.id),
                    Err(e) => {
                        tracing::warn!(backend = %item.backend_id, key = %item.backend_key, error = %e,
                            "could not delete obsolete bytes; the cleanup job will retry");
                        None
                    }
                }
            }
        })
        .buffer_unordered(PARALLEL)
        .filter_map(|id| async move { id })
        .ready_chunks(ACK_BATCH);
    let mut deleted = std::pin::pin!(deleted);
    while let Some(ids) = deleted.next().await {
        if let Err(e) = cp.ack_cleanup(ids).await {
            tracing::warn!(error = %e, "could not acknowledge cleanup; the cleanup job will retry");
        }
        // Let a few more deletions finish so the next acknowledgement carries more ids.
        tokio::time::sleep(ACK_AFTER).await;
    }
}

impl StrataS3 {
    /// Queues bytes the catalog no longer references for deletion after the
    /// response. A full queue leaves them to the cleanup job.
    pub(crate) fn cleanup(&self, items: Vec<CleanupItem>) {
        if items.is_empty() {
            return;
        }
        let tx = self.cleaner.sender(&self.cp, &self.backends);
        for item in items {
            if tx.try_send(item).is_err() {
                tracing::debug!("cleanup queue full; the cleanup job will delete the rest");
                break;
            }
        }
    }
}
