//! Delta compression in the data plane (see `docs/delta.md`): a body that
//! the control plane's policy allows is spooled to local disk, judged by its
//! content, then stored as a delta against its deltaspace's reference, as a
//! new reference, or as it is, whichever the rules and the measured ratio
//! say. Reads decode only the frames a range needs, against a locally cached
//! copy of the reference, and a full read is verified against the original's
//! SHA-256 before its last bytes leave.

mod cache;
mod metrics;
mod read;

use std::path::PathBuf;
use std::sync::Arc;

pub use cache::RefCache;
pub(crate) use metrics::decision as count_decision;

/// References up to this size are the whole window of every frame a PUT encodes.
const WRITE_WHOLE_REF_MAX: u64 = 16 << 20;

/// Reference bytes on both sides of a frame's region in its window, on the
/// write path (measured on the Django tars: 4 MiB encodes ~20% faster than
/// 8 MiB with deltas no larger; see docs/delta-format.md).
const WRITE_MARGIN: u64 = 4 << 20;

/// How long the last whole-reference window stays in memory after its last use.
const WINDOW_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Codec settings and the shared reference cache.
pub struct DeltaEngine {
    pub cache: RefCache,
    pub params: strata_delta::DeltaParams,
    /// Encodes and decodes running at once (each holds about one frame and
    /// one reference window in memory).
    pub permits: Arc<tokio::sync::Semaphore>,
    /// Decodes streaming at once (twice `max_concurrency`: a decode holds
    /// less memory than an encode, but slow clients hold theirs longer).
    pub decode_permits: Arc<tokio::sync::Semaphore>,
    /// Refuse media compressed as one whole stream (gzip, zstd, jpeg, ...).
    pub deny_media: bool,
    pub min_size: u64,
    pub max_object_size: u64,
}

/// What the engine is built from (the `delta:` config section).
pub struct DeltaSettings {
    pub cache_dir: PathBuf,
    pub cache_bytes: u64,
    pub memory_cache_bytes: u64,
    pub max_concurrency: u32,
    pub level: i32,
    pub deny_media: bool,
    pub min_size: u64,
    pub max_object_size: u64,
}

impl DeltaEngine {
    pub async fn open(s: DeltaSettings) -> Result<Arc<DeltaEngine>, String> {
        let cache = RefCache::open(s.cache_dir, s.cache_bytes, s.memory_cache_bytes).await?;
        // Consecutive requests against one deltaspace share the reference
        // window for a few seconds instead of each reading it again.
        strata_delta::retain_windows(s.memory_cache_bytes, WINDOW_LINGER);
        let params = strata_delta::DeltaParams {
            level: s.level,
            // On the write path each frame is encoded against its own region
            // of the reference (plus margins), not the whole of it: indexing
            // a 60 MB reference once per 16 MiB frame costs more than the
            // encode itself. `delta-compact` re-encodes with whole references.
            whole_ref_max: WRITE_WHOLE_REF_MAX,
            margin: WRITE_MARGIN,
            ..Default::default()
        };
        Ok(Arc::new(DeltaEngine {
            cache,
            params,
            permits: Arc::new(tokio::sync::Semaphore::new(s.max_concurrency.max(1) as usize)),
            decode_permits: Arc::new(tokio::sync::Semaphore::new(2 * s.max_concurrency.max(1) as usize)),
            deny_media: s.deny_media,
            min_size: s.min_size,
            max_object_size: s.max_object_size,
        }))
    }
}
