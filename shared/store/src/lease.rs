//! The control-plane leader lease and the write fence (docs/leadership.md).
//!
//! One row holds the leader: its holder id, the gRPC URL it advertises, a
//! term that grows by one at every change of holder, and an expiry. It is
//! taken and renewed by compare-and-swap in a transaction
//! ([`crate::MetaStore::acquire_lease`], [`crate::MetaStore::renew_lease`]).
//!
//! The term fences the leader's writes: a store made with
//! [`crate::MetaStore::fenced`] checks, inside every write transaction, that
//! the lease still carries the fence's term, and fails the transaction with
//! `Unavailable` otherwise. A deposed leader's late commits are therefore
//! rejected by the database itself, whatever its clock or its elector say.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use strata_core::CpError;

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
