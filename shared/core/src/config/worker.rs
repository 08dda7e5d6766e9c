//! The worker role's own settings (`worker:`) and the lifecycle rules
//! (`lifecycle:`) its lifecycle job applies.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;
use crate::BucketName;

/// `worker:`: what a `--role worker` process serves besides running jobs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// HTTP address for `/health`, `/ready`, `/metrics` and `/status/jobs`
    /// (plus `POST /status/jobs/NAME/cancel` and `/start`), e.g.
    /// `0.0.0.0:9300`. Off when unset.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// One lifecycle expiration rule: current objects of `bucket` whose key
/// starts with `prefix` are deleted once they are older than the age.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRule {
    /// The bucket the rule applies to.
    pub bucket: String,
    /// Key prefix, matched literally; empty (the default) is the whole bucket.
    #[serde(default)]
    pub prefix: String,
    /// Age in days after the object's last write at which it is deleted.
    #[serde(default)]
    pub expire_after_days: Option<u64>,
    /// The same in seconds (for tests and short-lived scratch data); give
    /// one of the two.
    #[serde(default)]
    pub expire_after_secs: Option<u64>,
}

impl LifecycleRule {
    /// The age after which an object expires, in milliseconds.
    pub fn max_age_ms(&self) -> i64 {
        let secs = match (self.expire_after_days, self.expire_after_secs) {
            (Some(d), _) => d.saturating_mul(86_400),
            (None, Some(s)) => s,
            (None, None) => u64::MAX / 1000,
        };
        i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

pub(super) fn validate(rules: &[LifecycleRule], errs: &mut Vec<ConfigError>) {
    for (i, r) in rules.iter().enumerate() {
        let field = format!("lifecycle[{i}]");
        if BucketName::new(r.bucket.clone()).is_err() {
            errs.push(ConfigError::new(
                format!("{field}.bucket"),
                format!(
                    "`{}` is not a valid S3 bucket name (3-63 lowercase letters, digits, `.` or `-`)",
                    r.bucket
                ),
            ));
        }
        match (r.expire_after_days, r.expire_after_secs) {
            (Some(_), Some(_)) => errs.push(ConfigError::new(
                format!("{field}.expire_after_days"),
                "give either expire_after_days or expire_after_secs, not both",
            )),
            (None, None) => errs.push(ConfigError::new(
                format!("{field}.expire_after_days"),
                "is required: the age at which objects expire, e.g. `expire_after_days: 30`",
            )),
            (Some(0), None) | (None, Some(0)) => errs.push(ConfigError::new(
                format!("{field}.expire_after_days"),
                "must be at least 1 (0 would delete every object as soon as it is written)",
            )),
            _ => {}
        }
    }
}
