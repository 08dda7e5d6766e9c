//! The reconciler: each backend's listing, merged in key order against the
//! blobs the catalog names there, page by page (see docs/reconciler.md).

mod repair;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_backend::{Backend, Backends, LIST_PAGE_MAX, ListedBlob};
use strata_store::{JobProgress, KnownBlob, MetaStore};

use crate::integrity::{format_detail, parse_detail};
use crate::{Clock, Job, Outcome, system_clock};
use repair::SCANNED;

/// Name of the job; each backend's progress row is `reconcile:<backend>`.
const NAME: &str = "reconcile";

/// Finds orphans and lost copies by merging each backend's listing with the
/// catalog, both in key order, a page of each at a time, so memory is
/// bounded by the page size whatever the backend holds.
///
/// - A blob on the backend that no catalog row names (segment, part,
///   intent, cleanup row; see [`MetaStore::known_blobs`]) and whose
///   last-modified time is older than `grace` is queued for cleanup with
///   [`MetaStore::enqueue_orphan`], which checks again in its transaction.
///   Nothing is deleted here.
/// - A segment the backend does not list, and a HEAD confirms gone, is a
///   lost copy: when the object has another copy, the lost one is dropped
///   with `drop_copy` so the replication job makes a new one; when it was
///   the last, its blob is quarantined, an error logged and
///   `strata_reconcile_lost_total` raised. A missing multipart part is
///   reported the same way (the upload cannot complete).
///
/// Each backend has its own cursor in the `reconcile:<backend>` progress
/// row, so a pass resumes after a restart; a cycle looks at no more than
/// `keys_per_cycle` keys per backend. A finished pass waits `period` before
/// the next one on that backend; the row's detail keeps the last pass's counts.
pub struct ReconcileJob {
    pub store: Arc<dyn MetaStore>,
    pub backends: Backends,
    pub period: Duration,
    pub grace: Duration,
    pub keys_per_cycle: u64,
    /// Keys listed per request (at most [`LIST_PAGE_MAX`]).
    pub page: u32,
    pub clock: Clock,
}

/// What a pass found so far, kept in the progress row's detail.
#[derive(Default)]
struct Counts {
    scanned: u64,
    orphans: u64,
    young: u64,
    missing: u64,
    lost: u64,
    errors: u64,
}

impl ReconcileJob {
    pub fn new(store: Arc<dyn MetaStore>, backends: Backends, period: Duration, grace: Duration) -> Self {
        ReconcileJob {
            store,
            backends,
            period,
            grace,
            keys_per_cycle: 10_000,
            page: LIST_PAGE_MAX,
            clock: system_clock(),
        }
    }

    /// One cycle on one backend; returns whether its pass is still under way.
    async fn backend_cycle(&self, backend: &dyn Backend) -> Result<bool, String> {
        let id = backend.id();
        let row = format!("{NAME}:{id}");
        let now = (self.clock)();
        let saved = (self.store.get_job(&row).await).map_err(|e| format!("read progress of {row}: {e}"))?;
        let mut job = match saved {
            Some(j) if j.state == "running" => j,
            Some(j) if j.updated_ms + millis(self.period) > now => return Ok(false),
            _ => JobProgress {
                name: row.clone(),
                state: "running".into(),
                ..JobProgress::default()
            },
        };
        let mut counts = Counts::from_detail(&job.detail);
        let page = self.page.clamp(1, LIST_PAGE_MAX);
        let mut budget = self.keys_per_cycle.max(1);
        let finished = loop {
            let listed =
                (backend.list_page(&job.cursor, page).await).map_err(|e| format!("list backend `{id}`: {e}"))?;
            let known = (self.store.known_blobs(id, &job.cursor, page).await)
                .map_err(|e| format!("list the catalog's blobs on `{id}`: {e}"))?;
            // Keys up to the smaller last key of a full page are settled on both sides.
            let full = |n: usize| n == page as usize;
            let bound = [
                full(listed.len())
                    .then(|| listed.last().map(|b| b.key.clone()))
                    .flatten(),
                full(known.len())
                    .then(|| known.last().map(|k| k.backend_key.clone()))
                    .flatten(),
            ]
            .into_iter()
            .flatten()
            .min();
            let n = self
                .merge(backend, &listed, &known, bound.as_deref(), &mut counts)
                .await;
            budget = budget.saturating_sub(n.max(1));
            match bound {
                None => break true,
                Some(b) => job.cursor = b,
            }
            if budget == 0 {
                break false;
            }
        };
        job.detail = counts.detail();
        job.done = counts.scanned;
        job.errors = counts.errors;
        job.updated_ms = (self.clock)();
        if finished {
            job.state = "done".into();
            job.cursor.clear();
            tracing::info!(
                job = NAME,
                backend = id,
                scanned = counts.scanned,
                orphans = counts.orphans,
                young = counts.young,
                missing = counts.missing,
                lost = counts.lost,
                errors = counts.errors,
                "reconciler pass finished",
            );
        }
        (self.store.put_job(&job).await).map_err(|e| format!("save progress of {row}: {e}"))?;
        Ok(!finished)
    }

