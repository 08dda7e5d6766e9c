//! The control-plane leader lease and the write fence (docs/leadership.md).
//!
//! One row holds the leader: its holder id, the gRPC URL it advertises, a
//! term that grows by one at every change of holder, and an expiry. It is
//! taken and renewed by compare-and-swap in a transaction
//! ([`Leadership::acquire_lease`], [`Leadership::renew_lease`]).
//!
//! The term fences the leader's writes: a store made with
//! [`Leadership::fenced`] checks, inside every write transaction, that
//! the lease still carries the fence's term, and fails the transaction with
//! `Unavailable` otherwise. A deposed leader's late commits are therefore
//! rejected by the database itself, whatever its clock or its elector say.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use strata_core::{CpError, CpResult};

use crate::sql::{Conn, Dialect, sql};
use crate::{JobLock, MetaStore};

/// The lease as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Unique id of the holding control-plane process.
    pub holder: String,
    /// The gRPC URL the holder advertises to data planes.
    pub url: String,
    /// Grows by one at every change of holder; never reused.
    pub term: i64,
    /// Milliseconds until the lease expires, on the database's clock
    /// (negative once expired).
    pub remaining_ms: i64,
}

impl Lease {
    /// Whether `holder` holds this lease and it has not expired.
    pub fn held_by(&self, holder: &str) -> bool {
        self.holder == holder && self.remaining_ms > 0
    }
}

/// The term a fenced store's write transactions must find in the lease.
/// Shared between the elector, which sets it on gaining leadership, and the
/// fenced store. `0` (the initial value) matches no lease: every fenced
/// write fails until a term is set.
#[derive(Debug, Clone, Default)]
pub struct WriteFence(Arc<AtomicI64>);

impl WriteFence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the term writes are stamped with.
    pub fn set(&self, term: i64) {
        self.0.store(term, Ordering::SeqCst);
    }

    pub fn term(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The error of a write whose fence term is no longer the lease's.
pub(crate) fn deposed(term: i64) -> CpError {
    tracing::warn!(
        term,
        "write rejected by the leadership fence: a newer term holds the lease"
    );
    CpError::Unavailable(format!(
        "this control plane is not the leader (term {term} is no longer current); retry on the leader"
    ))
}

/// Control-plane leadership and the cluster-wide locks of jobs: the part of
/// the store that differs per database (`sqlite.rs`, `postgres/lease.rs`).
#[async_trait]
pub trait Leadership: Send + Sync + 'static {
    /// Control-plane leadership (docs/leadership.md). In one transaction:
    /// takes the lease for `ttl_ms` when there is none or it has expired
    /// (term 1 for the first holder, else the previous term + 1), extends it
    /// when `holder` already holds it (same term), and otherwise changes
    /// nothing. Returns the lease afterwards: it is ours when
    /// `lease.holder == holder`.
    async fn acquire_lease(&self, holder: &str, url: &str, ttl_ms: i64) -> CpResult<Lease>;
    /// Extends the lease by `ttl_ms` from now if `holder` still holds it at
    /// `term` and it has not expired; returns whether it did.
    async fn renew_lease(&self, holder: &str, term: i64, ttl_ms: i64) -> CpResult<bool>;
    /// Lets the lease expire now if `holder` holds it at `term` (a clean
    /// shutdown hands over without waiting for the expiry).
    async fn release_lease(&self, holder: &str, term: i64) -> CpResult<()>;
    /// The lease, if anyone ever took it.
    async fn get_lease(&self) -> CpResult<Option<Lease>>;
    /// The same store, with every write transaction fenced by `fence`: it
    /// fails with `Unavailable` unless the lease still carries
    /// `fence.term()`. `None` when the store cannot fence.
    fn fenced(&self, fence: WriteFence) -> Option<Arc<dyn MetaStore>>;
    /// Takes the cluster-wide lock of job `name` for one cycle: `None` when
    /// another worker holds it. PostgreSQL: a session advisory lock on a
    /// dedicated connection; SQLite (one process): always granted.
    async fn try_job_lock(&self, name: &str) -> CpResult<Option<Box<dyn JobLock>>>;
}

/// How long a fenced transaction may sit idle (its process stalled between
/// statements) before PostgreSQL ends its session: the bound on how long it
/// can delay a takeover by holding the lease row.
const FENCED_IDLE_MS: u32 = 2_000;

/// Inside a write transaction: fails with `Unavailable` unless the lease
/// still carries `term`. SQLite's transaction holds the database write lock,
/// so no takeover can interleave. PostgreSQL's holds the lease row in FOR KEY
/// SHARE, so no takeover commits before this transaction ends; a leader
/// paused in the middle of the transaction loses its session after
/// `FENCED_IDLE_MS`, which releases the row for the takeover.
pub(crate) async fn check_fence(c: &mut Conn, term: i64) -> CpResult<()> {
    if c.dialect() == Dialect::Postgres {
        sql(format!(
            "SET LOCAL idle_in_transaction_session_timeout = {FENCED_IDLE_MS}"
        ))
        .execute(c)
        .await?;
    }
    let text = format!(
        "SELECT 1 FROM cp_lease WHERE id = 1 AND term = ?{}",
        c.dialect().lock(" FOR KEY SHARE")
    );
    let held: Option<(i32,)> = sql(text).bind(term).fetch_optional(c).await?;
    match held {
        Some(_) => Ok(()),
        None => Err(deposed(term)),
    }
}
