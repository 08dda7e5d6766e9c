//! [`GuardedBackend`]: a [`Backend`] decorator that counts requests, ingress
//! and egress bytes, and drives (and obeys) the backend's circuit breaker.
//! The data plane's guard hands these out, and the jobs in its process use
//! them too; the breaker (`breaker.rs`) and the per-backend state it keeps
//! (`cell.rs`) come with it.

mod breaker;
mod cell;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use breaker::{Admit, Breaker};
pub use cell::{Cell, CellMetrics, Outcome, TrafficHook, TrafficKind, outcome_of};

use crate::{Backend, BackendError, BlobHead, BlobMeta, ByteStream};

/// A backend seen through its breaker and usage counters.
pub struct GuardedBackend {
    inner: Arc<dyn Backend>,
    cell: Arc<Cell>,
    /// When false, an open breaker does not stop calls (a read's last resort);
    /// outcomes and traffic are still recorded.
    enforce: bool,
}

impl GuardedBackend {
    /// `inner` seen through `cell`; with `enforce` false, an open breaker
    /// does not stop calls (a read's last resort).
    pub fn new(inner: Arc<dyn Backend>, cell: Arc<Cell>, enforce: bool) -> GuardedBackend {
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
            && h.write_exhausted()
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

    async fn list_page(&self, after: &str, limit: u32) -> Result<Vec<crate::ListedBlob>, BackendError> {
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
