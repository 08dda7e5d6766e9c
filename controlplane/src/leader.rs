//! Control-plane leadership (docs/leadership.md): an elector task that takes
//! and renews the leader lease in the metadata store, and the answer every
//! gRPC call asks first: do we lead, and if not, who does?
//!
//! A leader considers itself leader only until `renewal start + lease`, on
//! its own monotonic clock: the database set the lease's expiry no earlier
//! than that, so a leader whose renewals stall stops answering as leader
//! before anyone else can take over. Its writes are fenced by the term in
//! the store besides (see `strata_store::WriteFence`).

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use strata_store::{Lease, MetaStore, WriteFence};

use crate::metrics::{IS_LEADER, LEADER_CHANGES as CHANGES, TERM};

/// Lease timing: how long a lease lasts, and how often it is renewed (and,
/// on followers, how often a takeover is tried).
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    pub lease: Duration,
    pub renew: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// Set while we lead: the instant our lease ends on our own clock.
    valid_until: Option<Instant>,
    term: i64,
    /// The last leader we saw (our own URL while we lead).
    leader_url: Option<String>,
}

/// Takes and renews the leader lease, and answers whether this process leads.
pub struct Elector {
    store: Arc<dyn MetaStore>,
    fence: WriteFence,
    holder: String,
    url: String,
    timing: LeaseTiming,
    state: Mutex<State>,
}

impl Elector {
    /// An elector for this process, published in the lease as `url`.
    /// `store` must be unfenced: the lease stays reachable after a takeover.
    pub fn new(store: Arc<dyn MetaStore>, url: &str, timing: LeaseTiming) -> Arc<Elector> {
        LazyLock::force(&CHANGES);
        IS_LEADER.set(0);
        Arc::new(Elector {
            store,
            fence: WriteFence::new(),
            holder: format!("cp-{}", uuid::Uuid::new_v4()),
            url: url.to_owned(),
            timing,
            state: Mutex::new(State::default()),
        })
    }

    /// The fence that the control plane's store and plans must use.
    pub fn fence(&self) -> WriteFence {
        self.fence.clone()
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process leads right now: it took or renewed the lease
    /// less than a lease period ago (by its own clock).
    pub fn is_leader(&self) -> bool {
        self.state().valid_until.is_some_and(|t| Instant::now() < t)
    }

    /// The term we last held or saw.
    pub fn term(&self) -> i64 {
        self.state().term
    }

    /// The leader's URL as last seen: ours while we lead; `None` when no
    /// valid lease was seen.
    pub fn leader_url(&self) -> Option<String> {
        self.state().leader_url.clone()
    }

    /// Renews or takes the lease every `renew` until `shutdown`, then hands
    /// it over (lets it expire at once) if we hold it.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.step().await;
            let wait = {
                let st = self.state();
                let until_expiry = st.valid_until.map(|t| t.saturating_duration_since(Instant::now()));
                until_expiry.map_or(self.timing.renew, |d| d.min(self.timing.renew))
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
            }
        }
        let term = self.term();
        if self.is_leader() {
            self.step_down("shutting down");
            if let Err(e) = self.store.release_lease(&self.holder, term).await {
                tracing::warn!(error = %e, term, "could not release the leader lease; it expires by itself");
            }
        }
    }

    /// One renewal (while leading) or takeover attempt (otherwise).
    pub async fn step(&self) {
        let start = Instant::now();
        let ttl_ms = self.timing.lease.as_millis() as i64;
        // Time left on our lease (none when following), read with the term in one lock.
        let (left, term) = {
            let st = self.state();
            (st.valid_until.filter(|t| start < *t).map(|t| t - start), st.term)
        };
        if let Some(left) = left {
            // Give up waiting once the lease would be over anyway.
            match tokio::time::timeout(left, self.store.renew_lease(&self.holder, term, ttl_ms)).await {
                Ok(Ok(true)) => {
                    self.state().valid_until = Some(start + self.timing.lease);
                    return;
                }
                Ok(Ok(false)) => self.step_down("the lease was taken over or expired"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, term, "cannot renew the leader lease; retrying");
                    if !self.is_leader() {
                        self.step_down("the lease expired while the database was unreachable");
                    }
                    return;
                }
                Err(_) => {
                    self.step_down("the lease expired before its renewal returned");
                    return;
                }
            }
        } else if self.state().valid_until.is_some() {
            self.step_down("the lease expired before it could be renewed");
        }
        let attempt = self.store.acquire_lease(&self.holder, &self.url, ttl_ms);
        match tokio::time::timeout(self.timing.lease, attempt).await {
            Ok(Ok(lease)) if lease.holder == self.holder => self.gain(lease, start),
            Ok(Ok(lease)) => self.follow(&lease),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot reach the leader lease; following no one for now"),
            Err(_) => tracing::warn!("taking the leader lease timed out"),
        }
    }

    fn gain(&self, lease: Lease, start: Instant) {
        let valid = Duration::from_millis(lease.remaining_ms.clamp(0, self.timing.lease.as_millis() as i64) as u64);
        self.fence.set(lease.term);
        {
            let mut st = self.state();
            st.valid_until = Some(start + valid);
            st.term = lease.term;
            st.leader_url = Some(self.url.clone());
        }
        IS_LEADER.set(1);
        TERM.set(lease.term);
        CHANGES.inc();
        tracing::info!(term = lease.term, holder = %self.holder, url = %self.url, "gained control-plane leadership");
    }

    fn follow(&self, lease: &Lease) {
        let mut st = self.state();
        if st.term != lease.term || st.leader_url.as_deref() != Some(&lease.url) {
            tracing::info!(term = lease.term, leader = %lease.url, "following the control-plane leader");
        }
        st.term = lease.term;
        st.leader_url = (lease.remaining_ms > 0).then(|| lease.url.clone());
        TERM.set(lease.term);
    }

    fn step_down(&self, why: &str) {
        let mut st = self.state();
        if st.valid_until.take().is_some() {
            st.leader_url = None;
            IS_LEADER.set(0);
            CHANGES.inc();
            tracing::warn!(term = st.term, reason = why, "lost control-plane leadership");
        }
    }
}

