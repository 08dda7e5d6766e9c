//! Storage backends behind one trait. Keys given to a backend are opaque ids
//! chosen by the control plane, never user keys.

pub mod guarded;
mod listing;
mod local;
pub mod meta;
mod s3;
pub mod sealed;

use std::io;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use guarded::GuardedBackend;
pub use listing::{LIST_PAGE_MAX, ListedBlob};
pub use local::LocalDisk;
pub use s3::{DEFAULT_PART_SIZE, S3Backend, SDK_ONLY_HEADERS};
use strata_core::config::BackendConfig;

/// Catalog facts stored with a blob on its backend (S3 user metadata, or a
/// sidecar file on local disk), so that the catalog can be rebuilt from the
/// backends alone. Keys are lower-case `[a-z0-9-]`; values are any UTF-8.
pub type BlobMeta = std::collections::BTreeMap<String, String>;

/// What a HEAD on a blob tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobHead {
    pub size: u64,
    pub meta: BlobMeta,
}

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
    /// A remote service (S3) failed or refused the request; the message says
    /// what to check.
    #[error("{0}")]
    Remote(String),
    /// A sealed blob cannot be opened: its data key is missing or unusable.
    /// Not a backend failure; another copy may still be readable.
    #[error("encryption key: {0}")]
    Key(String),
}

/// One place object bytes can live.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    fn id(&self) -> &str;

    /// Stores the whole stream under `key`. The object becomes visible only once
    /// the stream has ended without error and the bytes are durable; a failed
    /// stream leaves nothing behind. `meta` is stored with the blob and comes
    /// back from [`Backend::head`]. Returns the number of bytes stored.
    async fn put(&self, key: &str, meta: &BlobMeta, body: ByteStream) -> Result<u64, BackendError>;

    /// Streams `len` bytes starting at `offset`.
    async fn get(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BackendError>;

    /// The stored size and metadata, or `NotFound`.
    async fn head(&self, key: &str) -> Result<BlobHead, BackendError>;

    /// Removes the object; removing a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), BackendError>;

    /// Whether the backend is usable now (for `/ready` and start-up checks).
    async fn check(&self) -> Result<(), BackendError>;

    /// Up to `limit` (at most [`LIST_PAGE_MAX`]) blobs whose keys sort
    /// strictly after `after` (`""`: from the start), in byte order. Only
    /// blobs Strata could have written (keys of the [`strata_core::ObjectId`]
    /// form) are listed: sidecar and temporary files, and foreign objects in
    /// a shared bucket, are not blobs. A page shorter than `limit` is the last.
    async fn list_page(&self, after: &str, limit: u32) -> Result<Vec<ListedBlob>, BackendError> {
        let _ = (after, limit);
        Err(BackendError::Remote(format!(
            "backend `{}` cannot list its blobs",
            self.id()
        )))
    }
}

/// The configured backends, by id.
#[derive(Clone, Default)]
pub struct Backends {
    list: Vec<Arc<dyn Backend>>,
}

impl Backends {
    /// Opens every configured backend and checks it is usable: local directories
    /// are created and probed for writes, S3 buckets are reached with the
    /// configured credentials.
    /// Errors name the backend and the config field to fix.
    pub async fn open(configs: &[BackendConfig]) -> Result<Backends, String> {
        let mut list: Vec<Arc<dyn Backend>> = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            match c {
                BackendConfig::Local { id, path, .. } => {
                    let disk = LocalDisk::open(id.clone(), path.clone())
                        .await
                        .map_err(|e| format!("backend `{id}`: cannot use directory {}: {e}", path.display()))?;
                    disk.check()
                        .await
                        .map_err(|e| format!("backend `{id}`: {} is not writable: {e}", path.display()))?;
                    list.push(Arc::new(disk));
                }
                BackendConfig::S3 { id, .. } => {
                    let b = S3Backend::from_config(c, &format!("backends[{i}]"))
                        .await
                        .map_err(|e| format!("backend `{id}`: {e}"))?;
                    b.check().await.map_err(|e| format!("backend `{id}`: {e}"))?;
                    list.push(Arc::new(b));
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

/// Builds the set from already opened backends (e.g. wrappers that add
/// accounting or a circuit breaker around [`Backends::open`]'s).
impl FromIterator<Arc<dyn Backend>> for Backends {
    fn from_iter<I: IntoIterator<Item = Arc<dyn Backend>>>(iter: I) -> Backends {
        Backends {
            list: iter.into_iter().collect(),
        }
    }
}
