//! Rebalance (off by default): moves copies between active backends, from
//! the fullest to the emptiest (`spread`) or toward the first backends in
//! configuration order (`pack`). A reconciler: each cycle compares the fill
//! it observes with the one it wants and moves a bounded batch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use strata_backend::Backends;
use strata_core::config::{RebalanceConfig, RebalanceStrategy};
use strata_core::{BackendStatus, ControlPlane, CpError, ObjectRecord};
use strata_store::{BackendState, MetaStore};

use crate::blobcopy::all_copies;
use crate::mover::{Moved, move_copy};
use crate::{Clock, Job, Outcome, system_clock};

use crate::metrics::REBALANCE_MOVES as MOVES;

/// One move a cycle wants: from `from` to `to`, about `budget` bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub from: String,
    pub to: String,
    pub budget: u64,
}

/// Filled bytes of a backend (used, orphaned and reserved).
fn filled(b: &BackendStatus) -> u64 {
    b.bytes_used
        .saturating_add(b.orphan_bytes)
        .saturating_add(b.reserved_bytes)
}

/// What `spread` wants: the fullest and the emptiest backend of `active`
/// (configuration order) and the bytes that would even them out, unless
/// they differ by at most `threshold_percent` of the fullest one's fill.
/// Fill is the share of the quota when every backend has one, else bytes.
pub(crate) fn spread_plan(active: &[&BackendStatus], threshold_percent: u32) -> Option<Plan> {
    let all_quota = active.iter().all(|b| b.quota_bytes.is_some_and(|q| q > 0));
    let cap = |b: &BackendStatus| {
        if all_quota {
            b.quota_bytes.unwrap_or(1) as f64
        } else {
            1.0
        }
    };
    // Bytes of current copies only: orphaned bytes leave with the cleanup
    // queue and would make a backend just moved from look fuller than it is.
    let fill = |b: &BackendStatus| b.bytes_used as f64 / cap(b);
    let full = active.iter().max_by(|a, b| fill(a).total_cmp(&fill(b)))?;
    let empty = active.iter().min_by(|a, b| fill(a).total_cmp(&fill(b)))?;
    let (ff, fe) = (fill(full), fill(empty));
    if full.backend_id == empty.backend_id || ff - fe <= ff * f64::from(threshold_percent) / 100.0 {
        return None;
    }
    let budget = (ff - fe) / (1.0 / cap(full) + 1.0 / cap(empty));
    Some(Plan {
        from: full.backend_id.clone(),
        to: empty.backend_id.clone(),
        budget: budget as u64,
    })
}

/// What `pack` wants: copies on the last backend that holds any move to the
/// first backend (before it) with room.
pub(crate) fn pack_plan(active: &[&BackendStatus]) -> Option<Plan> {
    let room = |b: &BackendStatus| b.quota_bytes.map_or(u64::MAX, |q| q.saturating_sub(filled(b)));
    let to = active.iter().position(|b| room(b) > 0)?;
    let from = active.iter().rposition(|b| b.bytes_used > 0)?;
    (from > to).then(|| Plan {
        from: active[from].backend_id.clone(),
        to: active[to].backend_id.clone(),
        budget: room(active[to]).min(active[from].bytes_used),
    })
}

/// Moves copies by [`move_copy`] (a compare-and-set on the object's copy),
/// `max_concurrency` at a time, at most `moves_per_cycle` per cycle.
pub struct RebalanceJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    pub config: RebalanceConfig,
    pub clock: Clock,
    /// (source backend, last object id looked at) of the current pass.
    cursor: Mutex<(String, String)>,
}

impl RebalanceJob {
    pub fn new(
        store: Arc<dyn MetaStore>,
        cp: Arc<dyn ControlPlane>,
        backends: Backends,
        config: RebalanceConfig,
    ) -> Self {
        RebalanceJob {
            store,
            cp,
            backends,
            config,
            clock: system_clock(),
            cursor: Mutex::default(),
        }
    }

