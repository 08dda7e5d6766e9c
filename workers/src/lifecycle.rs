//! [`LifecycleJob`]: expiration by prefix and age (`lifecycle:` rules).
//! Current objects older than their rule's age are deleted through the
//! control plane, the same path as an S3 DeleteObject, so their bytes are
//! queued for the cleanup job.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_core::config::LifecycleRule;
use strata_core::{ControlPlane, CpError, ListQuery};
use strata_store::MetaStore;

use crate::metrics::LIFECYCLE_EXPIRED;
use crate::{Clock, Job, Outcome, system_clock};

/// Keys listed per store call.
const PAGE: u32 = 1000;

pub struct LifecycleJob {
    store: Arc<dyn MetaStore>,
    cp: Arc<dyn ControlPlane>,
    rules: Vec<LifecycleRule>,
    pub period: Duration,
    /// Deletions per cycle at most.
    pub batch: u32,
    pub clock: Clock,
}

impl LifecycleJob {
    pub fn new(store: Arc<dyn MetaStore>, cp: Arc<dyn ControlPlane>, rules: Vec<LifecycleRule>) -> LifecycleJob {
        LifecycleJob {
            store,
            cp,
            rules,
            period: Duration::from_secs(3600),
            batch: 1000,
            clock: system_clock(),
        }
    }

    /// Applies one rule; returns the deletions made, stopping at `budget`.
    async fn apply(&self, rule: &LifecycleRule, now: i64, budget: u32) -> Result<u32, String> {
        let cutoff = now.saturating_sub(rule.max_age_ms());
        let mut query = ListQuery {
            bucket: rule.bucket.clone(),
            prefix: rule.prefix.clone(),
            max_keys: PAGE,
            ..Default::default()
        };
        let mut expired = 0;
        loop {
            let page = match self.store.list_objects(&query).await {
                Ok(p) => p,
                Err(CpError::NoSuchBucket) => {
                    tracing::debug!(bucket = %rule.bucket, "lifecycle rule for a missing bucket");
                    return Ok(expired);
                }
                Err(e) => return Err(e.to_string()),
            };
            for e in page.objects.iter().filter(|e| e.last_modified_unix_ms < cutoff) {
                match self.cp.delete_object(&rule.bucket, &e.key).await {
                    Ok(_) => {
                        tracing::info!(bucket = %rule.bucket, key = %e.key, last_modified_ms = e.last_modified_unix_ms,
                            "object expired by a lifecycle rule");
                        LIFECYCLE_EXPIRED.inc();
                        expired += 1;
                    }
                    // Deleted meanwhile.
                    Err(CpError::NoSuchKey) => {}
                    Err(err) => return Err(format!("expire {}/{}: {err}", rule.bucket, e.key)),
                }
                if expired >= budget {
                    return Ok(expired);
                }
            }
            if !page.is_truncated || page.next_after.is_empty() {
                return Ok(expired);
            }
            query.after = page.next_after;
        }
    }
}

#[async_trait]
impl Job for LifecycleJob {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let now = (self.clock)();
        let mut budget = self.batch;
        for rule in &self.rules {
            budget -= self.apply(rule, now, budget).await?;
            if budget == 0 {
                return Ok(Outcome::Busy);
            }
        }
        Ok(Outcome::Idle)
    }
}
