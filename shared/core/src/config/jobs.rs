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

pub(super) fn validate(j: &JobsConfig, errs: &mut Vec<ConfigError>) {
    for (name, v) in [
        ("reaper_min_age_secs", j.reaper_min_age_secs),
        ("reaper_period_secs", j.reaper_period_secs),
        ("cleanup_period_secs", j.cleanup_period_secs),
        ("cleanup_lease_secs", j.cleanup_lease_secs),
        ("rewrite_period_secs", j.rewrite_period_secs),
        ("delta_gc_period_secs", j.delta_gc_period_secs),
        ("delta_compact_period_secs", j.delta_compact_period_secs),
    ] {
        if v == 0 {
            errs.push(ConfigError::new(format!("jobs.{name}"), "must be at least 1 second"));
        }
    }
    if j.scrub_period_secs > 0 && (j.scrub_objects_per_cycle == 0 || j.scrub_bytes_per_cycle == 0) {
        errs.push(ConfigError::new(
            "jobs.scrub_objects_per_cycle",
            "scrub_objects_per_cycle and scrub_bytes_per_cycle must be at least 1 (set scrub_period_secs: 0 to turn scrubbing off)",
        ));
    }
}
