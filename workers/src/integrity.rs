//! Scrubbing: reading blobs back, verifying them against their recorded
//! SHA-256 (and seal), backfilling missing digests and repairing corrupt
//! copies from healthy ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_backend::Backends;
use strata_core::{BlobKey, ControlPlane, CpError, ObjectRecord};
use strata_store::{BlobRecord, BlobState, JobProgress, MetaStore};

use crate::blobcopy::{ReadCheck, all_copies, copy_of, is_customer_copy, read_full, record_digest, write_copy};
use crate::{Clock, Job, Outcome, metrics, system_clock};

/// Name of the job and of its progress row.
const NAME: &str = "scrub";

/// Whether a backend may be read from this cycle (false when its monthly
/// egress limit is used up).
pub type Readable = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Verifies stored blobs and repairs corrupt copies.
///
/// Each cycle first repairs up to `sample` blobs already marked corrupt
/// (by readers through `report_corrupt`, or by an earlier cycle), then
/// scans the next `sample` objects after its cursor (wrapping around at the
/// end; the cursor lives in the `scrub` progress row, so a restart resumes)
/// and reads every segment of every copy in full, stopping once `max_bytes`
/// were read. A segment without a digest gets one (backfill); one with a
/// digest is verified and marked `ok`, or `corrupt` and repaired. A
/// transfer failure is not corruption. SSE-C segments cannot be read by the
/// worker and are skipped, and so are the blobs of backends that are not
/// `readable` this cycle.
///
/// A repair writes a new blob from a healthy copy (a corrupt source fails
/// its own verification) on a backend holding no other copy, under an
/// intent, and swaps it in with `replace_copy`; the corrupt blob goes to the
/// cleanup queue. A corrupt last copy is quarantined and logged, never deleted.
pub struct IntegrityJob {
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    /// Objects scanned (and corrupt blobs handled) per cycle.
    pub sample: u32,
    /// Bytes read per cycle at most.
    pub max_bytes: u64,
    pub period: Duration,
    pub readable: Readable,
    pub clock: Clock,
}

