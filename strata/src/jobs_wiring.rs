//! Builds the background-job [`Runner`] for a process that runs jobs: the
//! all-in-one process (`--role all`, or the control plane under SQLite) and
//! `--role worker` under PostgreSQL. Every job is added in [`build_runner`]; a
//! new job is one more `runner.add(..)` there.

use std::sync::Arc;
use std::time::Duration;

use strata_backend::Backends;
use strata_controlplane::{ControlPlaneService, Identity, Sealer};
use strata_core::ControlPlane;
use strata_core::config::Config;
use strata_store::MetaStore;
use strata_workers::{
    CleanupJob, DeltaCompactJob, DeltaGcJob, IntegrityJob, LifecycleJob, Readable, ReaperJob, ReplicationJob,
    RewrapJob, RewriteJob, RewriteKind, Runner, SealPolicy, StaleMultipartJob,
};

/// What the jobs work with.
pub struct JobDeps {
    /// The metadata store (SQLite or PostgreSQL).
    pub store: Arc<dyn MetaStore>,
    /// An in-process control plane over the same store.
    pub cp: Arc<dyn ControlPlane>,
    /// The backends, through the data plane's breakers when this process has one.
    pub backends: Backends,
    /// The encryption keys, for the re-wrap and rewrite jobs.
    pub sealer: Option<Arc<Sealer>>,
    /// The data plane's usage guard in this process, if any (scrub skips
    /// backends past their egress limit).
    pub guard: Option<Arc<strata_dataplane::Guard>>,
}

/// An in-process control plane for a worker: the same service the control
/// plane runs, over the same store, so jobs that commit through a
/// `ControlPlane` behave the same in every role.
pub fn worker_control_plane(
    config: &Config,
    store: Arc<dyn MetaStore>,
) -> Result<(Arc<dyn ControlPlane>, Arc<Sealer>), String> {
    let identity = Identity::new(&config.credentials, store.clone());
    let backends = config.effective_backends();
    let modes: Vec<_> = backends.iter().map(|b| (b.id().to_owned(), b.encryption())).collect();
    let sealer = Arc::new(Sealer::from_config(&config.encryption, &modes).map_err(|e| format!("encryption: {e}"))?);
    let cp: Arc<dyn ControlPlane> = Arc::new(
        ControlPlaneService::new(store, identity, &backends, config.placement.clone())
            .with_usage_flush_secs(config.resilience.usage.flush_secs)
            .with_sealer(sealer.clone())
            .with_delta(config.delta.clone()),
    );
    Ok((cp, sealer))
}

/// The runner with every job this configuration turns on.
pub fn build_runner(config: &Config, deps: JobDeps) -> Runner {
    let JobDeps {
        store,
        cp,
        backends,
        sealer,
        guard,
    } = deps;
    let jobs = &config.jobs;
    let mut runner = Runner::new(store.clone(), worker_id());

    let mut cleanup = CleanupJob::new(store.clone(), backends.clone());
    cleanup.period = Duration::from_secs(jobs.cleanup_period_secs);
    cleanup.lease = Duration::from_secs(jobs.cleanup_lease_secs);
    runner.add(Arc::new(cleanup));

    if config.replication.factor > 1 {
        let period = Duration::from_secs(config.replication.interval_secs);
        let (factor, b) = (config.replication.factor, backends.clone());
        let mut job = ReplicationJob::new(store.clone(), cp.clone(), b, factor, period);
        job.unhealthy_after = Duration::from_secs(config.replication.unhealthy_after_secs);
        // Breaker reports count for three report periods (at least a minute).
        job.health_window = Duration::from_secs((config.resilience.usage.flush_secs * 3).max(60));
        runner.add(Arc::new(job));
    }
    if let Some(sealer) = sealer {
        add_key_jobs(&mut runner, config, &store, &cp, &backends, sealer, guard);
    }
    if config.delta.compact_level > 0 {
        let scratch = config.delta.cache_dir(&config.data_dir).join("compact");
        let period = Duration::from_secs(jobs.delta_compact_period_secs);
        let job = DeltaCompactJob::new(
            store.clone(),
            cp.clone(),
            backends.clone(),
            scratch,
            config.delta.compact_level,
            period,
        );
        runner.add(Arc::new(job));
    }
    let mut gc = DeltaGcJob::new(store.clone());
    gc.period = Duration::from_secs(jobs.delta_gc_period_secs);
    gc.grace = Duration::from_secs(jobs.delta_gc_grace_secs);
    runner.add(Arc::new(gc));

    let mut stale = StaleMultipartJob::new(store.clone());
    stale.max_age = Duration::from_secs(jobs.multipart_max_age_secs);
    stale.period = Duration::from_secs(jobs.multipart_period_secs);
    stale.batch = jobs.expire_batch;
    runner.add(Arc::new(stale));
    if !config.lifecycle.is_empty() {
        let mut lifecycle = LifecycleJob::new(store.clone(), cp.clone(), config.lifecycle.clone());
        lifecycle.period = Duration::from_secs(jobs.lifecycle_period_secs);
        lifecycle.batch = jobs.expire_batch;
        runner.add(Arc::new(lifecycle));
    }

    let mut reaper = ReaperJob::new(store.clone(), backends.clone());
    reaper.min_age = Duration::from_secs(jobs.reaper_min_age_secs);
    reaper.period = Duration::from_secs(jobs.reaper_period_secs);
    runner.add(Arc::new(reaper));

    if jobs.reconcile_period_secs > 0 {
        let mut reconcile = strata_workers::ReconcileJob::new(
            store.clone(),
            backends.clone(),
            Duration::from_secs(jobs.reconcile_period_secs),
            Duration::from_secs(jobs.reconcile_grace_secs),
        );
        reconcile.keys_per_cycle = u64::from(jobs.reconcile_keys_per_cycle);
        runner.add(Arc::new(reconcile));
    }
    add_backend_jobs(&mut runner, config, &store, &cp, &backends);
    runner
}

