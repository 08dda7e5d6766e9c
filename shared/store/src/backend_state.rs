//! Persisted backend lifecycle: the row type of the `backend_states` table
//! (see `migrations/0011_backend_state.sql`) and what a backend still holds.

use strata_core::{CpError, CpResult};

/// Where a backend is in its lifecycle. A backend without a row is `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum BackendState {
    /// Takes new writes and replicas.
    #[default]
    Active,
    /// Takes no new writes; the drain job moves its copies elsewhere.
    Draining,
    /// Nothing of the catalog is left on it; still takes no writes until undrained or removed.
    Drained,
    /// Its records were dropped; never used for writes even if still configured.
    Removed,
}

impl BackendState {
    pub const ALL: [BackendState; 4] = [
        BackendState::Active,
        BackendState::Draining,
        BackendState::Drained,
        BackendState::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendState::Active => "active",
            BackendState::Draining => "draining",
            BackendState::Drained => "drained",
            BackendState::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> CpResult<BackendState> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| CpError::Internal(format!("unknown backend state `{s}` in backend_states")))
    }

    /// Whether placement may choose the backend for new writes and replicas.
    pub fn takes_writes(self) -> bool {
        self == BackendState::Active
    }
}

/// One backend's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendStateRecord {
    pub backend_id: String,
    pub state: BackendState,
    /// When the state was entered (Unix ms).
    pub since_ms: i64,
    /// Who changed it (`cli:<user>`, `job:drain`, ...).
    pub changed_by: String,
    /// Why, as the operator or the job said.
    pub reason: String,
}

/// What the catalog still references on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendHoldings {
    /// Current objects with at least one segment on the backend.
    pub objects: u64,
    /// Segments on the backend (any copy) and their bytes.
    pub segments: u64,
    pub segment_bytes: u64,
    /// Objects every copy of which touches the backend: they would lose
    /// their last copy if the backend went away.
    pub sole_copy_objects: u64,
    /// Parts of open multipart uploads on the backend, and their bytes.
    pub parts: u64,
    pub part_bytes: u64,
    /// Cleanup-queue and dead-letter rows naming the backend, and their bytes.
    pub queued: u64,
    pub queued_bytes: u64,
}
