//! Spool files for write failover. A request body whose declared length fits
//! `resilience.failover.max_spool_bytes` is first streamed through the
//! verifying pipeline into a temp file here; the backends are then fed from
//! the file, so a failed backend can be replaced by another one without the
//! body ever being held in memory. Every spool file is removed when its write
//! ends (success, error or cancellation); files left by a crash are removed
//! at start-up.
//!
//! Small bodies (at most `MEMORY_MAX`) are held in memory instead, within a
//! budget of `MEMORY_BUDGET` bytes for all requests together; a body that
//! does not get room in the budget goes to a file as usual. Creating and
//! deleting a file per small PUT cost more CPU than the rest of the request.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use strata_backend::ByteStream;
use strata_core::config::FailoverConfig;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::metrics::FailoverMetrics;

/// Chunk size for writing and reading spool files.
const CHUNK: usize = 256 * 1024;
/// Suffix of spool files; only these are removed at start-up.
const SUFFIX: &str = ".spool";
/// Largest body held in memory rather than in a file.
const MEMORY_MAX: u64 = 1024 * 1024;
/// Bytes of all in-memory spools together.
const MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// Write failover settings of one data plane, with its spool directory ready.
pub struct Failover {
    dir: PathBuf,
    /// Largest declared body length that is spooled.
    pub max_spool_bytes: u64,
    /// Backends tried per write, the first included (at least 1).
    pub max_attempts: u32,
    pub(crate) metrics: FailoverMetrics,
    memory: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Failover {
    /// Prepares failover from its config: `None` when it is disabled.
    /// Creates the spool directory, checks that it is writable and removes
    /// spool files a crashed process left behind.
    pub async fn open(cfg: &FailoverConfig, data_dir: &Path) -> Result<Option<Failover>, String> {
        if !cfg.enabled {
            tracing::info!("write failover is disabled");
            return Ok(None);
        }
        let dir = cfg.spool_dir.clone().unwrap_or_else(|| data_dir.join("spool"));
        let unwritable =
            |e: io::Error| format!("resilience.failover.spool_dir: {} is not writable: {e}", dir.display());
        tokio::fs::create_dir_all(&dir).await.map_err(unwritable)?;
        let probe = dir.join(format!(".probe-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&probe, b"").await.map_err(unwritable)?;
        let _ = tokio::fs::remove_file(&probe).await;
        let stale = remove_stale(&dir).await.map_err(unwritable)?;
        if stale > 0 {
            tracing::info!(dir = %dir.display(), files = stale, "removed spool files left by an earlier run");
        }
        tracing::info!(
            dir = %dir.display(),
            max_spool_bytes = cfg.max_spool_bytes,
            max_attempts = cfg.max_attempts,
            "write failover enabled"
        );
        Ok(Some(Failover {
            dir,
            max_spool_bytes: cfg.max_spool_bytes,
            max_attempts: cfg.max_attempts.max(1),
            metrics: FailoverMetrics::new(),
            memory: std::sync::Arc::new(tokio::sync::Semaphore::new(MEMORY_BUDGET)),
        }))
    }

    /// Streams `body` into a new spool file. Fails with the body's own error
    /// (e.g. a digest mismatch from the verifying pipeline) or a local I/O
    /// error; the file is gone again in either case.
    pub async fn spool<S>(&self, body: S, declared: u64) -> Result<SpoolFile, SpoolError>
    where
        S: Stream<Item = io::Result<Bytes>> + Unpin,
    {
        if declared <= MEMORY_MAX
            && let Ok(permit) = self.memory.clone().try_acquire_many_owned(declared.max(1) as u32)
        {
            return self.spool_in_memory(body, declared, permit).await;
        }
        let path = self.dir.join(format!("{}{SUFFIX}", uuid::Uuid::new_v4()));
        let mut guard = SpoolFile {
            held: Held::Disk(path),
            len: 0,
            gauge: self.metrics.spool_bytes.clone(),
        };
        let Held::Disk(path) = &guard.held else {
            unreachable!("just built")
        };
        let path = path.clone();
        let file = tokio::fs::File::create(&path).await.map_err(SpoolError::Local)?;
        let mut out = BufWriter::with_capacity(CHUNK, file);
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(SpoolError::Body)?;
            if guard.len + chunk.len() as u64 > self.max_spool_bytes {
                return Err(SpoolError::TooLarge);
            }
            guard.len += chunk.len() as u64;
            guard.gauge.add(chunk.len() as i64);
            out.write_all(&chunk).await.map_err(SpoolError::Local)?;
        }
        out.flush().await.map_err(SpoolError::Local)?;
        Ok(guard)
    }

    /// Holds a small body in memory, within the permit for its declared length.
    async fn spool_in_memory<S>(
        &self,
        mut body: S,
        declared: u64,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<SpoolFile, SpoolError>
    where
        S: Stream<Item = io::Result<Bytes>> + Unpin,
    {
        let mut guard = SpoolFile {
            held: Held::Memory {
                chunks: Vec::new(),
                _permit: permit,
            },
            len: 0,
            gauge: self.metrics.spool_bytes.clone(),
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(SpoolError::Body)?;
            if guard.len + chunk.len() as u64 > declared.min(self.max_spool_bytes) {
                return Err(SpoolError::TooLarge);
            }
            guard.len += chunk.len() as u64;
            guard.gauge.add(chunk.len() as i64);
            if let Held::Memory { chunks, .. } = &mut guard.held {
                chunks.push(chunk);
            }
        }
        Ok(guard)
    }
}

/// Where a spooled body is.
enum Held {
    Disk(PathBuf),
    Memory {
        chunks: Vec<Bytes>,
        _permit: tokio::sync::OwnedSemaphorePermit,
    },
}

/// Why spooling a body failed.
#[derive(Debug)]
pub enum SpoolError {
    /// The body stream failed: the client's fault or a failed verification.
    Body(io::Error),
    /// The body is longer than `max_spool_bytes` although it declared less.
    TooLarge,
    /// Writing the spool file failed.
    Local(io::Error),
}

/// A spooled body, on local disk or (when small) in memory. Dropping it
/// removes the file or frees the memory.
pub struct SpoolFile {
    held: Held,
    len: u64,
    gauge: prometheus::IntGauge,
}

impl SpoolFile {
    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A fresh stream over the whole file, read in bounded chunks.
    pub async fn stream(&self) -> io::Result<ByteStream> {
        match &self.held {
            Held::Disk(path) => {
                let file = tokio::fs::File::open(path).await?;
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(file, CHUNK)))
            }
            Held::Memory { chunks, .. } => Ok(Box::pin(futures::stream::iter(
                chunks.clone().into_iter().map(Ok::<Bytes, io::Error>),
            ))),
        }
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        self.gauge
            .sub(i64::try_from(self.len.min(i64::MAX as u64)).unwrap_or(i64::MAX));
        if let Held::Disk(path) = &self.held
            && let Err(e) = std::fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a spool file");
        }
    }
}

