//! Per-blob integrity and encryption facts and the progress of resumable
//! admin jobs: the row types of the `blobs` and `jobs_progress` tables.

use strata_core::{CpError, CpResult};

/// The integrity state of one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlobState {
    /// Not known to be damaged.
    #[default]
    Ok,
    /// An integrity check found the bytes differ from the recorded SHA-256.
    Corrupt,
    /// Set aside: readers must not serve it.
    Quarantined,
}

impl BlobState {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobState::Ok => "ok",
            BlobState::Corrupt => "corrupt",
            BlobState::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<BlobState> {
        match s {
            "ok" => Some(BlobState::Ok),
            "corrupt" => Some(BlobState::Corrupt),
            "quarantined" => Some(BlobState::Quarantined),
            _ => None,
        }
    }
}

/// What the catalog knows of one blob (one segment's or part's bytes on one
/// backend) besides its length: its plaintext digest and how it is encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlobRecord {
    pub backend_id: String,
    pub backend_key: String,
    /// Hex SHA-256 of the blob's plaintext.
    pub sha256: Option<String>,
    /// Id of the master key wrapping the data key, or `sse-c:<md5>` for a
    /// customer-provided key.
    pub key_id: Option<String>,
    /// The data key, wrapped by `key_id`.
    pub wrapped_dek: Option<Vec<u8>>,
    /// The id bound into the AEAD associated data.
    pub context: Option<String>,
    pub state: BlobState,
    /// When the blob was last checked (0: never).
    pub checked_ms: i64,
    /// How the bytes encode the segment: `zstd` (a deltaspace reference) or
    /// `delta` (against `ref_id`); `None`: plain.
    pub codec: Option<String>,
    /// Bytes of the encoded form (before any sealing).
    pub encoded_len: Option<u64>,
    /// For `delta`: the reference the blob decodes against. A reference is
    /// freed only once no segment's blob names it.
    pub ref_id: Option<String>,
}

/// Progress of a resumable admin job, saved after each batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobProgress {
    pub name: String,
    /// `running`, `paused`, `cancelled` or `done`.
    pub state: String,
    /// Where to resume (job-defined).
    pub cursor: String,
    pub done: u64,
    pub total: u64,
    pub errors: u64,
    pub detail: String,
    pub updated_ms: i64,
}

/// A `blobs` row as both stores select it (see [`BLOB_COLUMNS`]).
pub(crate) type BlobRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The columns of a [`BlobRow`], in order.
pub(crate) const BLOB_COLUMNS: &str =
    "backend_id, backend_key, sha256, key_id, wrapped_dek, context, state, checked_ms, codec, encoded_len, ref_id";

pub(crate) fn blob_from_row(row: BlobRow) -> CpResult<BlobRecord> {
    let (backend_id, backend_key, sha256, key_id, wrapped_dek, context, state, checked_ms, codec, encoded_len, ref_id) =
        row;
    let state = BlobState::parse(&state).ok_or_else(|| CpError::Internal(format!("stored blob state {state:?}")))?;
    Ok(BlobRecord {
        backend_id,
        backend_key,
        sha256,
        key_id,
        wrapped_dek,
        context,
        state,
        checked_ms,
        codec,
        encoded_len: encoded_len.and_then(|n| u64::try_from(n).ok()),
        ref_id,
    })
}

/// A `jobs_progress` row as both stores select it (see [`JOB_COLUMNS`]).
pub(crate) type JobRow = (String, String, String, i64, i64, i64, String, i64);

pub(crate) const JOB_COLUMNS: &str = "name, state, cursor, done, total, errors, detail, updated_ms";

pub(crate) fn job_from_row(row: JobRow) -> JobProgress {
    let (name, state, cursor, done, total, errors, detail, updated_ms) = row;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    JobProgress {
        name,
        state,
        cursor,
        done: u(done),
        total: u(total),
        errors: u(errors),
        detail,
        updated_ms,
    }
}

/// A counter as a database integer.
pub(crate) fn counter(v: u64) -> CpResult<i64> {
    i64::try_from(v).map_err(|_| CpError::InvalidArgument(format!("counter {v} out of range")))
}

/// A segment row as both stores select it: backend_id, backend_key, length.
pub(crate) type SegmentRow = (String, String, i64);

/// Whether the rows `have` are exactly the segments `want`, comparing the
/// blob and its length.
pub(crate) fn same_segments(have: &[SegmentRow], want: &[strata_core::Segment]) -> bool {
    have.len() == want.len()
        && have.iter().zip(want).all(|((id, key, len), w)| {
            *id == w.backend_id && *key == w.backend_key && u64::try_from(*len).is_ok_and(|l| l == w.length)
        })
}
