//! Schedules of the background jobs that keep the catalog and the backends in
//! step (cleanup of obsolete bytes, reaping of abandoned writes).

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
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            reaper_min_age_secs: default_reaper_min_age(),
            reaper_period_secs: default_reaper_period(),
            cleanup_period_secs: default_cleanup_period(),
            cleanup_lease_secs: default_cleanup_lease(),
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

pub(super) fn validate(j: &JobsConfig, errs: &mut Vec<ConfigError>) {
    for (name, v) in [
        ("reaper_min_age_secs", j.reaper_min_age_secs),
        ("reaper_period_secs", j.reaper_period_secs),
        ("cleanup_period_secs", j.cleanup_period_secs),
        ("cleanup_lease_secs", j.cleanup_lease_secs),
    ] {
        if v == 0 {
            errs.push(ConfigError::new(format!("jobs.{name}"), "must be at least 1 second"));
        }
    }
}
