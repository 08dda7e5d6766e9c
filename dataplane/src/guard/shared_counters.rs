//! The ledger behind Redis shared usage counters (see docs/redis.md).
//!
//! Every backend call is counted twice: in the cell's counters for the
//! control-plane report (which persists usage), and here, for the shared
//! per-month totals in Redis that every data plane checks limits against.
//!
//! Exactly-once: traffic moves `unsynced` (atomics, the hot path) →
//! `pending` → one numbered `inflight` batch. A batch is sent, and re-sent
//! unchanged after a failure, until Redis confirms it; Redis remembers the
//! last sequence number applied per reporter and ignores a repeat. New traffic
//! never joins a batch that may already be applied. When Redis lost its data
//! (a new epoch), the first batch under the new epoch also carries this data
//! plane's month-to-date total, so the shared counter is rebuilt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strata_backend::guarded::{TrafficHook, TrafficKind};
use strata_core::config::BackendLimits;

/// Requests, egress bytes, ingress bytes.
pub(crate) type Traffic = [u64; 3];
pub(crate) const REQUESTS: usize = 0;
pub(crate) const EGRESS: usize = 1;
pub(crate) const INGRESS: usize = 2;

/// One numbered batch of deltas, per backend index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub seq: u64,
    pub month: String,
    pub deltas: Vec<Traffic>,
    /// This data plane's applied month-to-date totals before this batch,
    /// added too when Redis turns out to have a new epoch.
    pub before: Vec<Traffic>,
    /// The epoch this data plane last applied under (empty at first).
    pub known_epoch: String,
}

/// What Redis answered to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub epoch: String,
    /// 0: a repeat (already applied), 1: applied, 2: applied with a re-seed.
    pub status: u8,
    /// The shared month totals per backend index, after the batch.
    pub totals: Vec<Traffic>,
}

#[derive(Debug, Default)]
struct Ledger {
    pending: Vec<Traffic>,
    inflight: Option<Batch>,
    next_seq: u64,
    epoch: String,
    month: String,
    /// Month-to-date traffic of this data plane confirmed in Redis.
    applied: Vec<Traffic>,
    /// The shared totals Redis last answered (month of `month`).
    totals: Vec<Traffic>,
}

/// A cell's link to the shared counters: which backend it is.
pub(crate) struct SharedHook {
    pub counters: Arc<SharedCounters>,
    pub index: usize,
}

impl TrafficHook for SharedHook {
    fn count(&self, kind: TrafficKind, n: u64) {
        let kind = match kind {
            TrafficKind::Requests => REQUESTS,
            TrafficKind::Egress => EGRESS,
            TrafficKind::Ingress => INGRESS,
        };
        self.counters.count(self.index, kind, n);
    }

    fn write_exhausted(&self) -> bool {
        self.counters.write_exhausted(self.index)
    }
}

/// Per-backend shared counters of one data plane.
pub(crate) struct SharedCounters {
    pub ids: Vec<String>,
    limits: Vec<BackendLimits>,
    unsynced: Vec<[AtomicU64; 3]>,
    ledger: Mutex<Ledger>,
}

fn add(a: &mut Traffic, b: &Traffic) {
    for i in 0..3 {
        a[i] = a[i].saturating_add(b[i]);
    }
}

