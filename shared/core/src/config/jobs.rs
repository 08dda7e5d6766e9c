//! Schedules of the background jobs that keep the catalog and the backends in
//! step (cleanup of obsolete bytes, reaping of abandoned writes), and of the
//! integrity and key jobs (scrub, re-wrap, encrypt-/decrypt-existing).

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Write intents older than this are resolved by the reaper (promoted or
    /// dropped). It must exceed the longest single PUT. Default 3600.
    #[serde(default = "default_reaper_min_age")]
    pub reaper_min_age_secs: u64,
    /// Seconds between reaper passes when idle. Default 60.
    #[serde(default = "default_reaper_period")]
    pub reaper_period_secs: u64,
    /// Seconds between cleanup passes when idle. Default 5.
    #[serde(default = "default_cleanup_period")]
    pub cleanup_period_secs: u64,
    /// How long a worker holds a claimed cleanup row before another may take
    /// it (a crashed worker's rows come back after this). Default 600.
    #[serde(default = "default_cleanup_lease")]
    pub cleanup_lease_secs: u64,
    /// Seconds between scrub cycles (verify and backfill blob digests,
    /// repair corrupt copies); 0 turns scrubbing off. Default 600.
    #[serde(default = "default_scrub_period")]
    pub scrub_period_secs: u64,
    /// Objects a scrub cycle looks at. Default 100.
    #[serde(default = "default_scrub_objects")]
    pub scrub_objects_per_cycle: u32,
    /// Bytes a scrub cycle reads at most (they count against the backends'
    /// monthly egress limits). Default 1 GiB.
    #[serde(default = "default_scrub_bytes")]
    pub scrub_bytes_per_cycle: u64,
    /// Seconds between re-wrap and encrypt-/decrypt-existing cycles when
    /// idle. Default 10.
    #[serde(default = "default_rewrite_period")]
    pub rewrite_period_secs: u64,
    /// Seconds between passes that free deltaspace references no object
    /// needs any more. Default 300.
    #[serde(default = "default_delta_gc_period")]
    pub delta_gc_period_secs: u64,
    /// A reference is freed only when it has not been handed to a writer
    /// for this long (it must exceed the longest PUT). Default 3600.
    #[serde(default = "default_delta_gc_grace")]
    pub delta_gc_grace_secs: u64,
    /// Seconds between `delta-compact` passes when idle (references are
    /// recompressed one at a time, back to back, while any is waiting).
    /// Default 30.
    #[serde(default = "default_delta_compact_period")]
    pub delta_compact_period_secs: u64,
    /// Multipart uploads started longer ago than this are aborted by the
    /// stale-multipart job, and their parts' bytes queued for cleanup.
    /// Default 604800 (7 days).
    #[serde(default = "default_multipart_max_age")]
    pub multipart_max_age_secs: u64,
    /// Seconds between stale-multipart passes. Default 3600.
    #[serde(default = "default_multipart_period")]
    pub multipart_period_secs: u64,
    /// Seconds between lifecycle expiration passes (see `lifecycle:`).
    /// Default 3600.
    #[serde(default = "default_lifecycle_period")]
    pub lifecycle_period_secs: u64,
    /// Uploads aborted, or objects expired, at most per cycle of those jobs
    /// (the next cycle follows at once while more are waiting). Default 1000.
    #[serde(default = "default_expire_batch")]
    pub expire_batch: u32,
    /// Seconds between reconciler passes over each backend (its listing
    /// merged against the catalog: orphans are queued for cleanup, lost
    /// copies re-replicated); 0 turns the reconciler off. Default 86400.
    #[serde(default = "default_reconcile_period")]
    pub reconcile_period_secs: u64,
    /// A blob no catalog row names is queued for cleanup only once its
    /// backend's last-modified time is at least this old (younger ones may
    /// be writes in flight). Default 3600.
    #[serde(default = "default_reconcile_grace")]
    pub reconcile_grace_secs: u64,
    /// Backend keys the reconciler looks at per backend and cycle; a pass
    /// over a larger backend resumes from its cursor. Default 10000.
    #[serde(default = "default_reconcile_keys")]
    pub reconcile_keys_per_cycle: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            reaper_min_age_secs: default_reaper_min_age(),
            reaper_period_secs: default_reaper_period(),
            cleanup_period_secs: default_cleanup_period(),
            cleanup_lease_secs: default_cleanup_lease(),
            scrub_period_secs: default_scrub_period(),
            scrub_objects_per_cycle: default_scrub_objects(),
            scrub_bytes_per_cycle: default_scrub_bytes(),
            rewrite_period_secs: default_rewrite_period(),
            delta_gc_period_secs: default_delta_gc_period(),
            delta_gc_grace_secs: default_delta_gc_grace(),
            delta_compact_period_secs: default_delta_compact_period(),
            multipart_max_age_secs: default_multipart_max_age(),
            multipart_period_secs: default_multipart_period(),
            lifecycle_period_secs: default_lifecycle_period(),
            expire_batch: default_expire_batch(),
            reconcile_period_secs: default_reconcile_period(),
            reconcile_grace_secs: default_reconcile_grace(),
            reconcile_keys_per_cycle: default_reconcile_keys(),
        }
    }
}

