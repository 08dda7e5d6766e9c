//! Operator-started rewrites of existing blobs: sealing plaintext blobs
//! (`encrypt-existing`) or opening sealed ones (`decrypt-existing`) so that
//! they follow the current encryption policy.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_backend::Backends;
use strata_core::{BlobKey, ControlPlane, CpError, ObjectRecord, Segment};
use strata_store::{JobProgress, MetaStore};

use crate::blobcopy::{all_copies, discard, is_customer_copy, is_encoded_copy, record_digest, write_copy};
use crate::integrity::{format_detail, parse_cursor, parse_detail};
use crate::{Clock, Job, Outcome, metrics, system_clock};

/// Which rewrite a [`RewriteJob`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteKind {
    /// Seal the plaintext copies the policy now says to seal.
    EncryptExisting,
    /// Open the master-key-sealed copies the policy no longer seals.
    DecryptExisting,
}

impl RewriteKind {
    /// The job's name and the name of its progress row.
    pub fn name(self) -> &'static str {
        match self {
            RewriteKind::EncryptExisting => "encrypt-existing",
            RewriteKind::DecryptExisting => "decrypt-existing",
        }
    }
}

/// Whether the policy seals new blobs of a bucket (first argument) on a backend.
pub type SealPolicy = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Rewrites every copy whose encryption differs from the policy, in place
/// (on the same backend), one object at a time.
///
/// Runs only while its progress row (`encrypt-existing` or
/// `decrypt-existing`) has state `running`: an operator starts it by
/// writing that row, and `paused` or `cancelled` stop it before the next
/// object. A run walks all objects in (bucket, key) order; `total` is the
/// object count when it starts, and `cursor` (`bucket\nkey`), `done`,
/// `errors` and `detail` are saved after every object, so a restart
/// resumes where it stopped; at the end the state becomes `done`. Each copy
/// that needs it is rewritten from its own verified plaintext into one new
/// blob on the same backend, swapped in with `replace_copy` (the old blobs
/// move to the cleanup queue in the same transaction, so usage stays
/// exact). Copies sealed under customer keys are skipped and counted; a
/// backend without room is counted as an error and the run moves on.
pub struct RewriteJob {
    pub kind: RewriteKind,
    pub store: Arc<dyn MetaStore>,
    pub cp: Arc<dyn ControlPlane>,
    pub backends: Backends,
    pub seals: SealPolicy,
    /// Objects per cycle.
    pub batch: u32,
    pub period: Duration,
    pub clock: Clock,
}

/// What became of one object.
#[derive(Default)]
struct ObjectResult {
    rewritten: u64,
    customer: u64,
    errors: u64,
}

impl RewriteJob {
    pub fn new(
        kind: RewriteKind,
        store: Arc<dyn MetaStore>,
        cp: Arc<dyn ControlPlane>,
        backends: Backends,
        seals: SealPolicy,
        batch: u32,
        period: Duration,
    ) -> Self {
        RewriteJob {
            kind,
            store,
            cp,
            backends,
            seals,
            batch: batch.max(1),
            period,
            clock: system_clock(),
        }
    }

    /// Whether copy `segments` of an object in `bucket` must be rewritten.
    fn needs(&self, bucket: &str, segments: &[Segment]) -> bool {
        let Some(backend) = segments.first().map(|s| s.backend_id.as_str()) else {
            return false;
        };
        let sealed = (self.seals)(bucket, backend);
        match self.kind {
            RewriteKind::EncryptExisting => sealed && segments.iter().any(|s| s.cipher.is_none()),
            RewriteKind::DecryptExisting => {
                !sealed && (segments.iter()).any(|s| s.cipher.as_ref().is_some_and(|c| !c.is_customer()))
            }
        }
    }

    async fn object(&self, listed: &ObjectRecord) -> ObjectResult {
        let mut out = ObjectResult::default();
        let rec = match self.cp.locate(&listed.bucket, &listed.key).await {
            Ok(r) if r.object_id == listed.object_id => r,
            Ok(_) | Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return out,
            Err(e) => {
                tracing::warn!(job = self.kind.name(), bucket = %listed.bucket, key = %listed.key, error = %e, "locate failed");
                out.errors += 1;
                return out;
            }
        };
        for (ci, copy) in all_copies(&rec).enumerate() {
            if is_customer_copy(copy) || is_encoded_copy(copy) {
                out.customer += 1;
                continue;
            }
            if !self.needs(&rec.bucket, copy) {
                continue;
            }
            match self.rewrite(&rec, ci, copy).await {
                Ok(true) => {
                    out.rewritten += 1;
                    metrics::REWRITTEN.with_label_values(&[self.kind.name()]).inc();
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(
                        job = self.kind.name(), bucket = %rec.bucket, key = %rec.key, copy = ci, error = %e,
                        "rewrite failed",
                    );
                    out.errors += 1;
                }
            }
        }
        out
    }

