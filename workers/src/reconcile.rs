//! The reconciler: each backend's listing, merged in key order against the
//! blobs the catalog names there, page by page (see docs/reconciler.md).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use prometheus::{IntCounterVec, Opts};
use strata_backend::{Backend, BackendError, Backends, LIST_PAGE_MAX, ListedBlob};
use strata_core::CpError;
use strata_store::{BlobRecord, BlobState, BlobUse, JobProgress, KnownBlob, MetaStore};

use crate::integrity::{format_detail, parse_detail};
use crate::{Clock, Job, Outcome, system_clock};

/// Name of the job; each backend's progress row is `reconcile:<backend>`.
const NAME: &str = "reconcile";

fn counter_vec(name: &str, help: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &["backend"]).expect("valid counter");
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

static SCANNED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_scanned_total",
        "Blobs listed on a backend and merged against the catalog by the reconciler.",
    )
});
static ORPHANS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_orphans_total",
        "Blobs found on a backend that no catalog row names, queued for cleanup.",
    )
});
static MISSING: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_missing_total",
        "Blobs the catalog names as object segments or parts that are absent from their backend.",
    )
});
static LOST: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "strata_reconcile_lost_total",
        "Missing blobs that were an object's last copy (quarantined; the object reads as an error).",
    )
});

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

    /// A blob on the backend that the catalog does not name.
    async fn on_unknown(&self, id: &str, blob: &ListedBlob, counts: &mut Counts) {
        let age_ms = (self.clock)().saturating_sub(blob.modified_ms);
        if age_ms < millis(self.grace) {
            counts.young += 1;
            return;
        }
        match self.store.enqueue_orphan(id, &blob.key, blob.size).await {
            Ok(true) => {
                counts.orphans += 1;
                ORPHANS.with_label_values(&[id]).inc();
                tracing::info!(job = NAME, backend = id, blob = %blob.key, bytes = blob.size, age_secs = age_ms / 1000,
                    "orphan blob (named by no catalog row) queued for cleanup");
            }
            Ok(false) => {} // Named meanwhile.
            Err(e) => {
                counts.errors += 1;
                tracing::warn!(job = NAME, backend = id, blob = %blob.key, error = %e, "cannot queue an orphan");
            }
        }
    }

    /// A blob the catalog names that the backend did not list.
    async fn on_unlisted(&self, backend: &dyn Backend, known: &KnownBlob, counts: &mut Counts) {
        let (id, key) = (backend.id(), known.backend_key.as_str());
        if known.used_as == BlobUse::Transient {
            return; // A write in flight, or bytes already deleted and not yet acknowledged.
        }
        // Listed before it was written? Only a HEAD says it is gone.
        match backend.head(key).await {
            Ok(_) => return,
            Err(BackendError::NotFound) => {}
            Err(e) => {
                counts.errors += 1;
                tracing::warn!(job = NAME, backend = id, blob = key, error = %e, "cannot check a blob the listing lacks");
                return;
            }
        }
        counts.missing += 1;
        MISSING.with_label_values(&[id]).inc();
        if known.used_as == BlobUse::Part {
            tracing::error!(
                job = NAME,
                backend = id,
                blob = key,
                "a multipart part is missing from its backend; its upload cannot complete and must be restarted"
            );
            return;
        }
        if let Err(e) = self.drop_lost(id, key, counts).await {
            counts.errors += 1;
            tracing::warn!(job = NAME, backend = id, blob = key, error = %e, "cannot handle a missing copy; will retry");
        }
    }

    /// Drops the copy holding the missing blob, or quarantines a last copy.
    async fn drop_lost(&self, id: &str, key: &str, counts: &mut Counts) -> Result<(), String> {
        let Some((bucket, object)) = (self.store.blob_owner(id, key).await).map_err(|e| e.to_string())? else {
            return Ok(()); // No current object uses it any more.
        };
        let rec = match self.store.get_object(&bucket, &object).await {
            Ok(r) => r,
            Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let copies: Vec<&[strata_core::Segment]> = std::iter::once(rec.segments.as_slice())
            .chain(rec.copies.iter().map(Vec::as_slice))
            .collect();
        let holds = |segs: &&[strata_core::Segment]| segs.iter().any(|s| s.backend_id == id && s.backend_key == key);
        let Some(copy) = copies.iter().position(holds) else {
            return Ok(());
        };
        if copies.len() > 1 {
            let old = copies[copy].to_vec();
            let dropped = (self
                .store
                .drop_copy(&bucket, &object, &rec.object_id, copy as u32, &old)
                .await)
                .map_err(|e| format!("drop the lost copy: {e}"))?;
            if dropped.is_some() {
                tracing::warn!(job = NAME, backend = id, blob = key, %bucket, key = %object, copy,
                    "a copy was missing from its backend: dropped from the catalog; replication will make a new one");
            }
            return Ok(());
        }
        let now = (self.clock)();
        let row = BlobRecord {
            backend_id: id.to_owned(),
            backend_key: key.to_owned(),
            state: BlobState::Quarantined,
            checked_ms: now,
            ..BlobRecord::default()
        };
        (self.store.put_blobs(&[row], now).await).map_err(|e| e.to_string())?;
        (self.store.mark_blob(id, key, BlobState::Quarantined, now).await).map_err(|e| e.to_string())?;
        counts.lost += 1;
        LOST.with_label_values(&[id]).inc();
        tracing::error!(job = NAME, backend = id, blob = key, %bucket, key = %object, object_id = %rec.object_id,
            "the only copy of an object is missing from its backend: quarantined, reads fail; restore the blob or delete the object");
        Ok(())
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
#[path = "reconcile_tests.rs"]
mod tests;