/// What one cycle saw.
#[derive(Default)]
struct Tally {
    checked: u64,
    bytes: u64,
    errors: u64,
    counts: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// Parses a `k=v k=v` detail line.
pub(crate) fn parse_detail(detail: &str) -> BTreeMap<String, u64> {
    (detail.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

pub(crate) fn format_detail(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The (bucket, key) of a `bucket\nkey` cursor.
pub(crate) fn parse_cursor(cursor: &str) -> (String, String) {
    match cursor.split_once('\n') {
        Some((b, k)) => (b.to_owned(), k.to_owned()),
        None => (String::new(), String::new()),
    }
}

impl IntegrityJob {
    pub fn new(
        store: Arc<dyn MetaStore>,
        cp: Arc<dyn ControlPlane>,
        backends: Backends,
        sample: u32,
        max_bytes: u64,
        period: Duration,
        readable: Readable,
    ) -> Self {
        IntegrityJob {
            store,
            cp,
            backends,
            sample: sample.max(1),
            max_bytes,
            period,
            readable,
            clock: system_clock(),
        }
    }

    /// Repairs blob `blob`, already marked corrupt, of the object that holds it.
    async fn repair_marked(&self, blob: &BlobRecord, tally: &mut Tally) -> Result<(), String> {
        let owner = (self.store.blob_owner(&blob.backend_id, &blob.backend_key).await)
            .map_err(|e| format!("find the owner of {}: {e}", blob.backend_key))?;
        let Some((bucket, key)) = owner else {
            // No current object uses it: nothing to repair (cleanup or prune takes it).
            return Ok(());
        };
        let rec = match self.cp.locate(&bucket, &key).await {
            Ok(r) => r,
            Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(()),
            Err(e) => return Err(format!("locate {bucket}/{key}: {e}")),
        };
        let holds = |segs: &[strata_core::Segment]| {
            (segs.iter()).any(|s| s.backend_id == blob.backend_id && s.backend_key == blob.backend_key)
        };
        if let Some(copy) = all_copies(&rec).position(holds) {
            self.repair(&rec, copy, &blob.backend_id, &blob.backend_key, tally)
                .await;
        }
        Ok(())
    }

    /// Replaces copy `bad` of `rec` (holding the corrupt blob `bad_key` on
    /// `bad_backend`) with a new blob written from a healthy copy, or
    /// quarantines it when it is the only copy.
    async fn repair(&self, rec: &ObjectRecord, bad: usize, bad_backend: &str, bad_key: &str, tally: &mut Tally) {
        let now = (self.clock)();
        let copies: Vec<_> = all_copies(rec).collect();
        let others: Vec<usize> = (0..copies.len()).filter(|&i| i != bad).collect();
        if others.is_empty() {
            let _ = (self.store)
                .mark_blob(bad_backend, bad_key, BlobState::Quarantined, now)
                .await;
            tracing::error!(
                job = NAME, bucket = %rec.bucket, key = %rec.key, object = %rec.object_id,
                backend = %bad_backend, blob = %bad_key,
                "the only copy of an object is corrupt: quarantined (kept, not deleted); restore it from elsewhere",
            );
            metrics::REPAIRS.with_label_values(&["quarantined"]).inc();
            tally.add("quarantined");
            return;
        }
        match self.rewrite_from_others(rec, bad, &others).await {
            Ok(true) => {
                tracing::info!(
                    job = NAME, bucket = %rec.bucket, key = %rec.key, backend = %bad_backend, blob = %bad_key,
                    "repaired a corrupt copy from a healthy one",
                );
                metrics::REPAIRS.with_label_values(&["repaired"]).inc();
                tally.add("repaired");
            }
            Ok(false) => {} // The object changed meanwhile: nothing left to repair.
            Err(e) => {
                tracing::warn!(
                    job = NAME, bucket = %rec.bucket, key = %rec.key, backend = %bad_backend, blob = %bad_key,
                    error = %e, "repair failed; will retry",
                );
                metrics::REPAIRS.with_label_values(&["failed"]).inc();
                tally.add("repair-failed");
                tally.errors += 1;
            }
        }
    }

    async fn rewrite_from_others(&self, rec: &ObjectRecord, bad: usize, others: &[usize]) -> Result<bool, String> {
        let exclude: Vec<String> = (others.iter())
            .filter_map(|&i| copy_of(rec, i))
            .flatten()
            .map(|s| s.backend_id.clone())
            .collect();
        let old = copy_of(rec, bad).unwrap_or_default().to_vec();
        let mut last_error = String::from("no healthy copy the worker can read");
        for &from in others {
            let Some(source) = copy_of(rec, from) else { continue };
            if is_customer_copy(source) || !source.iter().all(|s| (self.readable)(&s.backend_id)) {
                continue;
            }
            let plan = (self.cp)
                .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &exclude)
                .await
                .map_err(|e| format!("plan a new copy: {e}"))?;
            let seg = match write_copy(self.cp.as_ref(), &self.backends, rec, from, &plan).await {
                Ok(s) => s,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let now = (self.clock)();
            if let Err(e) = record_digest(self.store.as_ref(), &seg, now).await {
                crate::blobcopy::discard(self.cp.as_ref(), &self.backends, &plan).await;
                return Err(e);
            }
            let bad_index = u32::try_from(bad).unwrap_or(u32::MAX);
            let replaced = (self.store)
                .replace_copy(
                    &rec.bucket,
                    &rec.key,
                    &rec.object_id,
                    bad_index,
                    &old,
                    &[seg],
                    Some(&plan.intent_id),
                    now,
                )
                .await
                .map_err(|e| format!("swap in the new copy: {e}"))?;
            return Ok(replaced.is_some());
        }
        Err(last_error)
    }

    /// Verifies (or backfills) every readable segment of `listed`.
    async fn scan(&self, listed: &ObjectRecord, tally: &mut Tally) -> Result<(), String> {
        let rec = match self.cp.locate(&listed.bucket, &listed.key).await {
            Ok(r) if r.object_id == listed.object_id => r,
            Ok(_) | Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(()),
            Err(e) => return Err(format!("locate {}/{}: {e}", listed.bucket, listed.key)),
        };
        for (ci, copy) in all_copies(&rec).enumerate() {
            for seg in copy {
                if seg.cipher.as_ref().is_some_and(BlobKey::is_customer) {
                    tally.add("sse-c");
                    continue;
                }
                if seg.encoding.is_some() {
                    // Deltas and compressed references are verified when read
                    // (decoded bytes against the SHA-256), not by this pass.
                    tally.add("encoded-skipped");
                    continue;
                }
                if !(self.readable)(&seg.backend_id) {
                    tally.add("egress-skipped");
                    continue;
                }
                let Some(backend) = self.backends.get(&seg.backend_id) else {
                    tally.add("unconfigured");
                    continue;
                };
                tally.bytes += seg.length;
                let now = (self.clock)();
                match read_full(backend.as_ref(), seg).await {
                    ReadCheck::Ok { sha256, .. } => {
                        tally.checked += 1;
                        metrics::SCRUB_CHECKED.inc();
                        if seg.sha256.is_none() {
                            let row = strata_core::Segment {
                                sha256: Some(sha256),
                                ..seg.clone()
                            };
                            record_digest(self.store.as_ref(), &row, now).await?;
                            metrics::BACKFILL.inc();
                            tally.add("backfilled");
                        }
                        (self
                            .store
                            .mark_blob(&seg.backend_id, &seg.backend_key, BlobState::Ok, now)
                            .await)
                            .map_err(|e| format!("mark {} checked: {e}", seg.backend_key))?;
                    }
                    ReadCheck::Corrupt(why) => {
                        tally.checked += 1;
                        metrics::SCRUB_CHECKED.inc();
                        metrics::SCRUB_CORRUPT.inc();
                        tally.add("corrupt");
                        tracing::warn!(
                            job = NAME, bucket = %rec.bucket, key = %rec.key, backend = %seg.backend_id,
                            blob = %seg.backend_key, %why, "corrupt blob",
                        );
                        (self
                            .store
                            .mark_blob(&seg.backend_id, &seg.backend_key, BlobState::Corrupt, now)
                            .await)
                            .map_err(|e| format!("mark {} corrupt: {e}", seg.backend_key))?;
                        self.repair(&rec, ci, &seg.backend_id, &seg.backend_key, tally).await;
                        break; // The rest of this copy went with it.
                    }
                    ReadCheck::Failed(why) => {
                        tally.errors += 1;
                        tracing::warn!(
                            job = NAME, backend = %seg.backend_id, blob = %seg.backend_key, error = %why,
                            "could not read a blob to verify it",
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Job for IntegrityJob {
    fn name(&self) -> &'static str {
        NAME
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let mut tally = Tally::default();
        let mut first_error: Option<String> = None;

        let corrupt = (self.store.corrupt_blobs(self.sample).await).map_err(|e| format!("list corrupt blobs: {e}"))?;
        for blob in &corrupt {
            if let Err(e) = self.repair_marked(blob, &mut tally).await {
                tally.errors += 1;
                first_error.get_or_insert(e);
            }
        }

        let mut progress = (self.store.get_job(NAME).await)
            .map_err(|e| format!("read the scrub progress: {e}"))?
            .unwrap_or_else(|| JobProgress {
                name: NAME.into(),
                state: "running".into(),
                ..JobProgress::default()
            });
        let (b, k) = parse_cursor(&progress.cursor);
        let objects = (self.store.objects_after((&b, &k), self.sample).await)
            .map_err(|e| format!("list objects to scrub: {e}"))?;
        let wrapped = objects.is_empty();
        let mut cursor = progress.cursor.clone();
        if wrapped {
            cursor.clear();
        }
        for obj in &objects {
            if tally.bytes >= self.max_bytes {
                break;
            }
            if let Err(e) = self.scan(obj, &mut tally).await {
                tally.errors += 1;
                first_error.get_or_insert(e);
            }
            cursor = format!("{}\n{}", obj.bucket, obj.key);
        }

        let mut detail = parse_detail(&progress.detail);
        for (k, n) in &tally.counts {
            *detail.entry((*k).to_owned()).or_default() += n;
        }
        progress.cursor = cursor;
        progress.done += tally.checked;
        progress.errors += tally.errors;
        progress.detail = format_detail(&detail);
        progress.state = "running".into();
        progress.updated_ms = (self.clock)();
        (self.store.put_job(&progress).await).map_err(|e| format!("save the scrub progress: {e}"))?;
        tracing::info!(
            job = NAME,
            objects = objects.len(),
            checked = tally.checked,
            bytes = tally.bytes,
            errors = tally.errors,
            "scrub cycle",
        );
        match first_error {
            Some(e) if tally.checked == 0 && corrupt.is_empty() => Err(e),
            // Spread the reads: one sample per period.
            _ => Ok(Outcome::Idle),
        }
    }
}
