//! [`GuardedBackend`]: a [`Backend`] wrapper that counts requests, ingress and
//! egress bytes, and drives (and obeys) the backend's circuit breaker.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use prometheus::{IntCounter, IntGauge};
use strata_backend::{Backend, BackendError, BlobHead, BlobMeta, ByteStream};
use strata_core::BreakerState;
use tokio::sync::Notify;

use super::breaker::{Admit, Breaker};
use super::shared_counters::{EGRESS, INGRESS, REQUESTS, SharedHook};

/// What one backend call says about the backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    /// Says nothing about the backend (the client's body failed, a bad key).
    Neutral,
}

/// How a backend error counts for the breaker: a 404 is a success, i/o and
/// remote errors (timeouts, 5xx, refused connections) are failures.
pub(crate) fn outcome_of(e: &BackendError) -> Outcome {
    match e {
        BackendError::NotFound => Outcome::Success,
        BackendError::Io(_) | BackendError::Remote(_) => Outcome::Failure,
        BackendError::Body(_) | BackendError::InvalidKey | BackendError::Key(_) => Outcome::Neutral,
    }
}

/// Prometheus series of one backend.
pub(crate) struct CellMetrics {
    pub requests: IntCounter,
    pub egress: IntCounter,
    pub ingress: IntCounter,
    pub state: IntGauge,
}

/// The breaker and the not yet reported traffic of one backend.
pub(crate) struct Cell {
    pub id: String,
    breaker: Mutex<Breaker>,
    /// Traffic since the last successful usage report.
    pub requests: AtomicU64,
    pub egress: AtomicU64,
    pub ingress: AtomicU64,
    metrics: CellMetrics,
    /// Woken on every breaker transition, so the reporter reports early.
    changed: Arc<Notify>,
    /// Redis shared counters, when `redis:` is configured.
    pub shared: OnceLock<SharedHook>,
}

impl Cell {
    pub fn new(id: String, threshold: u32, open_for: Duration, metrics: CellMetrics, changed: Arc<Notify>) -> Cell {
        Cell {
            id,
            breaker: Mutex::new(Breaker::new(threshold, open_for)),
            requests: AtomicU64::new(0),
            egress: AtomicU64::new(0),
            ingress: AtomicU64::new(0),
            metrics,
            changed,
            shared: OnceLock::new(),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        let s = self.breaker().state(Instant::now());
        self.metrics.state.set(s.gauge_value());
        s
    }

    fn admit(&self) -> Admit {
        let admit = self.breaker().admit(Instant::now());
        if admit == Admit::Trial {
            self.metrics.state.set(BreakerState::HalfOpen.gauge_value());
        }
        admit
    }

    pub fn record(&self, outcome: Outcome) {
        let changed = match outcome {
            Outcome::Success => self.breaker().success(),
            Outcome::Failure => self.breaker().failure(Instant::now()),
            Outcome::Neutral => {
                self.breaker().neutral();
                None
            }
        };
        if let Some(state) = changed {
            match state {
                BreakerState::Open => tracing::warn!(backend = %self.id, "circuit breaker opened"),
                _ => tracing::info!(backend = %self.id, state = state.as_str(), "circuit breaker changed"),
            }
            self.metrics.state.set(state.gauge_value());
            self.changed.notify_one();
        }
    }

    fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics.requests.inc();
        if let Some(h) = self.shared.get() {
            h.count(REQUESTS, 1);
        }
    }

    fn count_egress(&self, n: u64) {
        self.egress.fetch_add(n, Ordering::Relaxed);
        self.metrics.egress.inc_by(n);
        if let Some(h) = self.shared.get() {
            h.count(EGRESS, n);
        }
    }

    fn count_ingress(&self, n: u64) {
        self.ingress.fetch_add(n, Ordering::Relaxed);
        self.metrics.ingress.inc_by(n);
        if let Some(h) = self.shared.get() {
            h.count(INGRESS, n);
        }
    }
}

/// A backend seen through its breaker and usage counters.
pub struct GuardedBackend {
    inner: Arc<dyn Backend>,
    cell: Arc<Cell>,
    /// When false, an open breaker does not stop calls (a read's last resort);
    /// outcomes and traffic are still recorded.
    enforce: bool,
}

impl GuardedBackend {
    pub(crate) fn new(inner: Arc<dyn Backend>, cell: Arc<Cell>, enforce: bool) -> GuardedBackend {
        GuardedBackend { inner, cell, enforce }
    }

    fn admit(&self) -> Result<(), BackendError> {
        if self.enforce && self.cell.admit() == Admit::No {
            return Err(BackendError::Remote(format!(
                "backend `{}` is unavailable: circuit breaker open",
                self.cell.id
            )));
        }
        self.cell.count_request();
        Ok(())
    }

    fn finish<T>(&self, r: Result<T, BackendError>) -> Result<T, BackendError> {
        self.cell.record(match &r {
            Ok(_) => Outcome::Success,
            Err(e) => outcome_of(e),
        });
        r
    }
}

#[async_trait]
impl Backend for GuardedBackend {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn put(&self, key: &str, meta: &BlobMeta, body: ByteStream) -> Result<u64, BackendError> {
        if let Some(h) = self.cell.shared.get()
            && h.counters.write_exhausted(h.index)
        {
            tracing::warn!(backend = %self.cell.id, "write refused: a monthly limit is used up by the shared counters");
            return Err(BackendError::Remote(format!(
                "backend `{}`: monthly api_request_limit or ingress_byte_limit used up (shared counters)",
                self.cell.id
            )));
        }
        self.admit()?;
        let body: ByteStream = Box::pin(Counting {
            inner: body,
            cell: self.cell.clone(),
            egress: false,
        });
        let r = self.inner.put(key, meta, body).await;
        self.finish(r)
    }

    async fn get(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BackendError> {
        self.admit()?;
        let r = self.inner.get(key, offset, len).await;
        let stream = self.finish(r)?;
        Ok(Box::pin(Counting {
            inner: stream,
            cell: self.cell.clone(),
            egress: true,
        }))
    }

    async fn head(&self, key: &str) -> Result<BlobHead, BackendError> {
        self.admit()?;
        let r = self.inner.head(key).await;
        self.finish(r)
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.admit()?;
        let r = self.inner.delete(key).await;
        self.finish(r)
    }

    async fn check(&self) -> Result<(), BackendError> {
        self.admit()?;
        let r = self.inner.check().await;
        self.finish(r)
    }

    async fn list_page(&self, after: &str, limit: u32) -> Result<Vec<strata_backend::ListedBlob>, BackendError> {
        self.admit()?;
        let r = self.inner.list_page(after, limit).await;
        self.finish(r)
    }
}

/// Counts bytes as they stream: egress for reads (whose mid-stream errors
/// are backend failures), ingress for uploads.
struct Counting {
    inner: ByteStream,
    cell: Arc<Cell>,
    egress: bool,
}

impl Stream for Counting {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = this.inner.as_mut().poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(b))) if this.egress => this.cell.count_egress(b.len() as u64),
            Poll::Ready(Some(Ok(b))) => this.cell.count_ingress(b.len() as u64),
            Poll::Ready(Some(Err(e))) if this.egress => {
                tracing::warn!(backend = %this.cell.id, error = %e, "backend read failed mid-stream");
                this.cell.record(Outcome::Failure);
            }
            _ => {}
        }
        item
    }
}
