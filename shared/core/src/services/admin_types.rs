//! The records of the [`Admin`](super::Admin) service: a backend's
//! lifecycle state and holdings, the jobs' progress and schedule, and what a
//! removal or purge of a backend does. The store persists them
//! (`strata_store` re-exports them); the CLIs print them.

use crate::{CpError, CpResult};

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

/// What a worker records about a job after each cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSchedule {
    pub name: String,
    /// `idle`, `running`, `failing`, `cancelled` or `done`.
    pub state: String,
    /// The worker that ran (or runs) the latest cycle.
    pub holder: String,
    /// The next cycle is due at this time (Unix ms); a worker that takes
    /// the lock earlier leaves the cycle alone.
    pub next_run_ms: i64,
    /// When the latest cycle started.
    pub last_run_ms: i64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u64,
    pub runs: u64,
    pub errors: u64,
    /// An operator's request: `cancelled` stops the job (a running cycle is
    /// interrupted) until it is started again; empty otherwise. Only
    /// `MetaStore::set_job_control` (`strata_store`) writes it.
    pub control: String,
    pub updated_ms: i64,
}

/// The operator's `control` value that stops a job.
pub const CONTROL_CANCELLED: &str = "cancelled";

/// Jobs an operator may start by hand (`strata jobs start`), besides
/// restarting a cancelled background job.
pub const STARTABLE_JOBS: [&str; 2] = ["encrypt-existing", "decrypt-existing"];

/// The `jobs_progress` row of the drain of `backend`.
pub fn drain_progress_name(backend: &str) -> String {
    format!("drain:{backend}")
}

/// The answer to an operation on a backend that neither the config nor the
/// store knows: names the known ones.
pub fn unknown_backend(id: &str, known: &[String]) -> CpError {
    CpError::InvalidArgument(format!("no backend `{id}`; backends: {}", known.join(", ")))
}

/// One backend as `strata backends list` and `status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendReport {
    pub backend_id: String,
    /// The persisted state; `None`: never changed, so active.
    pub state: Option<BackendStateRecord>,
    pub holdings: BackendHoldings,
    /// The progress row of its latest drain, if it was ever drained.
    pub drain: Option<JobProgress>,
}

/// Every job: the background jobs' shared schedule, and the progress rows of
/// the resumable ones (and of drains).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobsReport {
    pub schedules: Vec<JobSchedule>,
    pub progress: Vec<JobProgress>,
}

/// What a purge of one backend would delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgePreview {
    /// Objects whose every copy is on the backend: they are deleted.
    pub objects: u64,
    /// Blobs deleted from the backend (segments and queued blobs).
    pub blobs: u64,
    pub bytes: u64,
}

impl PurgePreview {
    /// The preview of a backend holding `h`.
    pub fn of(h: &BackendHoldings) -> PurgePreview {
        PurgePreview {
            objects: h.sole_copy_objects,
            blobs: h.segments + h.queued,
            bytes: h.segment_bytes + h.queued_bytes,
        }
    }
}

/// A purge preview with the token that confirms it (valid for ten minutes,
/// bound to the backend and the counts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgePlan {
    pub preview: PurgePreview,
    /// Objects with a copy on the backend (the others keep theirs elsewhere).
    pub objects_holding: u64,
    pub token: String,
}

/// What a removal or purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removal {
    /// Copies dropped from objects that keep another copy.
    pub copies_dropped: u64,
    /// Objects deleted because their every copy was on the backend.
    pub objects_deleted: u64,
    /// Blobs deleted from the backend (purge only).
    pub blobs_deleted: u64,
    /// Cleanup-queue rows of the backend forgotten (their bytes abandoned on remove).
    pub rows_forgotten: u64,
}