fn default_reaper_min_age() -> u64 {
    3600
}
fn default_reaper_period() -> u64 {
    60
}
fn default_cleanup_period() -> u64 {
    5
}
fn default_cleanup_lease() -> u64 {
    600
}
fn default_scrub_period() -> u64 {
    600
}
fn default_scrub_objects() -> u32 {
    100
}
fn default_scrub_bytes() -> u64 {
    1 << 30
}
fn default_rewrite_period() -> u64 {
    10
}
fn default_delta_gc_period() -> u64 {
    300
}
fn default_delta_gc_grace() -> u64 {
    3600
}
fn default_delta_compact_period() -> u64 {
    30
}
fn default_multipart_max_age() -> u64 {
    7 * 86_400
}
fn default_multipart_period() -> u64 {
    3600
}
fn default_lifecycle_period() -> u64 {
    3600
}
fn default_expire_batch() -> u32 {
    1000
}
fn default_reconcile_period() -> u64 {
    86400
}
fn default_reconcile_grace() -> u64 {
    3600
}
fn default_reconcile_keys() -> u32 {
    10000
}

pub(super) fn validate(j: &JobsConfig, errs: &mut Vec<ConfigError>) {
    for (name, v) in [
        ("reaper_min_age_secs", j.reaper_min_age_secs),
        ("reaper_period_secs", j.reaper_period_secs),
        ("cleanup_period_secs", j.cleanup_period_secs),
        ("cleanup_lease_secs", j.cleanup_lease_secs),
        ("rewrite_period_secs", j.rewrite_period_secs),
        ("delta_gc_period_secs", j.delta_gc_period_secs),
        ("delta_compact_period_secs", j.delta_compact_period_secs),
        ("multipart_max_age_secs", j.multipart_max_age_secs),
        ("multipart_period_secs", j.multipart_period_secs),
        ("lifecycle_period_secs", j.lifecycle_period_secs),
    ] {
        if v == 0 {
            errs.push(ConfigError::new(format!("jobs.{name}"), "must be at least 1 second"));
        }
    }
    if j.reconcile_period_secs > 0 && j.reconcile_grace_secs == 0 {
        errs.push(ConfigError::new(
            "jobs.reconcile_grace_secs",
            "must be at least 1 second (blobs younger than this may be writes in flight; 3600 is safe), or set reconcile_period_secs: 0 to turn the reconciler off",
        ));
    }
    if j.reconcile_period_secs > 0 && j.reconcile_keys_per_cycle == 0 {
        errs.push(ConfigError::new(
            "jobs.reconcile_keys_per_cycle",
            "must be at least 1 (default 10000), or set reconcile_period_secs: 0 to turn the reconciler off",
        ));
    }
    if j.expire_batch == 0 {
        errs.push(ConfigError::new(
            "jobs.expire_batch",
            "must be at least 1 (uploads aborted or objects expired per cycle; default 1000)",
        ));
    }
    if j.scrub_period_secs > 0 && (j.scrub_objects_per_cycle == 0 || j.scrub_bytes_per_cycle == 0) {
        errs.push(ConfigError::new(
            "jobs.scrub_objects_per_cycle",
            "scrub_objects_per_cycle and scrub_bytes_per_cycle must be at least 1 (set scrub_period_secs: 0 to turn scrubbing off)",
        ));
    }
}
