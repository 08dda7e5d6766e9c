//! The `degraded:` section: how the control plane behaves when its metadata
//! database is unreachable (see docs/degraded-mode.md).

use serde::Deserialize;

/// The control plane's breaker around the metadata database and the cache of
/// lookups it serves reads from while the database is down.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DegradedConfig {
    /// Consecutive "database unavailable" errors that open the breaker.
    /// Default 3.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// Seconds an open breaker fails fast before one probe call. Default 2.
    #[serde(default = "default_open_secs")]
    pub open_secs: u64,
    /// Milliseconds a metadata read (locate, bucket, credential) may take
    /// before it counts as a failure. Writes are never cut short. Default 2000.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Seconds a cached lookup is served while the database is unreachable.
    /// Default 300.
    #[serde(default = "default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Most cached lookups (objects, buckets and credentials together).
    /// Default 10000.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
}

impl Default for DegradedConfig {
    fn default() -> Self {
        DegradedConfig {
            failure_threshold: default_failure_threshold(),
            open_secs: default_open_secs(),
            read_timeout_ms: default_read_timeout_ms(),
            cache_ttl_secs: default_cache_ttl_secs(),
            cache_entries: default_cache_entries(),
        }
    }
}

fn default_failure_threshold() -> u32 {
    3
}
fn default_open_secs() -> u64 {
    2
}
fn default_read_timeout_ms() -> u64 {
    2000
}
fn default_cache_ttl_secs() -> u64 {
    300
}
fn default_cache_entries() -> usize {
    10_000
}

impl DegradedConfig {
    /// Every problem in the section, with the field and how to fix it.
    pub(super) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if self.failure_threshold == 0 {
            err("degraded.failure_threshold", "must be at least 1; 3 is usual".into());
        }
        if self.open_secs == 0 || self.open_secs > 3600 {
            err(
                "degraded.open_secs",
                "must be between 1 and 3600 seconds; 2 is usual".into(),
            );
        }
        if !(10..=60_000).contains(&self.read_timeout_ms) {
            err(
                "degraded.read_timeout_ms",
                "must be between 10 and 60000; 2000 is usual".into(),
            );
        }
        if self.cache_ttl_secs > 86_400 {
            err(
                "degraded.cache_ttl_secs",
                "must be at most 86400 (a day); 0 turns the cache off".into(),
            );
        }
        if self.cache_entries > 10_000_000 {
            err("degraded.cache_entries", "must be at most 10000000".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Role};

    #[test]
    fn the_degraded_section_has_defaults_and_is_checked() {
        let c = Config::from_yaml("{}").unwrap();
        assert_eq!((c.degraded.cache_ttl_secs, c.degraded.failure_threshold), (300, 3));
        let bad = Config::from_yaml("degraded: {open_secs: 0, read_timeout_ms: 5}\n").unwrap();
        let errs = bad.validate(Role::All).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["degraded.open_secs", "degraded.read_timeout_ms"]);
        assert!(
            Config::from_yaml("degraded: {ttl: 1}\n").is_err(),
            "unknown keys are errors"
        );
    }
}
