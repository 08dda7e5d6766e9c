//! Degraded mode: a [`ControlPlane`] decorator with a circuit breaker around
//! the metadata database and a short-lived cache of lookups (see
//! docs/degraded-mode.md).
//!
//! While the database answers, every call goes through and object, bucket,
//! credential and delta-reference lookups refresh the cache. When it stops
//! answering (`Unavailable`, or a lookup slower than `read_timeout_ms`), the
//! breaker opens after `failure_threshold` failures: lookups are answered
//! from the cache (entries at most `cache_ttl_secs` old) and everything else
//! fails fast with `Unavailable` (503 SlowDown at the S3 edge). A background
//! probe every `open_secs` closes the breaker as soon as the database answers.

mod breaker;
mod cache;

use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strata_core::config::DegradedConfig;
use strata_core::{
    BlobKey, BucketInfo, CleanupItem, ClusterStatus, Commit, ControlPlane, CpError, CpResult, Credential,
    DeltaBucketReport, DeltaDecision, DeltaRef, ListPage, ListPartsPage, ListQuery, ListUploadsPage, ListUploadsQuery,
    MonthlyUsage, ObjectMeta, ObjectRecord, PartInfo, Segment, UploadInfo, UsageReport, WriteCondition, WritePlan,
};

use breaker::DbBreaker;
use cache::{Cache, Entry};

use crate::metrics::{DB_BREAKER_STATE as STATE, DEGRADED_READS};

/// The name the probe looks up (a missing bucket is a fine answer).
const PROBE_BUCKET: &str = "strata-degraded-probe";

fn unavailable() -> CpError {
    CpError::Unavailable(
        "the metadata database is unreachable: recently read objects stay readable, writes and listings resume when \
         it returns"
            .into(),
    )
}

/// The decorator. Wrap the control-plane service with [`Degraded::wrap`].
pub struct Degraded {
    inner: Arc<dyn ControlPlane>,
    breaker: Mutex<DbBreaker>,
    cache: Mutex<Cache>,
    read_timeout: Duration,
}

impl Degraded {
    /// Wraps `inner` and starts the probe task (it ends with the decorator).
    pub fn wrap(inner: Arc<dyn ControlPlane>, config: &DegradedConfig) -> Arc<Degraded> {
        STATE.set(0);
        LazyLock::force(&DEGRADED_READS);
        let this = Arc::new(Degraded {
            inner,
            breaker: Mutex::new(DbBreaker::new(
                config.failure_threshold,
                Duration::from_secs(config.open_secs),
            )),
            cache: Mutex::new(Cache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_entries,
            )),
            read_timeout: Duration::from_millis(config.read_timeout_ms),
        });
        tokio::spawn(probe_loop(Arc::downgrade(&this)));
        this
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, DbBreaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed(&self) -> bool {
        self.breaker().closed()
    }

    fn succeeded(&self) {
        let mut b = self.breaker();
        if b.success() {
            tracing::info!("metadata database reachable again; degraded mode over");
        }
        STATE.set(b.state().gauge_value());
    }

    fn failed(&self, why: &str) {
        let mut b = self.breaker();
        if b.failure(Instant::now()) {
            tracing::error!(
                error = why,
                "metadata database unreachable; degraded mode: cached reads only, writes get 503"
            );
        }
        STATE.set(b.state().gauge_value());
    }

    /// Records what an answer says about the database.
    fn observe<T>(&self, r: &CpResult<T>) {
        match r {
            Err(CpError::Unavailable(m)) => self.failed(m),
            _ => self.succeeded(),
        }
    }

    /// A call that is not cached: it fails fast while the breaker is open.
    async fn call<T>(&self, f: impl Future<Output = CpResult<T>>) -> CpResult<T> {
        if !self.closed() {
            return Err(unavailable());
        }
        let r = f.await;
        self.observe(&r);
        r
    }

    /// A cached lookup: from the database when it answers in time (and then
    /// cached), else from the cache.
    async fn lookup<T>(
        &self,
        key: String,
        to_entry: fn(&T) -> Option<Entry>,
        from_entry: fn(Entry) -> Option<T>,
        f: impl Future<Output = CpResult<T>>,
    ) -> CpResult<T> {
        if self.closed() {
            let why = match tokio::time::timeout(self.read_timeout, f).await {
                Ok(Err(CpError::Unavailable(m))) => m,
                Err(_) => format!("lookup took longer than {:?}", self.read_timeout),
                Ok(r) => {
                    self.succeeded();
                    match &r {
                        Ok(v) => match to_entry(v) {
                            Some(e) => self.cache().put(key, e, Instant::now()),
                            None => self.cache().remove(&key),
                        },
                        Err(_) => self.cache().remove(&key),
                    }
                    return r;
                }
            };
            self.failed(&why);
        }
        let cached = self.cache().get(&key, Instant::now()).and_then(from_entry);
        match cached {
            Some(v) => {
                DEGRADED_READS.inc();
                tracing::debug!(key = %key.replace('\0', "/"), "lookup answered from the degraded-mode cache");
                Ok(v)
            }
            None => Err(unavailable()),
        }
    }

    fn forget(&self, key: &str) {
        self.cache().remove(key);
    }
}

/// Probes the database every `open_secs` while the breaker is open.
async fn probe_loop(this: Weak<Degraded>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(d) = this.upgrade() else { return };
        if !d.breaker().probe_due(Instant::now()) {
            continue;
        }
        STATE.set(d.breaker().state().gauge_value());
        match tokio::time::timeout(d.read_timeout, d.inner.head_bucket(PROBE_BUCKET)).await {
            Ok(Err(CpError::Unavailable(m))) => d.failed(&m),
            Err(_) => d.failed("probe timed out"),
            Ok(_) => d.succeeded(),
        }
    }
}

fn obj(v: &ObjectRecord) -> Option<Entry> {
    Some(Entry::Object(Box::new(v.clone())))
}
fn un_obj(e: Entry) -> Option<ObjectRecord> {
    match e {
        Entry::Object(v) => Some(*v),
        _ => None,
    }
}

mod delegate;

#[cfg(test)]
mod tests;