    /// The plan for this cycle, from the status of the active backends.
    async fn plan(&self) -> Result<Option<Plan>, String> {
        let states = (self.store.backend_states().await).map_err(|e| format!("read backend states: {e}"))?;
        let status = (self.cp.status().await).map_err(|e| format!("read backend status: {e}"))?;
        let active: Vec<&BackendStatus> = (status.backends.iter())
            .filter(|b| {
                (states.iter().find(|s| s.backend_id == b.backend_id)).is_none_or(|s| s.state == BackendState::Active)
            })
            .collect();
        Ok(match self.config.strategy {
            RebalanceStrategy::Spread => spread_plan(&active, self.config.threshold_percent),
            RebalanceStrategy::Pack => pack_plan(&active),
        })
    }

    /// Moves the copy of `listed` on `plan.from` to `plan.to`; returns the
    /// bytes moved.
    async fn move_one(&self, listed: &ObjectRecord, plan: &Plan, others: &[String]) -> Result<u64, String> {
        let rec = match self.cp.locate(&listed.bucket, &listed.key).await {
            Ok(r) if r.object_id == listed.object_id => r,
            Ok(_) | Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(0),
            Err(e) => return Err(format!("locate {}/{}: {e}", listed.bucket, listed.key)),
        };
        let copies: Vec<_> = all_copies(&rec).collect();
        if copies.iter().flat_map(|c| c.iter()).any(|s| s.backend_id == plan.to) {
            return Ok(0);
        }
        let Some(index) = copies.iter().position(|c| c.iter().all(|s| s.backend_id == plan.from)) else {
            return Ok(0);
        };
        let avoid: Vec<String> = others.iter().filter(|id| **id != plan.to).cloned().collect();
        let store = self.store.as_ref();
        match move_copy(
            store,
            self.cp.as_ref(),
            &self.backends,
            &rec,
            index,
            &avoid,
            false,
            (self.clock)(),
        )
        .await?
        {
            Moved::Swapped => {
                MOVES.inc();
                Ok(rec.meta.size)
            }
            _ => Ok(0),
        }
    }
}

#[async_trait]
impl Job for RebalanceJob {
    fn name(&self) -> &'static str {
        "rebalance"
    }

    fn period(&self) -> Duration {
        Duration::from_secs(self.config.period_secs)
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let Some(plan) = self.plan().await? else {
            return Ok(Outcome::Idle);
        };
        let after = {
            let mut c = self.cursor.lock().expect("cursor");
            if c.0 != plan.from {
                *c = (plan.from.clone(), String::new());
            }
            c.1.clone()
        };
        let listed = (self.store)
            .objects_on_backend(&plan.from, &after, self.config.moves_per_cycle)
            .await
            .map_err(|e| format!("list objects on {}: {e}", plan.from))?;
        self.cursor.lock().expect("cursor").1 = listed.last().map(|r| r.object_id.clone()).unwrap_or_default();
        // Pick objects up to the byte budget, smallest overshoot last.
        let mut budget = plan.budget;
        let picked: Vec<ObjectRecord> = (listed.iter())
            .filter(|r| {
                let take = budget > 0 && r.meta.size <= budget.max(1);
                if take {
                    budget -= r.meta.size.min(budget);
                }
                take
            })
            .cloned()
            .collect();
        let others: Vec<String> = self.backends.all().iter().map(|b| b.id().to_owned()).collect();
        let (plan, others) = (&plan, &others);
        let results: Vec<Result<u64, String>> = futures::stream::iter(picked)
            .map(|rec| async move { self.move_one(&rec, plan, others).await })
            .buffer_unordered(self.config.max_concurrency.max(1))
            .collect()
            .await;
        let (mut moved, mut bytes, mut failed, mut first_error) = (0u64, 0u64, 0u64, None);
        for r in results {
            match r {
                Ok(0) => {}
                Ok(n) => {
                    moved += 1;
                    bytes += n;
                }
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        tracing::info!(
            job = "rebalance", strategy = ?self.config.strategy, from = %plan.from, to = %plan.to,
            budget = plan.budget, moved, bytes, failed, "rebalance cycle",
        );
        match first_error {
            Some(e) if moved == 0 => Err(e),
            _ if moved > 0 || !listed.is_empty() => Ok(Outcome::Busy),
            _ => Ok(Outcome::Idle),
        }
    }
}
