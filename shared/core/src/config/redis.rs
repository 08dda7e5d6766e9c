//! The optional `redis:` section: shared usage counters for every data plane
//! (see docs/redis.md).

use serde::Deserialize;

/// Redis for usage counters shared by all data planes. Without this section
/// each data plane counts locally and the control plane sums the reports.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`; use `${REDIS_URL}` to keep a
    /// password out of the file. TLS (`rediss://`) is not supported.
    pub url: String,
    /// Prefix of every key Strata writes. Default `strata:`.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Milliseconds between two batches of counter increments (each batch
    /// also reads back the shared totals). Default 250.
    #[serde(default = "default_sync_ms")]
    pub sync_ms: u64,
    /// Milliseconds to open a connection. Default 1000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds to wait for an answer. Default 500.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// Consecutive failed batches that open the breaker (local counting).
    /// Default 3.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// Seconds an open breaker waits before one trial batch. Default 5.
    #[serde(default = "default_open_secs")]
    pub open_secs: u64,
}

fn default_prefix() -> String {
    "strata:".into()
}
fn default_sync_ms() -> u64 {
    250
}
fn default_connect_timeout_ms() -> u64 {
    1000
}
fn default_response_timeout_ms() -> u64 {
    500
}
fn default_failure_threshold() -> u32 {
    3
}
fn default_open_secs() -> u64 {
    5
}

impl RedisConfig {
    /// Every problem in the section, with the field and how to fix it.
    pub(super) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if self.url.starts_with("rediss://") {
            err(
                "redis.url",
                "TLS (`rediss://`) is not supported; use `redis://` on a private network".into(),
            );
        } else if !self.url.starts_with("redis://") {
            err(
                "redis.url",
                "must start with `redis://`, e.g. `redis://127.0.0.1:6379/0`".into(),
            );
        }
        if self.key_prefix.is_empty() || self.key_prefix.chars().any(char::is_whitespace) {
            err(
                "redis.key_prefix",
                "must be non-empty without spaces, e.g. `strata:`".into(),
            );
        }
        if !(10..=60_000).contains(&self.sync_ms) {
            err("redis.sync_ms", "must be between 10 and 60000; 250 is usual".into());
        }
        for (f, v) in [
            ("redis.connect_timeout_ms", self.connect_timeout_ms),
            ("redis.response_timeout_ms", self.response_timeout_ms),
        ] {
            if !(1..=60_000).contains(&v) {
                err(f, "must be between 1 and 60000 milliseconds".into());
            }
        }
        if self.failure_threshold == 0 {
            err("redis.failure_threshold", "must be at least 1; 3 is usual".into());
        }
        if self.open_secs == 0 || self.open_secs > 3600 {
            err(
                "redis.open_secs",
                "must be between 1 and 3600 seconds; 5 is usual".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Role};

    #[test]
    fn a_redis_section_is_parsed_and_checked() {
        let c = Config::from_yaml("redis: {url: 'redis://127.0.0.1:6379/0'}\n").unwrap();
        let r = c.redis.clone().unwrap();
        assert_eq!((r.key_prefix.as_str(), r.sync_ms, r.open_secs), ("strata:", 250, 5));
        c.validate(Role::All).unwrap();
        let bad = Config::from_yaml("redis: {url: 'rediss://h:1', sync_ms: 1, failure_threshold: 0}\n").unwrap();
        let errs = bad.validate(Role::All).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["redis.url", "redis.sync_ms", "redis.failure_threshold"]);
        assert!(errs[0].message.contains("redis://"), "{}", errs[0]);
        assert!(
            Config::from_yaml("redis: {url: 'redis://h', nope: 1}\n").is_err(),
            "unknown keys are errors"
        );
        assert!(Config::from_yaml("{}").unwrap().redis.is_none());
    }
}
