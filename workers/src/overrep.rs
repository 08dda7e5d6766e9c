//! Over-replication cleanup: removes copies above `replication.factor`
//! (after the factor was lowered, or after a drain or repair left one too
//! many), preferring copies on draining, then unhealthy, then fullest
//! backends. Never the last copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use strata_core::{BackendStatus, ControlPlane, ObjectRecord, Segment};
use strata_store::{BackendState, MetaStore};

use crate::blobcopy::all_copies;
use crate::{Job, Outcome};

use crate::metrics::OVERREP_REMOVED as REMOVED;

/// How much a backend should lose its copies first: (lifecycle state,
/// unhealthy, fill), larger first.
type Rank = (u8, u8, u64);

/// Drops surplus copies, `batch` objects per cycle. Each drop is a
/// compare-and-set on the copy's segments (`drop_copy`): when the object was
/// replaced or its copies changed meanwhile nothing is removed, and the
/// store never removes the last copy. The dropped blobs go through the
/// cleanup queue, so a read that already located them still finds them
/// until the cleanup job deletes them.
pub struct OverReplicationJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub factor: u32,
    pub period: Duration,
    pub batch: u32,
    cursor: Mutex<String>,
}

impl OverReplicationJob {
    pub fn new(store: Arc<dyn MetaStore>, cp: Arc<dyn ControlPlane>, factor: u32, period: Duration) -> Self {
        OverReplicationJob {
            store,
            cp,
            factor: factor.max(1),
            period,
            batch: 64,
            cursor: Mutex::new(String::new()),
        }
    }

    /// The rank of every backend: draining/drained/removed first, then
    /// breakers reported open, then the fullest (fill ratio against the
    /// quota, else bytes used).
    async fn ranks(&self) -> Result<HashMap<String, Rank>, String> {
        let states = (self.store.backend_states().await).map_err(|e| format!("read backend states: {e}"))?;
        let status = (self.cp.status().await).map_err(|e| format!("read backend status: {e}"))?;
        let mut ranks: HashMap<String, Rank> = HashMap::new();
        for b in &status.backends {
            ranks.insert(b.backend_id.clone(), (0, unhealthy(b), fill(b)));
        }
        for s in states {
            let r = ranks.entry(s.backend_id).or_insert((0, 0, 0));
            r.0 = match s.state {
                BackendState::Active => 0,
                BackendState::Drained => 1,
                BackendState::Draining => 2,
                BackendState::Removed => 3,
            };
        }
        Ok(ranks)
    }

    /// Drops copies of `rec` until it has `factor`; returns how many.
    async fn trim(&self, listed: &ObjectRecord, ranks: &HashMap<String, Rank>) -> Result<u64, String> {
        let mut removed = 0;
        let mut rec = listed.clone();
        while rec.copies.len() + 1 > self.factor as usize {
            let copies: Vec<&[Segment]> = all_copies(&rec).collect();
            let worst = (0..copies.len())
                .max_by_key(|&i| {
                    let rank = (copies[i].iter())
                        .map(|s| ranks.get(&s.backend_id).copied().unwrap_or((3, 1, u64::MAX)))
                        .max()
                        .unwrap_or_default();
                    // Ties: the later copy (the primary is kept when all is equal).
                    (rank, i)
                })
                .unwrap_or(0);
            let copy_no = u32::try_from(worst).map_err(|_| "copy index out of range".to_owned())?;
            let old = copies[worst].to_vec();
            let dropped = (self.store)
                .drop_copy(&rec.bucket, &rec.key, &rec.object_id, copy_no, &old)
                .await
                .map_err(|e| format!("drop copy {worst} of {}: {e}", rec.object_id))?;
            if dropped.is_none() {
                break; // Replaced or changed meanwhile: the next pass looks again.
            }
            removed += 1;
            REMOVED.inc();
            let on: Vec<&str> = old.iter().map(|s| s.backend_id.as_str()).collect();
            tracing::info!(job = "overreplication", bucket = %rec.bucket, key = %rec.key, object = %rec.object_id,
                copy = worst, backends = ?on, factor = self.factor, "removed a surplus copy");
            rec = match self.store.get_object(&rec.bucket, &rec.key).await {
                Ok(r) if r.object_id == listed.object_id => r,
                _ => break,
            };
        }
        Ok(removed)
    }
}

fn unhealthy(b: &BackendStatus) -> u8 {
    u8::from(b.breaker == "open" || b.breaker == "half_open")
}

/// Fill in parts per million of the quota, or bytes without one (a
/// backend without a quota counts as emptier than any with one that is
/// more than 0 % full only by bytes).
fn fill(b: &BackendStatus) -> u64 {
    let filled = b.bytes_used.saturating_add(b.orphan_bytes);
    match b.quota_bytes {
        Some(q) if q > 0 => filled.saturating_mul(1_000_000) / q,
        _ => filled,
    }
}

#[async_trait]
impl Job for OverReplicationJob {
    fn name(&self) -> &'static str {
        "overreplication"
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let after = self.cursor.lock().expect("cursor").clone();
        let todo = (self.store)
            .over_replicated(self.factor, &after, self.batch)
            .await
            .map_err(|e| format!("list over-replicated objects: {e}"))?;
        let Some(last) = todo.last() else {
            self.cursor.lock().expect("cursor").clear();
            return Ok(Outcome::Idle);
        };
        *self.cursor.lock().expect("cursor") = last.object_id.clone();
        let ranks = self.ranks().await?;
        let (mut removed, mut failed) = (0, 0);
        for rec in &todo {
            match self.trim(rec, &ranks).await {
                Ok(n) => removed += n,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(job = "overreplication", object = %rec.object_id, error = %e, "trim failed");
                }
            }
        }
        tracing::info!(
            job = "overreplication",
            looked_at = todo.len(),
            removed,
            failed,
            "over-replication cycle"
        );
        Ok(if removed > 0 { Outcome::Busy } else { Outcome::Throttled })
    }
}
