//! Storage backends behind one trait. Keys given to a backend are opaque ids
//! chosen by the control plane, never user keys.

mod local;

use std::io;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use local::LocalDisk;
use strata_core::config::BackendConfig;

/// A stream of body bytes. An `Err` item aborts the transfer.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("object not found on backend")]
    NotFound,
    /// The body stream failed; the error is the one the stream yielded.
    #[error("body: {0}")]
    Body(io::Error),
    #[error("invalid backend key")]
    InvalidKey,
    #[error("backend i/o: {0}")]
    Io(io::Error),
}

/// One place object bytes can live.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    fn id(&self) -> &str;

    /// Stores the whole stream under `key`. The object becomes visible only once
    /// the stream has ended without error and the bytes are durable; a failed
    /// stream leaves nothing behind. Returns the number of bytes stored.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, BackendError>;

    /// Streams `len` bytes starting at `offset`.
    async fn get(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BackendError>;

    /// The stored size, or `NotFound`.
    async fn head(&self, key: &str) -> Result<u64, BackendError>;

    /// Removes the object; removing a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), BackendError>;

    /// Whether the backend is usable now (for `/ready` and start-up checks).
    async fn check(&self) -> Result<(), BackendError>;
}

/// The configured backends, by id.
#[derive(Clone, Default)]
pub struct Backends {
    list: Vec<Arc<dyn Backend>>,
}

impl Backends {
    /// Opens every configured backend, creating local directories as needed.
    pub async fn open(configs: &[BackendConfig]) -> Result<Backends, String> {
        let mut list: Vec<Arc<dyn Backend>> = Vec::new();
        for c in configs {
            match c {
                BackendConfig::Local { id, path } => {
                    let disk = LocalDisk::open(id.clone(), path.clone())
                        .await
                        .map_err(|e| format!("backend `{id}`: cannot use directory {}: {e}", path.display()))?;
                    list.push(Arc::new(disk));
                }
            }
        }
        Ok(Backends { list })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Backend>> {
        self.list.iter().find(|b| b.id() == id)
    }

    pub fn all(&self) -> &[Arc<dyn Backend>] {
        &self.list
    }
}