    /// Merges the two sorted pages up to `bound` (everything when `None`);
    /// returns how many listed keys it looked at.
    async fn merge(
        &self,
        backend: &dyn Backend,
        listed: &[ListedBlob],
        known: &[KnownBlob],
        bound: Option<&str>,
        counts: &mut Counts,
    ) -> u64 {
        let within = |k: &str| bound.is_none_or(|b| k <= b);
        let (mut i, mut j, mut n) = (0, 0, 0u64);
        loop {
            let l = listed.get(i).filter(|b| within(&b.key));
            let k = known.get(j).filter(|k| within(&k.backend_key));
            match (l, k) {
                (None, None) => break,
                (Some(l), Some(k)) if l.key == k.backend_key => (i, j) = (i + 1, j + 1),
                (Some(l), Some(k)) if l.key < k.backend_key => {
                    self.on_unknown(backend.id(), l, counts).await;
                    i += 1;
                }
                (Some(l), None) => {
                    self.on_unknown(backend.id(), l, counts).await;
                    i += 1;
                }
                (_, Some(k)) => {
                    self.on_unlisted(backend, k, counts).await;
                    j += 1;
                    continue;
                }
            }
            n += 1;
            counts.scanned += 1;
            SCANNED.with_label_values(&[backend.id()]).inc();
        }
        n
    }
}

impl Counts {
    fn from_detail(detail: &str) -> Counts {
        let d = parse_detail(detail);
        let get = |k: &str| d.get(k).copied().unwrap_or(0);
        Counts {
            scanned: get("scanned"),
            orphans: get("orphans"),
            young: get("young"),
            missing: get("missing"),
            lost: get("lost"),
            errors: get("errors"),
        }
    }

    fn detail(&self) -> String {
        let pairs = [
            ("scanned", self.scanned),
            ("orphans", self.orphans),
            ("young", self.young),
            ("missing", self.missing),
            ("lost", self.lost),
            ("errors", self.errors),
        ];
        format_detail(&pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Job for ReconcileJob {
    fn name(&self) -> &'static str {
        NAME
    }

    fn period(&self) -> Duration {
        // Short while a pass is under way on some backend: the runner waits
        // this long after an idle cycle; each backend waits out `period` itself.
        self.period.min(Duration::from_secs(60))
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let (mut busy, mut first_error) = (false, None);
        for backend in self.backends.all() {
            match self.backend_cycle(backend.as_ref()).await {
                Ok(more) => busy |= more,
                Err(e) => {
                    tracing::warn!(job = NAME, backend = backend.id(), error = %e, "reconciler cycle failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if busy => Ok(Outcome::Busy),
            None => Ok(Outcome::Idle),
        }
    }
}

#[cfg(test)]
mod tests;