/// Removes every spool file in `dir`; returns how many there were.
async fn remove_stale(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        if e.file_name().to_string_lossy().ends_with(SUFFIX) {
            tokio::fs::remove_file(e.path()).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn cfg(dir: &Path, max: u64) -> FailoverConfig {
        FailoverConfig {
            enabled: true,
            spool_dir: Some(dir.to_path_buf()),
            max_spool_bytes: max,
            max_attempts: 3,
        }
    }

    fn chunks(parts: Vec<io::Result<Bytes>>) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
        futures::stream::iter(parts)
    }

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
    }

    #[tokio::test]
    async fn spools_replays_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("strata-spool-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old.spool"), b"left by a crash").unwrap();
        let mut f = Failover::open(&cfg(&dir, 1 << 20), Path::new("/nonexistent"))
            .await
            .unwrap()
            .unwrap();
        // Exact gauge values: a gauge no other test touches.
        f.metrics = FailoverMetrics::unregistered();
        assert_eq!(files(&dir), 0, "stale spool file removed");
        let big = Bytes::from(vec![7u8; 600 * 1024]);
        let s = f
            .spool(chunks(vec![Ok(Bytes::from_static(b"abc")), Ok(big.clone())]), u64::MAX)
            .await
            .unwrap();
        assert_eq!(s.len(), 3 + big.len() as u64);
        assert_eq!(f.metrics.spool_bytes.get(), s.len() as i64);
        for _ in 0..2 {
            let got: Vec<Bytes> = s.stream().await.unwrap().try_collect().await.unwrap();
            assert!(got.iter().all(|c| c.len() <= CHUNK));
            assert_eq!(got.concat().len() as u64, s.len());
        }
        drop(s);
        assert_eq!(files(&dir), 0);
        assert_eq!(f.metrics.spool_bytes.get(), 0);

        let err = f
            .spool(
                chunks(vec![Ok(Bytes::from_static(b"x")), Err(io::Error::other("client gone"))]),
                u64::MAX,
            )
            .await;
        assert!(matches!(err, Err(SpoolError::Body(_))));
        let err = f
            .spool(chunks(vec![Ok(Bytes::from(vec![0u8; (1 << 20) + 1]))]), u64::MAX)
            .await;
        assert!(matches!(err, Err(SpoolError::TooLarge)));
        assert_eq!(files(&dir), 0);

        // A small declared body stays in memory: no file, replayable, gauge counted.
        let s = f.spool(chunks(vec![Ok(big.clone())]), big.len() as u64).await.unwrap();
        assert_eq!(files(&dir), 0);
        assert_eq!(f.metrics.spool_bytes.get(), big.len() as i64);
        for _ in 0..2 {
            let got: Vec<Bytes> = s.stream().await.unwrap().try_collect().await.unwrap();
            assert_eq!(got.concat(), big.to_vec());
        }
        drop(s);
        assert_eq!(f.metrics.spool_bytes.get(), 0);
        assert_eq!(f.memory.available_permits(), MEMORY_BUDGET, "the budget is given back");
        // More bytes than declared is refused in memory too.
        let err = f.spool(chunks(vec![Ok(Bytes::from_static(b"four"))]), 3).await;
        assert!(matches!(err, Err(SpoolError::TooLarge)));
        assert_eq!(f.metrics.spool_bytes.get(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn disabled_and_unwritable() {
        let mut c = cfg(Path::new("/proc/strata-no-such-dir"), 1);
        let err = Failover::open(&c, Path::new("/tmp")).await.err().unwrap();
        assert!(err.starts_with("resilience.failover.spool_dir: /proc/strata-no-such-dir is not writable"));
        c.enabled = false;
        assert!(Failover::open(&c, Path::new("/tmp")).await.unwrap().is_none());
    }
}
