//! [`LeaderGate`]: the question every control-plane call asks first, "do we
//! lead?" (docs/leadership.md). The elector answers it
//! (`strata_controlplane::leader::Elector`); the gRPC server asks it before
//! any service or store is reached.

/// Whether this control plane leads. Asked before every control-plane call;
/// a follower's calls are refused without reaching the service or the store.
pub trait LeaderGate: Send + Sync + 'static {
    /// `Ok` while leading; otherwise the leader's URL, if known.
    fn check_leader(&self) -> Result<(), Option<String>>;
}