    /// Rewrites copy `ci` on its own backend. `Ok(false)` when the object
    /// changed meanwhile.
    async fn rewrite(&self, rec: &ObjectRecord, ci: usize, copy: &[Segment]) -> Result<bool, String> {
        let target = copy[0].backend_id.clone();
        let exclude: Vec<String> = (self.backends.all().iter())
            .map(|b| b.id().to_owned())
            .filter(|id| *id != target)
            .collect();
        let plan = match self
            .cp
            .plan_write(&rec.bucket, &rec.key, Some(rec.meta.size), &exclude)
            .await
        {
            Ok(p) => p,
            Err(CpError::NoCapacity(why)) => return Err(format!("no room on {target}: {why}")),
            Err(CpError::NoSuchBucket | CpError::NoSuchKey) => return Ok(false),
            Err(e) => return Err(format!("plan a rewrite: {e}")),
        };
        let want_sealed = self.kind == RewriteKind::EncryptExisting;
        if plan.backend_id != target
            || plan.cipher.as_ref().is_some_and(BlobKey::is_customer)
            || plan.cipher.is_some() != want_sealed
        {
            discard(self.cp.as_ref(), &self.backends, &plan).await;
            return Err(format!(
                "the control plane planned {} ({}), not a {} blob on {target}",
                plan.backend_id,
                if plan.cipher.is_some() { "sealed" } else { "plaintext" },
                if want_sealed { "sealed" } else { "plaintext" },
            ));
        }
        let seg = write_copy(self.cp.as_ref(), &self.backends, rec, ci, &plan).await?;
        let now = (self.clock)();
        if let Err(e) = record_digest(self.store.as_ref(), &seg, now).await {
            discard(self.cp.as_ref(), &self.backends, &plan).await;
            return Err(e);
        }
        let index = u32::try_from(ci).unwrap_or(u32::MAX);
        let replaced = (self.store)
            .replace_copy(
                &rec.bucket,
                &rec.key,
                &rec.object_id,
                index,
                copy,
                &[seg],
                Some(&plan.intent_id),
                now,
            )
            .await
            .map_err(|e| format!("swap in the rewritten copy: {e}"))?;
        Ok(replaced.is_some())
    }

    async fn progress(&self) -> Result<Option<JobProgress>, String> {
        (self.store.get_job(self.kind.name()).await).map_err(|e| format!("read the {} progress: {e}", self.kind.name()))
    }

    async fn save(&self, p: &JobProgress) -> Result<(), String> {
        (self.store.put_job(p).await).map_err(|e| format!("save the {} progress: {e}", self.kind.name()))
    }
}

#[async_trait]
impl Job for RewriteJob {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn period(&self) -> Duration {
        self.period
    }

    async fn run_once(&self) -> Result<Outcome, String> {
        let Some(mut p) = self.progress().await? else {
            return Ok(Outcome::Idle);
        };
        if p.state != "running" {
            return Ok(Outcome::Idle);
        }
        if p.done == 0 && p.cursor.is_empty() {
            p.total = (self.store.count_objects().await).map_err(|e| format!("count objects: {e}"))?;
        }
        let (b, k) = parse_cursor(&p.cursor);
        let objects = (self.store.objects_after((&b, &k), self.batch).await)
            .map_err(|e| format!("list objects to rewrite: {e}"))?;
        if objects.is_empty() {
            p.state = "done".into();
            p.updated_ms = (self.clock)();
            self.save(&p).await?;
            tracing::info!(job = self.kind.name(), done = p.done, errors = p.errors, detail = %p.detail, "rewrite finished");
            return Ok(Outcome::Idle);
        }
        for obj in &objects {
            // An operator may have paused or cancelled the run meanwhile.
            let current = self.progress().await?;
            if current.as_ref().is_none_or(|c| c.state != "running") {
                return Ok(Outcome::Idle);
            }
            let r = self.object(obj).await;
            let mut detail = parse_detail(&p.detail);
            *detail.entry("rewritten".into()).or_default() += r.rewritten;
            *detail.entry("sse-c-skipped".into()).or_default() += r.customer;
            p.detail = format_detail(&detail);
            p.cursor = format!("{}\n{}", obj.bucket, obj.key);
            p.done += 1;
            p.errors += r.errors;
            p.updated_ms = (self.clock)();
            self.save(&p).await?;
        }
        Ok(Outcome::Busy)
    }
}