/// This process as the holder of the job cycles it runs: `HOST:PID`.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// The re-wrap, scrub and encrypt-/decrypt-existing jobs.
fn add_key_jobs(
    runner: &mut Runner,
    config: &Config,
    store: &Arc<dyn MetaStore>,
    cp: &Arc<dyn ControlPlane>,
    backends: &Backends,
    sealer: Arc<Sealer>,
    guard: Option<Arc<strata_dataplane::Guard>>,
) {
    let jobs = &config.jobs;
    let period = Duration::from_secs(jobs.rewrite_period_secs);
    if let Some(kms) = sealer.kms().cloned() {
        runner.add(Arc::new(RewrapJob::new(
            store.clone(),
            kms,
            config.encryption.rewrap_batch,
            period,
        )));
    }
    if jobs.scrub_period_secs > 0 {
        // Blobs on a backend past its monthly egress limit wait for the next month.
        let readable: Readable = Arc::new(move |id: &str| guard.as_ref().is_none_or(|g| !g.egress_exhausted(id)));
        runner.add(Arc::new(IntegrityJob::new(
            store.clone(),
            cp.clone(),
            backends.clone(),
            jobs.scrub_objects_per_cycle,
            jobs.scrub_bytes_per_cycle,
            Duration::from_secs(jobs.scrub_period_secs),
            readable,
        )));
    }
    for kind in [RewriteKind::EncryptExisting, RewriteKind::DecryptExisting] {
        let s = sealer.clone();
        let seals: SealPolicy = Arc::new(move |bucket: &str, backend: &str| s.seals(bucket, backend));
        let job = RewriteJob::new(kind, store.clone(), cp.clone(), backends.clone(), seals, 32, period);
        runner.add(Arc::new(job));
    }
}

/// Drain, over-replication cleanup and (when enabled) rebalance (docs/drain.md).
fn add_backend_jobs(
    runner: &mut Runner,
    config: &Config,
    store: &Arc<dyn MetaStore>,
    cp: &Arc<dyn ControlPlane>,
    backends: &Backends,
) {
    let r = &config.rebalance;
    let period = Duration::from_secs(r.drain_period_secs);
    let mut drain = strata_workers::DrainJob::new(store.clone(), cp.clone(), backends.clone(), period);
    drain.concurrency = r.drain_concurrency;
    runner.add(Arc::new(drain));
    let period = Duration::from_secs(r.overreplication_period_secs);
    let factor = config.replication.factor;
    runner.add(Arc::new(strata_workers::OverReplicationJob::new(
        store.clone(),
        cp.clone(),
        factor,
        period,
    )));
    if r.enabled {
        let job = strata_workers::RebalanceJob::new(store.clone(), cp.clone(), backends.clone(), r.clone());
        runner.add(Arc::new(job));
    }
}
