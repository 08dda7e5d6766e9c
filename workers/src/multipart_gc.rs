//! [`StaleMultipartJob`]: aborts multipart uploads that were started longer
//! ago than `jobs.multipart_max_age_secs` and never completed. The store's
//! abort queues their parts' bytes for the cleanup job, so nothing is left
//! on the backends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_core::{CpError, ListUploadsQuery};
use strata_store::MetaStore;

use crate::metrics::MULTIPART_ABORTED;
use crate::{Clock, Job, Outcome, system_clock};

/// Uploads listed per store call.
const PAGE: u32 = 1000;

pub struct StaleMultipartJob {
    store: Arc<dyn MetaStore>,
    /// Uploads older than this are aborted.
    pub max_age: Duration,
    pub period: Duration,
    /// Aborts per cycle at most.
    pub batch: u32,
    pub clock: Clock,
}

impl StaleMultipartJob {
    pub fn new(store: Arc<dyn MetaStore>) -> StaleMultipartJob {
        StaleMultipartJob {
            store,
            max_age: Duration::from_secs(7 * 86_400),
            period: Duration::from_secs(3600),
            batch: 1000,
            clock: system_clock(),
        }
    }
}

#[async_trait]
impl Job for StaleMultipartJob {
    fn name(&self) -> &'static str {
        "stale-multipart"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let max_age = i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = (self.clock)().saturating_sub(max_age);
        let buckets = self.store.list_buckets().await.map_err(|e| e.to_string())?;
        let mut aborted = 0u32;
        for bucket in buckets {
            let mut query = ListUploadsQuery {
                bucket: bucket.name.clone(),
                prefix: String::new(),
                key_marker: String::new(),
                upload_id_marker: String::new(),
                max_uploads: PAGE,
            };
            loop {
                let page = match self.store.list_uploads(&query).await {
                    Ok(p) => p,
                    // Deleted meanwhile.
                    Err(CpError::NoSuchBucket) => break,
                    Err(e) => return Err(e.to_string()),
                };
                for u in page.uploads.iter().filter(|u| u.initiated_unix_ms < cutoff) {
                    match self.store.abort_upload(&u.bucket, &u.upload_id).await {
                        Ok(parts) => {
                            tracing::info!(
                                bucket = %u.bucket, key = %u.key, upload_id = %u.upload_id,
                                parts = parts.len(), initiated_ms = u.initiated_unix_ms,
                                "stale multipart upload aborted"
                            );
                            MULTIPART_ABORTED.inc();
                            aborted += 1;
                        }
                        // Completed or aborted meanwhile.
                        Err(CpError::NoSuchUpload) => {}
                        Err(e) => return Err(format!("abort upload {}: {e}", u.upload_id)),
                    }
                    if aborted >= self.batch {
                        return Ok(Outcome::Busy);
                    }
                }
                match (page.is_truncated, page.uploads.last()) {
                    (true, Some(last)) => {
                        query.key_marker = last.key.clone();
                        query.upload_id_marker = last.upload_id.clone();
                    }
                    _ => break,
                }
            }
        }
        Ok(Outcome::Idle)
    }
}