impl SharedCounters {
    /// `ids` and `limits` in the guard's slot order. Sequence numbers start
    /// at the current time in milliseconds, so a restarted process (a new
    /// reporter id anyway) never reuses one.
    pub fn new(ids: Vec<String>, limits: Vec<BackendLimits>) -> SharedCounters {
        let n = ids.len();
        let seq = chrono::Utc::now().timestamp_millis().max(0) as u64;
        SharedCounters {
            ids,
            limits,
            unsynced: (0..n).map(|_| Default::default()).collect(),
            ledger: Mutex::new(Ledger {
                pending: vec![[0; 3]; n],
                applied: vec![[0; 3]; n],
                totals: vec![[0; 3]; n],
                next_seq: seq,
                ..Ledger::default()
            }),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` of `kind` on backend `index` (hot path: one atomic add).
    pub fn count(&self, index: usize, kind: usize, n: u64) {
        if let Some(c) = self.unsynced.get(index) {
            c[kind].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The batch to send now: the one not yet confirmed, or a new one with
    /// everything counted since (possibly all zero: it still reads totals).
    pub fn next_batch(&self, month: &str) -> Batch {
        let mut l = self.ledger();
        for (i, c) in self.unsynced.iter().enumerate() {
            for (k, a) in c.iter().enumerate() {
                l.pending[i][k] = l.pending[i][k].saturating_add(a.swap(0, Ordering::Relaxed));
            }
        }
        if let Some(b) = &l.inflight {
            return b.clone();
        }
        if l.month != month {
            l.month = month.to_owned();
            l.applied = vec![[0; 3]; self.ids.len()];
            l.totals = vec![[0; 3]; self.ids.len()];
        }
        let deltas = std::mem::replace(&mut l.pending, vec![[0; 3]; self.ids.len()]);
        let batch = Batch {
            seq: l.next_seq,
            month: month.to_owned(),
            deltas,
            before: l.applied.clone(),
            known_epoch: l.epoch.clone(),
        };
        l.next_seq += 1;
        l.inflight = Some(batch.clone());
        batch
    }

    /// Redis confirmed `batch`: its deltas join the applied totals once.
    pub fn confirm(&self, batch: &Batch, answer: &Applied) {
        let mut l = self.ledger();
        if l.inflight.as_ref().is_none_or(|b| b.seq != batch.seq) {
            return;
        }
        l.inflight = None;
        l.epoch = answer.epoch.clone();
        if l.month == batch.month {
            for (a, d) in l.applied.iter_mut().zip(&batch.deltas) {
                add(a, d);
            }
            if answer.totals.len() == self.ids.len() {
                l.totals = answer.totals.clone();
            }
        }
    }

    /// This month's use of backend `index` as this data plane sees it: the
    /// last shared totals plus everything counted here and not yet in them.
    pub fn used(&self, index: usize) -> Traffic {
        let l = self.ledger();
        let mut t = l.totals.get(index).copied().unwrap_or_default();
        if let Some(p) = l.pending.get(index) {
            add(&mut t, p);
        }
        if let Some(d) = l.inflight.as_ref().and_then(|b| b.deltas.get(index)) {
            add(&mut t, d);
        }
        if let Some(c) = self.unsynced.get(index) {
            add(&mut t, &[0, 1, 2].map(|k| c[k].load(Ordering::Relaxed)));
        }
        t
    }

    /// Whether backend `index` may take no more writes this month: its API
    /// request or ingress limit is reached by the shared totals.
    pub fn write_exhausted(&self, index: usize) -> bool {
        let Some(limits) = self.limits.get(index) else {
            return false;
        };
        let used = self.used(index);
        limits.api_request_limit.is_some_and(|l| used[REQUESTS] >= l)
            || limits.ingress_byte_limit.is_some_and(|l| used[INGRESS] >= l)
    }

    /// Whether backend `index` has used up its egress limit by the shared totals.
    pub fn egress_exhausted(&self, index: usize) -> bool {
        let Some(limits) = self.limits.get(index) else {
            return false;
        };
        limits.egress_byte_limit.is_some_and(|l| self.used(index)[EGRESS] >= l)
    }

    /// Index of backend `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|i| i == id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn counters() -> SharedCounters {
        let limits = BackendLimits {
            api_request_limit: Some(10),
            ..BackendLimits::default()
        };
        SharedCounters::new(vec!["a".into(), "b".into()], vec![limits, BackendLimits::default()])
    }

    /// A fake Redis running the same rules as the Lua script.
    #[derive(Default)]
    struct FakeRedis {
        epoch: Option<String>,
        seqs: HashMap<String, u64>,
        totals: Vec<Traffic>,
    }

    impl FakeRedis {
        fn apply(&mut self, reporter: &str, b: &Batch) -> Applied {
            let epoch = self.epoch.get_or_insert_with(|| format!("e{}", b.seq)).clone();
            self.totals.resize(b.deltas.len(), [0; 3]);
            let mut status = 0;
            if self.seqs.get(reporter).is_none_or(|s| *s < b.seq) {
                let reseed = epoch != b.known_epoch;
                status = if reseed { 2 } else { 1 };
                for (i, d) in b.deltas.iter().enumerate() {
                    add(&mut self.totals[i], d);
                    if reseed {
                        add(&mut self.totals[i], &b.before[i]);
                    }
                }
                self.seqs.insert(reporter.into(), b.seq);
            }
            Applied {
                epoch,
                status,
                totals: self.totals.clone(),
            }
        }
    }

    #[test]
    fn a_lost_answer_is_resent_unchanged_and_counted_once() {
        let (c, mut redis) = (counters(), FakeRedis::default());
        c.count(0, REQUESTS, 3);
        let b1 = c.next_batch("2026-11");
        let _lost = redis.apply("p", &b1);
        c.count(0, REQUESTS, 2);
        let again = c.next_batch("2026-11");
        assert_eq!(again, b1, "new traffic never joins a batch that may be applied");
        let answer = redis.apply("p", &again);
        assert_eq!(answer.status, 0, "the repeat is ignored");
        c.confirm(&again, &answer);
        assert_eq!(c.used(0)[REQUESTS], 5, "3 shared + 2 pending");
        let b2 = c.next_batch("2026-11");
        c.confirm(&b2, &redis.apply("p", &b2));
        assert_eq!(redis.totals[0][REQUESTS], 5);
        assert_eq!(c.used(0)[REQUESTS], 5);
    }

    #[test]
    fn an_outage_keeps_counting_locally_and_resyncs_exactly_once() {
        let (c, mut redis) = (counters(), FakeRedis::default());
        c.count(0, REQUESTS, 4);
        let b = c.next_batch("2026-11");
        c.confirm(&b, &redis.apply("p", &b));
        // Redis down: three failed attempts, traffic keeps coming.
        for _ in 0..3 {
            c.count(0, REQUESTS, 2);
            let _failed = c.next_batch("2026-11");
        }
        assert_eq!(c.used(0)[REQUESTS], 10, "last known total plus local deltas");
        assert!(c.write_exhausted(0), "the limit of 10 holds while Redis is down");
        assert!(!c.write_exhausted(1), "no limit on b");
        let b = c.next_batch("2026-11");
        c.confirm(&b, &redis.apply("p", &b));
        let b = c.next_batch("2026-11");
        c.confirm(&b, &redis.apply("p", &b));
        assert_eq!(redis.totals[0][REQUESTS], 10, "no loss, no double count");
    }

    #[test]
    fn a_redis_that_lost_its_data_is_reseeded_by_every_reporter() {
        let (p, q, mut redis) = (counters(), counters(), FakeRedis::default());
        for (c, name, n) in [(&p, "p", 3), (&q, "q", 4)] {
            c.count(0, REQUESTS, n);
            let b = c.next_batch("2026-11");
            c.confirm(&b, &redis.apply(name, &b));
        }
        assert_eq!(redis.totals[0][REQUESTS], 7);
        redis = FakeRedis::default(); // restarted without persistence
        redis.epoch = Some("new".into());
        p.count(0, REQUESTS, 1);
        let b = p.next_batch("2026-11");
        let _lost = redis.apply("p", &b); // applied with re-seed, answer lost
        let b = p.next_batch("2026-11");
        assert_eq!(redis.apply("p", &b).status, 0, "the re-seed is not repeated");
        p.confirm(&b, &redis.apply("p", &b));
        let b = q.next_batch("2026-11");
        q.confirm(&b, &redis.apply("q", &b));
        assert_eq!(redis.totals[0][REQUESTS], 8, "3 + 1 from p, 4 from q");
    }

    #[test]
    fn a_new_month_starts_from_zero() {
        let (c, mut redis) = (counters(), FakeRedis::default());
        c.count(0, EGRESS, 9);
        let b = c.next_batch("2026-11");
        c.confirm(&b, &redis.apply("p", &b));
        let b = c.next_batch("2026-12");
        assert_eq!(b.before[0], [0; 3]);
        assert_eq!(c.index("b"), Some(1));
        assert!(!c.egress_exhausted(0));
    }
}
