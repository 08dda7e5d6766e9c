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

#[cfg(test)]
mod tests {
    use crate::config::{Config, Role};

    fn errors(yaml: &str, role: Role) -> Vec<String> {
        match Config::from_yaml(yaml) {
            Ok(c) => c.validate(role).err().unwrap_or_default(),
            Err(e) => e,
        }
        .into_iter()
        .map(|e| e.to_string())
        .collect()
    }

    #[test]
    fn lifecycle_rules_and_worker_listen_parse() {
        let c = Config::from_yaml(
            "worker: {listen: 127.0.0.1:9300}\nlifecycle:\n- {bucket: logs, prefix: tmp/, expire_after_days: 2}\n\
             - {bucket: scratch, expire_after_secs: 5}\n",
        )
        .unwrap();
        c.validate(Role::All).unwrap();
        assert_eq!(c.worker.listen.unwrap().port(), 9300);
        assert_eq!(c.lifecycle[0].max_age_ms(), 2 * 86_400_000);
        assert_eq!(
            (c.lifecycle[1].prefix.as_str(), c.lifecycle[1].max_age_ms()),
            ("", 5_000)
        );
    }

    #[test]
    fn bad_lifecycle_rules_say_how_to_fix() {
        let e = errors(
            "lifecycle:\n- {bucket: Bad_Name, expire_after_days: 1}\n- {bucket: ok-bucket}\n\
             - {bucket: ok-bucket, expire_after_days: 1, expire_after_secs: 1}\n- {bucket: ok-bucket, expire_after_secs: 0}\n",
            Role::All,
        );
        assert!(e.iter().any(|m| m.starts_with("lifecycle[0].bucket:")), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.starts_with("lifecycle[1].expire_after_days: is required")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("lifecycle[2].expire_after_days: give either")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("lifecycle[3].expire_after_days: must be at least 1")),
            "{e:?}"
        );
        let e = errors(
            "lifecycle:\n- {bucket: b1, prefx: x, expire_after_days: 1}\n",
            Role::All,
        );
        assert!(e.iter().any(|m| m.contains("unknown field `prefx`")), "{e:?}");
    }

    #[test]
    fn the_worker_role_needs_postgres() {
        let secret = "cluster: {secret: 0123456789abcdef0123456789abcdef}\n";
        let e = errors(secret, Role::Worker);
        assert!(
            e.iter()
                .any(|m| m.starts_with("database:") && m.contains("postgres://")),
            "{e:?}"
        );
        let pg = format!("{secret}database: {{url: 'postgres://u@h/db'}}\n");
        assert_eq!(errors(&pg, Role::Worker), Vec::<String>::new());
    }
}
