//! Data-plane resilience (circuit breakers, usage reporting, write failover)
//! and background replication settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// How a data plane copes with failing or limited backends.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResilienceConfig {
    #[serde(default)]
    pub breaker: BreakerConfig,
    #[serde(default)]
    pub usage: UsageConfig,
    #[serde(default)]
    pub failover: FailoverConfig,
}

/// Per-backend circuit breaker, driven by the outcome of real requests.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures (timeouts, 5xx, connection errors; never a 404)
    /// that open the breaker. Default 5.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// Seconds an open breaker waits before letting one trial request through
    /// (half-open). Default 10.
    #[serde(default = "default_open_secs")]
    pub open_secs: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: default_failure_threshold(),
            open_secs: default_open_secs(),
        }
    }
}

fn default_failure_threshold() -> u32 {
    5
}
fn default_open_secs() -> u64 {
    10
}

/// Monthly usage accounting (API requests, egress, ingress per backend).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// Seconds between usage reports to the control plane. Reports come
    /// faster (down to 1 s) when a backend is near one of its limits. Default 10.
    #[serde(default = "default_flush_secs")]
    pub flush_secs: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            flush_secs: default_flush_secs(),
        }
    }
}

fn default_flush_secs() -> u64 {
    10
}

/// Write failover: when the chosen backend fails before a body is complete,
/// the write moves to the next eligible backend. Bodies are spooled to a
/// bounded temp file so they can be replayed without holding them in memory.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where bodies are spooled. Default `<data_dir>/spool`.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Largest body spooled for failover, in bytes; larger bodies stream
    /// straight to one backend without failover. Default 256 MiB.
    #[serde(default = "default_max_spool_bytes")]
    pub max_spool_bytes: u64,
    /// Backends tried per write, the first included. Default 3.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            enabled: true,
            spool_dir: None,
            max_spool_bytes: default_max_spool_bytes(),
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_max_spool_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_attempts() -> u32 {
    3
}

/// Background replication: every object is kept on `factor` backends.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Copies of each object, the first included. 1 (the default) turns
    /// replication off; at most the number of backends.
    #[serde(default = "default_factor")]
    pub factor: u32,
    /// Seconds between replication passes. Default 5.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Seconds a backend's circuit breaker must have stayed open (or
    /// half-open) in some data plane before its copies stop counting toward
    /// `factor`, so that the job makes further copies on healthy backends.
    /// Default 300.
    #[serde(default = "default_unhealthy_after_secs")]
    pub unhealthy_after_secs: u64,
    /// Copies a PUT or CopyObject writes, in parallel and on distinct
    /// backends, before it is acknowledged. 1 (the default) acknowledges after
    /// one copy and leaves the rest to the background job; N > 1 answers 503
    /// SlowDown, and keeps the previous version, when N copies cannot be
    /// written. At most `factor`.
    #[serde(default = "default_write_quorum")]
    pub write_quorum: u32,
    /// Per-bucket `write_quorum`, overriding the default for the named
    /// buckets (e.g. `{invoices: 2}`); each at most `factor`.
    #[serde(default)]
    pub bucket_write_quorum: std::collections::BTreeMap<String, u32>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            factor: default_factor(),
            interval_secs: default_interval_secs(),
            unhealthy_after_secs: default_unhealthy_after_secs(),
            write_quorum: default_write_quorum(),
            bucket_write_quorum: Default::default(),
        }
    }
}

fn default_unhealthy_after_secs() -> u64 {
    300
}
fn default_write_quorum() -> u32 {
    1
}

fn default_factor() -> u32 {
    1
}
fn default_interval_secs() -> u64 {
    5
}

/// Checks these sections; `backends` is the number of configured backends.
pub(super) fn validate(r: &ResilienceConfig, rep: &ReplicationConfig, backends: usize, errs: &mut Vec<ConfigError>) {
    let mut err = |f: &str, m: String| errs.push(ConfigError::new(f, m));
    if r.breaker.failure_threshold == 0 {
        err(
            "resilience.breaker.failure_threshold",
            "must be at least 1; 5 is usual".into(),
        );
    }
    if r.breaker.open_secs == 0 || r.breaker.open_secs > 3600 {
        err(
            "resilience.breaker.open_secs",
            "must be between 1 and 3600; 10 is usual".into(),
        );
    }
    if r.usage.flush_secs == 0 || r.usage.flush_secs > 3600 {
        err(
            "resilience.usage.flush_secs",
            "must be between 1 and 3600; 10 is usual".into(),
        );
    }
    if r.failover.max_attempts == 0 {
        err(
            "resilience.failover.max_attempts",
            "must be at least 1; 3 is usual".into(),
        );
    }
    if rep.factor == 0 || rep.factor as usize > backends.max(1) {
        err(
            "replication.factor",
            format!(
                "is {}; it must be between 1 and the number of backends ({backends})",
                rep.factor
            ),
        );
    }
    if rep.interval_secs == 0 {
        err("replication.interval_secs", "must be at least 1".into());
    }
    if rep.unhealthy_after_secs == 0 {
        err(
            "replication.unhealthy_after_secs",
            "must be at least 1; 300 is usual (a few seconds only in tests)".into(),
        );
    }
    if rep.write_quorum == 0 || rep.write_quorum > rep.factor.max(1) {
        err(
            "replication.write_quorum",
            format!(
                "is {}; it must be between 1 and replication.factor ({}): raise the factor or lower the quorum",
                rep.write_quorum, rep.factor
            ),
        );
    }
    for (bucket, &n) in &rep.bucket_write_quorum {
        if n == 0 || n > rep.factor.max(1) {
            err(
                &format!("replication.bucket_write_quorum.{bucket}"),
                format!(
                    "is {n}; it must be between 1 and replication.factor ({}): raise the factor or lower the quorum",
                    rep.factor
                ),
            );
        }
    }
}