/// The elector of a control plane on `store` under `config`: under
/// PostgreSQL, where several control planes may share the database; `None`
/// under SQLite, where the one process always leads (term 1).
pub fn elector_for(config: &strata_core::config::Config, store: &Arc<dyn MetaStore>) -> Option<Arc<Elector>> {
    if !matches!(
        config.database_target(),
        strata_core::config::DatabaseTarget::Postgres { .. }
    ) {
        return None;
    }
    let cp = &config.control_plane;
    let url = (cp.advertise_url.clone())
        .or_else(|| cp.listen.map(|l| format!("http://{l}")))
        .unwrap_or_else(|| "in-process".to_owned());
    let timing = LeaseTiming {
        lease: Duration::from_secs(cp.lease_secs),
        renew: Duration::from_secs(cp.renew_secs),
    };
    tracing::info!(url = %url, lease_secs = cp.lease_secs, renew_secs = cp.renew_secs, "control-plane leader election on");
    Some(Elector::new(store.clone(), &url, timing))
}

impl Elector {
    /// `service` leading under this elector: its plans carry our term and its
    /// store's write transactions are fenced by it.
    pub fn lead(&self, service: crate::ControlPlaneService) -> crate::ControlPlaneService {
        match self.store.fenced(self.fence()) {
            Some(fenced) => service.with_fence(fenced, self.fence()),
            None => {
                tracing::warn!(
                    "this metadata store cannot fence writes; a deposed leader's late commits are not rejected"
                );
                service
            }
        }
    }
}

impl strata_core::LeaderGate for Elector {
    fn check_leader(&self) -> Result<(), Option<String>> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(self.leader_url())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::SqliteStore;

    fn timing(ms: u64) -> LeaseTiming {
        LeaseTiming {
            lease: Duration::from_millis(ms),
            renew: Duration::from_millis(ms / 5),
        }
    }

    #[tokio::test]
    async fn one_leads_the_other_follows_and_takes_over_after_expiry() {
        let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        let a = Elector::new(store.clone(), "http://a", timing(400));
        let b = Elector::new(store.clone(), "http://b", timing(400));
        a.step().await;
        b.step().await;
        assert!(a.is_leader() && !b.is_leader());
        assert_eq!((a.term(), b.term()), (1, 1));
        assert_eq!(b.leader_url().as_deref(), Some("http://a"));
        assert_eq!(a.fence().term(), 1);
        // A renews; B still follows.
        a.step().await;
        b.step().await;
        assert!(a.is_leader() && !b.is_leader());
        // A stalls (no renewals): it stops leading by its own clock at once
        // when the lease runs out, and B takes over with the next term.
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(!a.is_leader());
        b.step().await;
        assert!(b.is_leader());
        assert_eq!(b.term(), 2);
        // A's fenced writes are refused; its next step follows B.
        let fenced = store.fenced(a.fence()).unwrap();
        assert!(matches!(
            fenced.delete_bucket("x").await,
            Err(strata_core::CpError::Unavailable(_))
        ));
        a.step().await;
        assert!(!a.is_leader());
        assert_eq!(a.leader_url().as_deref(), Some("http://b"));
        use strata_core::LeaderGate as _;
        assert_eq!(a.check_leader(), Err(Some("http://b".to_owned())));
        assert_eq!(b.check_leader(), Ok(()));
    }
}
