use std::collections::HashSet;
use std::fmt;

use super::{BackendConfig, Config, Role};
use crate::BucketName;

/// One problem in a configuration: the field, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

pub const MIN_SECRET_LEN: usize = 32;

impl Config {
    /// Checks the whole configuration for `role` and returns every problem found.
    pub fn validate(&self, role: Role) -> Result<(), Vec<ConfigError>> {
        let mut errs = Vec::new();
        let mut err = |f: &str, m: String| errs.push(ConfigError::new(f, m));

        if self.server.region.is_empty() {
            err("server.region", "must not be empty; use e.g. `us-east-1`".into());
        }
        if let Some(d) = &self.server.domain
            && (d.is_empty() || d.starts_with('.') || d.contains('/'))
        {
            {
                err(
                    "server.domain",
                    format!("`{d}` is not a host name; use e.g. `s3.example.com`"),
                );
            }
        }
        if self.server.clock_skew_secs == 0 || self.server.clock_skew_secs > 7 * 24 * 3600 {
            err(
                "server.clock_skew_secs",
                "must be between 1 and 604800 seconds; 900 is usual".into(),
            );
        }

        let needs_secret = role != Role::All || self.control_plane.listen.is_some();
        match &self.cluster.secret {
            Some(s) if s.len() < MIN_SECRET_LEN => err(
                "cluster.secret",
                format!(
                    "is {} characters; use at least {MIN_SECRET_LEN}, e.g. from `openssl rand -hex 32`",
                    s.len()
                ),
            ),
            None if needs_secret => err(
                "cluster.secret",
                format!(
                    "is required for --role {role} or when control_plane.listen is set; set it to `${{STRATA_CLUSTER_SECRET}}`"
                ),
            ),
            _ => {}
        }
        if role == Role::Controlplane && self.control_plane.listen.is_none() {
            err(
                "control_plane.listen",
                "is required for --role controlplane; e.g. `0.0.0.0:9100`".into(),
            );
        }
        if matches!(role, Role::Dataplane | Role::Worker) {
            match &self.control_plane.url {
                None => err(
                    "control_plane.url",
                    format!("is required for --role {role}; set it or pass --control-plane http://HOST:PORT"),
                ),
                Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => err(
                    "control_plane.url",
                    format!("`{u}` must start with http:// or https://"),
                ),
                _ => {}
            }
        }
        if let Some(url) = &self.database.url
            && !url.starts_with("sqlite:")
        {
            {
                err(
                    "database.url",
                    format!("`{url}`: only `sqlite://PATH` is supported in this version"),
                );
            }
        }

        let mut ids = HashSet::new();
        for (i, b) in self.backends.iter().enumerate() {
            let field = format!("backends[{i}]");
            let id = b.id();
            if id.is_empty() || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                err(
                    &format!("{field}.id"),
                    format!("`{id}` must be non-empty letters, digits, `-` or `_`"),
                );
            }
            if !ids.insert(id.to_owned()) {
                err(
                    &format!("{field}.id"),
                    format!("`{id}` is used twice; backend ids must be unique"),
                );
            }
            match b {
                BackendConfig::Local { path, .. } => {
                    if path.as_os_str().is_empty() {
                        err(&format!("{field}.path"), "must be a directory path".into());
                    }
                }
            }
        }

        let mut keys = HashSet::new();
        for (i, c) in self.credentials.iter().enumerate() {
            let field = format!("credentials[{i}]");
            if c.access_key_id.len() < 3 || !c.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                err(
                    &format!("{field}.access_key_id"),
                    "must be at least 3 letters or digits".into(),
                );
            }
            if !keys.insert(c.access_key_id.clone()) {
                err(
                    &format!("{field}.access_key_id"),
                    "is used twice; access keys must be unique".into(),
                );
            }
            if c.secret_access_key.len() < 8 {
                err(
                    &format!("{field}.secret_access_key"),
                    "must be at least 8 characters".into(),
                );
            }
            match (c.unrestricted, c.buckets.is_empty()) {
                (true, false) => err(
                    &format!("{field}.buckets"),
                    "give either `unrestricted: true` or a `buckets` list, not both".into(),
                ),
                (false, true) => err(
                    &format!("{field}.buckets"),
                    "list the buckets this key may reach, or set `unrestricted: true`".into(),
                ),
                _ => {}
            }
            for b in &c.buckets {
                if BucketName::new(b.clone()).is_err() {
                    err(
                        &format!("{field}.buckets"),
                        format!("`{b}` is not a valid S3 bucket name"),
                    );
                }
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_valid_for_all() {
        Config::from_yaml("{}").unwrap().validate(Role::All).unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::from_yaml("server:\n  listn: 1.2.3.4:5\n").unwrap_err();
        assert!(e[0].message.contains("unknown field `listn`"), "{e:?}");
        let e = Config::from_yaml("backends:\n- type: local\n  id: a\n  path: /x\n  pth: 1\n").unwrap_err();
        assert!(e[0].message.contains("unknown field"), "{e:?}");
    }

    #[test]
    fn every_error_is_reported() {
        let y = "server: {region: ''}\ncredentials:\n- {access_key_id: a, secret_access_key: s}\n";
        let errs = Config::from_yaml(y).unwrap().validate(Role::Dataplane).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "server.region",
            "cluster.secret",
            "control_plane.url",
            "credentials[0].access_key_id",
            "credentials[0].secret_access_key",
            "credentials[0].buckets",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }
}
