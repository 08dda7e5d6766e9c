use std::collections::HashSet;
use std::fmt;

use super::{BackendConfig, BackendLimits, Config, CredentialSource, Role};
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
        let postgres = matches!(self.database_target(), super::DatabaseTarget::Postgres { .. });
        if role == Role::Worker && !postgres {
            err(
                "database",
                "--role worker runs the jobs against a shared PostgreSQL database; set `database.url: postgres://...` \
                 (under SQLite the control plane runs the jobs itself and no worker is needed)"
                    .into(),
            );
        }
        if role == Role::Dataplane {
            let endpoints = self.control_plane.endpoints();
            if endpoints.is_empty() {
                err(
                    "control_plane.url",
                    format!(
                        "is required for --role {role}; set it (or `control_plane.urls`) or pass \
                         --control-plane http://HOST:PORT[,http://HOST2:PORT]"
                    ),
                );
            }
            for u in endpoints.iter().filter(|u| !u.starts_with("http://")) {
                err("control_plane.url", format!("`{u}` must start with http://"));
            }
        }
        self.validate_leadership(role, &mut err);
        self.database.validate(&mut err);
        if let Some(r) = &self.redis {
            r.validate(&mut err);
        }
        self.degraded.validate(&mut err);

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
            validate_backend(&field, b, &mut err);
        }

        let backend_ids: HashSet<String> = self.effective_backends().iter().map(|b| b.id().to_owned()).collect();
        for (bucket, pinned) in &self.placement.bucket_backends {
            let field = format!("placement.bucket_backends.{bucket}");
            if BucketName::new(bucket.clone()).is_err() {
                err(
                    &field,
                    format!("`{bucket}` is not a valid S3 bucket name (3-63 lowercase letters, digits, `.` or `-`)"),
                );
            }
            if pinned.is_empty() {
                err(
                    &field,
                    "lists no backend; give at least one backend id, or remove the bucket".into(),
                );
            }
            let mut seen = HashSet::new();
            for id in pinned {
                if !backend_ids.contains(id) {
                    let mut known: Vec<&str> = backend_ids.iter().map(String::as_str).collect();
                    known.sort_unstable();
                    err(
                        &field,
                        format!("backend `{id}` is not configured; known backends: {}", known.join(", ")),
                    );
                }
                if !seen.insert(id) {
                    err(&field, format!("backend `{id}` is listed twice"));
                }
            }
        }

        let modes: Vec<(String, Option<super::EncryptionMode>)> = self
            .effective_backends()
            .iter()
            .map(|b| (b.id().to_owned(), b.encryption()))
            .collect();
        self.encryption.validate(&modes, &mut err);

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
        super::resilience::validate(
            &self.resilience,
            &self.replication,
            self.effective_backends().len(),
            &mut errs,
        );
        super::jobs::validate(&self.jobs, &mut errs);
        super::worker::validate(&self.lifecycle, &mut errs);
        super::rebalance::validate(&self.rebalance, &mut errs);
        self.delta.validate(&mut errs);
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

/// Checks one backend's own fields (`field` is e.g. `backends[2]`).
impl Config {
    /// `control_plane.advertise_url`, `lease_secs` and `renew_secs` (docs/leadership.md).
    fn validate_leadership(&self, role: Role, err: &mut impl FnMut(&str, String)) {
        let cp = &self.control_plane;
        let postgres = matches!(self.database_target(), super::DatabaseTarget::Postgres { .. });
        match &cp.advertise_url {
            // Without it the lease publishes `http://<control_plane.listen>`, which
            // names no host when listening on all interfaces.
            None if role == Role::Controlplane && postgres && cp.listen.is_none_or(|l| l.ip().is_unspecified()) => err(
                "control_plane.advertise_url",
                "is required for --role controlplane under PostgreSQL when control_plane.listen is not one \
                 address: the URL data planes reach this process at, published when it leads, e.g. \
                 `http://10.0.0.5:9100`"
                    .into(),
            ),
            Some(u) if !u.starts_with("http://") => err(
                "control_plane.advertise_url",
                format!("`{u}` must start with http://, e.g. `http://10.0.0.5:9100`"),
            ),
            _ => {}
        }
        if cp.renew_secs == 0 {
            err("control_plane.renew_secs", "must be at least 1; 1 is usual".into());
        }
        if cp.lease_secs < 2 * cp.renew_secs.max(1) || cp.lease_secs > 300 {
            err(
                "control_plane.lease_secs",
                format!(
                    "is {}; use between twice `renew_secs` ({}) and 300, so a leader renews at least twice per \
                     lease; 5 is usual",
                    cp.lease_secs, cp.renew_secs
                ),
            );
        }
    }
}

fn validate_backend(field: &str, b: &BackendConfig, err: &mut impl FnMut(&str, String)) {
    match b {
        BackendConfig::Local { path, limits, .. } => {
            if path.as_os_str().is_empty() {
                err(&format!("{field}.path"), "must be a directory path".into());
            }
            validate_limits(field, limits, err);
        }
        BackendConfig::S3 {
            endpoint,
            region,
            bucket,
            prefix,
            credential_source,
            access_key_id,
            secret_access_key,
            connect_timeout_secs,
            read_timeout_secs,
            max_attempts,
            limits,
            ..
        } => {
            if let Err(why) = check_endpoint(endpoint) {
                err(
                    &format!("{field}.endpoint"),
                    format!(
                        "`{endpoint}` {why}; use e.g. `https://s3.us-east-1.amazonaws.com` or `http://127.0.0.1:9000`"
                    ),
                );
            }
            if region.is_empty() || !region.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                err(
                    &format!("{field}.region"),
                    format!("`{region}` is not a region name; use e.g. `us-east-1` (or `auto` for R2)"),
                );
            }
            if crate::BucketName::new(bucket.clone()).is_err() {
                err(
                    &format!("{field}.bucket"),
                    format!("`{bucket}` is not a valid S3 bucket name (3-63 lowercase letters, digits, `.` or `-`)"),
                );
            }
            if let Some(p) = prefix
                && (p.is_empty() || p.starts_with('/') || p.len() > 512 || p.chars().any(char::is_control))
            {
                err(
                    &format!("{field}.prefix"),
                    format!(
                        "`{p}` must be 1-512 characters, not start with `/` and have no control characters; e.g. `strata/`, or omit it"
                    ),
                );
            }
            match credential_source {
                CredentialSource::Static => {
                    if access_key_id.as_deref().is_none_or(str::is_empty) {
                        err(
                            &format!("{field}.access_key_id"),
                            "is required with `credential_source: static`; set it, e.g. `${S3_ACCESS_KEY_ID}`, or use `credential_source: default_chain`".into(),
                        );
                    }
                    if secret_access_key.as_ref().is_none_or(|s| s.expose().is_empty()) {
                        err(
                            &format!("{field}.secret_access_key"),
                            "is required with `credential_source: static`; set it, e.g. `${S3_SECRET_ACCESS_KEY}`, or use `credential_source: default_chain`".into(),
                        );
                    }
                }
                CredentialSource::DefaultChain => {
                    if access_key_id.is_some() {
                        err(
                            &format!("{field}.access_key_id"),
                            "is ignored with `credential_source: default_chain`; remove it, or use `credential_source: static`".into(),
                        );
                    }
                    if secret_access_key.is_some() {
                        err(
                            &format!("{field}.secret_access_key"),
                            "is ignored with `credential_source: default_chain`; remove it, or use `credential_source: static`".into(),
                        );
                    }
                }
            }
            if *connect_timeout_secs == 0 || *connect_timeout_secs > 600 {
                err(
                    &format!("{field}.connect_timeout_secs"),
                    "must be between 1 and 600 seconds; 10 is usual".into(),
                );
            }
            if *read_timeout_secs == 0 || *read_timeout_secs > 3600 {
                err(
                    &format!("{field}.read_timeout_secs"),
                    "must be between 1 and 3600 seconds; 120 is usual".into(),
                );
            }
            if *max_attempts == 0 || *max_attempts > 10 {
                err(
                    &format!("{field}.max_attempts"),
                    "must be between 1 and 10 (1 means no retries); 3 is usual".into(),
                );
            }
            validate_limits(field, limits, err);
        }
    }
}

fn validate_limits(field: &str, l: &BackendLimits, err: &mut impl FnMut(&str, String)) {
    let named = [
        ("max_object_size", l.max_object_size),
        ("quota_bytes", l.quota_bytes),
        ("api_request_limit", l.api_request_limit),
        ("egress_byte_limit", l.egress_byte_limit),
        ("ingress_byte_limit", l.ingress_byte_limit),
    ];
    for (name, v) in named {
        if v == Some(0) {
            err(
                &format!("{field}.limits.{name}"),
                "is 0, which would leave the backend unusable; give a positive number, or omit it for no limit".into(),
            );
        }
    }
    if let (Some(max), Some(quota)) = (l.max_object_size, l.quota_bytes)
        && max > quota
        && quota > 0
    {
        err(
            &format!("{field}.limits.max_object_size"),
            format!(
                "{max} is larger than limits.quota_bytes {quota}, a quota mix that cannot work; lower max_object_size to at most quota_bytes"
            ),
        );
    }
}

/// Checks that `u` is `http(s)://HOST[:PORT][/PATH]`; returns what is wrong.
fn check_endpoint(u: &str) -> Result<(), &'static str> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces");
    }
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not contain credentials; use access_key_id and secret_access_key");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("has an unclosed `[` in the host")?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err("has an invalid port");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoutingStrategy;

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

    const S3: &str = "backends:\n- type: s3\n  id: remote\n  endpoint: http://127.0.0.1:9000\n  bucket: strata-data\n";

    fn s3_errors(extra: &str) -> Vec<ConfigError> {
        let y = format!("{S3}{extra}");
        match Config::from_yaml(&y).unwrap().validate(Role::All) {
            Ok(()) => Vec::new(),
            Err(e) => e,
        }
    }

    fn has(errs: &[ConfigError], field: &str, text: &str) -> bool {
        errs.iter().any(|e| e.field == field && e.message.contains(text))
    }

    #[test]
    fn s3_backend_parses_with_defaults() {
        let y = format!("{S3}  access_key_id: AK\n  secret_access_key: SK\n");
        let c = Config::from_yaml(&y).unwrap();
        c.validate(Role::All).unwrap();
        let BackendConfig::S3 {
            region,
            force_path_style,
            credential_source,
            unsigned_payload,
            disable_checksum,
            strip_sdk_headers,
            prefix,
            max_attempts,
            limits,
            ..
        } = &c.backends[0]
        else {
            panic!("not s3: {:?}", c.backends[0]);
        };
        assert_eq!(region, "us-east-1");
        assert!(*force_path_style);
        assert_eq!(*credential_source, CredentialSource::Static);
        assert_eq!(*unsigned_payload, None);
        assert!(!disable_checksum && !strip_sdk_headers);
        assert_eq!(*prefix, None);
        assert_eq!(*max_attempts, 3);
        assert_eq!(*limits, BackendLimits::default());
    }

    #[test]
    fn s3_secret_is_redacted_in_debug() {
        let y = format!("{S3}  access_key_id: AK\n  secret_access_key: topsecretvalue\n");
        let c = Config::from_yaml(&y).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecretvalue"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn s3_unknown_keys_are_rejected() {
        let e = Config::from_yaml(&format!("{S3}  endpont: x\n")).unwrap_err();
        assert!(e[0].message.contains("unknown field `endpont`"), "{e:?}");
        let e = Config::from_yaml(&format!("{S3}  limits: {{quota: 5}}\n")).unwrap_err();
        assert!(e[0].message.contains("unknown field `quota`"), "{e:?}");
        let e = Config::from_yaml(&format!("{S3}  credential_source: env\n")).unwrap_err();
        assert!(e[0].message.contains("unknown variant `env`"), "{e:?}");
    }

    #[test]
    fn s3_endpoint_must_be_an_http_url() {
        let keys = "  access_key_id: AK\n  secret_access_key: SK\n";
        for bad in [
            "ftp://h",
            "127.0.0.1:9000",
            "http://",
            "http://h:port",
            "http://u:p@h",
            "https://h/?x=1",
            "http://a b",
        ] {
            let y = S3.replace("http://127.0.0.1:9000", &format!("'{bad}'"));
            let errs = Config::from_yaml(&format!("{y}{keys}"))
                .unwrap()
                .validate(Role::All)
                .unwrap_err();
            assert!(has(&errs, "backends[0].endpoint", "use e.g."), "{bad}: {errs:?}");
        }
        for good in [
            "https://s3.amazonaws.com",
            "http://[::1]:9000",
            "https://storage.googleapis.com/",
            "http://minio:9000/s3",
        ] {
            let y = S3.replace("http://127.0.0.1:9000", good);
            Config::from_yaml(&format!("{y}{keys}"))
                .unwrap()
                .validate(Role::All)
                .unwrap();
        }
    }

    #[test]
    fn s3_bucket_and_prefix_are_checked() {
        let keys = "  access_key_id: AK\n  secret_access_key: SK\n";
        let y = S3.replace("strata-data", "Bad_Bucket");
        let errs = Config::from_yaml(&format!("{y}{keys}"))
            .unwrap()
            .validate(Role::All)
            .unwrap_err();
        assert!(
            has(&errs, "backends[0].bucket", "not a valid S3 bucket name"),
            "{errs:?}"
        );
        let errs = s3_errors(&format!("{keys}  prefix: /abs/\n"));
        assert!(has(&errs, "backends[0].prefix", "not start with `/`"), "{errs:?}");
        assert!(s3_errors(&format!("{keys}  prefix: strata/\n")).is_empty());
    }

    #[test]
    fn s3_static_credentials_need_both_keys() {
        let errs = s3_errors("");
        assert!(has(&errs, "backends[0].access_key_id", "is required"), "{errs:?}");
        assert!(has(&errs, "backends[0].secret_access_key", "is required"), "{errs:?}");
        let errs = s3_errors("  access_key_id: AK\n");
        assert!(!has(&errs, "backends[0].access_key_id", ""), "{errs:?}");
        assert!(has(&errs, "backends[0].secret_access_key", "is required"), "{errs:?}");
    }

    #[test]
    fn s3_default_chain_refuses_leftover_static_keys() {
        assert!(s3_errors("  credential_source: default_chain\n").is_empty());
        let errs = s3_errors("  credential_source: default_chain\n  access_key_id: AK\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(has(&errs, "backends[0].access_key_id", "default_chain"), "{errs:?}");
        let errs = s3_errors("  credential_source: default_chain\n  secret_access_key: SK\n");
        assert!(has(&errs, "backends[0].secret_access_key", "remove it"), "{errs:?}");
    }

    #[test]
    fn s3_timeouts_and_attempts_are_bounded() {
        let keys = "  access_key_id: AK\n  secret_access_key: SK\n";
        let errs = s3_errors(&format!(
            "{keys}  connect_timeout_secs: 0\n  read_timeout_secs: 0\n  max_attempts: 0\n"
        ));
        for f in ["connect_timeout_secs", "read_timeout_secs", "max_attempts"] {
            assert!(
                has(&errs, &format!("backends[0].{f}"), "must be between"),
                "{f}: {errs:?}"
            );
        }
        assert!(s3_errors(&format!("{keys}  max_attempts: 1\n")).is_empty());
    }

    #[test]
    fn limits_must_be_positive_on_both_backend_types() {
        let local = "backends:\n- type: local\n  id: l\n  path: /x\n  limits:\n";
        for name in [
            "max_object_size",
            "quota_bytes",
            "api_request_limit",
            "egress_byte_limit",
            "ingress_byte_limit",
        ] {
            let errs = Config::from_yaml(&format!("{local}    {name}: 0\n"))
                .unwrap()
                .validate(Role::All)
                .unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(has(&errs, &format!("backends[0].limits.{name}"), "is 0"), "{errs:?}");
            let errs = s3_errors(&format!(
                "  access_key_id: AK\n  secret_access_key: SK\n  limits:\n    {name}: 0\n"
            ));
            assert!(
                has(&errs, &format!("backends[0].limits.{name}"), "positive number"),
                "{errs:?}"
            );
        }
        let all = format!(
            "{local}    max_object_size: 10\n    quota_bytes: 100\n    api_request_limit: 1\n    egress_byte_limit: 1\n    ingress_byte_limit: 1\n"
        );
        let c = Config::from_yaml(&all).unwrap();
        c.validate(Role::All).unwrap();
        assert_eq!(c.backends[0].limits().quota_bytes, Some(100));
    }

    const THREE: &str = "backends:\n- {type: local, id: a, path: /a}\n- {type: local, id: b, path: /b}\n- {type: local, id: c, path: /c}\n";

    #[test]
    fn placement_defaults_to_pack_without_pins() {
        let c = Config::from_yaml("{}").unwrap();
        assert_eq!(c.placement.routing_strategy, RoutingStrategy::Pack);
        assert!(c.placement.bucket_backends.is_empty());
        let c = Config::from_yaml(&format!(
            "{THREE}placement:\n  routing_strategy: spread\n  bucket_backends:\n    photos: [c, a]\n"
        ))
        .unwrap();
        c.validate(Role::All).unwrap();
        assert_eq!(c.placement.routing_strategy, RoutingStrategy::Spread);
        assert_eq!(c.placement.bucket_backends["photos"], ["c", "a"]);
    }

    #[test]
    fn unknown_routing_strategy_names_the_field() {
        let e = Config::from_yaml("placement:\n  routing_strategy: fill\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        let shown = e[0].to_string();
        assert!(shown.contains("placement.routing_strategy"), "{shown}");
        assert!(shown.contains("unknown variant `fill`"), "{shown}");
        let e = Config::from_yaml("placement:\n  strategy: pack\n").unwrap_err();
        assert!(e[0].message.contains("unknown field `strategy`"), "{e:?}");
    }

    #[test]
    fn bucket_pins_must_name_known_backends_and_valid_buckets() {
        let y = format!(
            "{THREE}placement:\n  bucket_backends:\n    photos: [a, zz]\n    Bad_Name: [b]\n    empty: []\n    twice: [a, a]\n"
        );
        let errs = Config::from_yaml(&y).unwrap().validate(Role::All).unwrap_err();
        assert!(
            has(
                &errs,
                "placement.bucket_backends.photos",
                "backend `zz` is not configured; known backends: a, b, c"
            ),
            "{errs:?}"
        );
        assert!(
            has(
                &errs,
                "placement.bucket_backends.Bad_Name",
                "not a valid S3 bucket name"
            ),
            "{errs:?}"
        );
        assert!(
            has(&errs, "placement.bucket_backends.empty", "lists no backend"),
            "{errs:?}"
        );
        assert!(
            has(&errs, "placement.bucket_backends.twice", "listed twice"),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        // With no backends configured, the embedded one is `local`.
        let c = Config::from_yaml("placement:\n  bucket_backends:\n    photos: [local]\n").unwrap();
        c.validate(Role::All).unwrap();
    }

    #[test]
    fn quota_zero_and_object_larger_than_quota_are_errors() {
        let keys = "  access_key_id: AK\n  secret_access_key: SK\n";
        let errs = s3_errors(&format!("{keys}  limits: {{quota_bytes: 0}}\n"));
        assert!(has(&errs, "backends[0].limits.quota_bytes", "is 0"), "{errs:?}");
        let errs = s3_errors(&format!("{keys}  limits: {{max_object_size: 101, quota_bytes: 100}}\n"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            has(
                &errs,
                "backends[0].limits.max_object_size",
                "a quota mix that cannot work"
            ),
            "{errs:?}"
        );
        assert!(s3_errors(&format!("{keys}  limits: {{max_object_size: 100, quota_bytes: 100}}\n")).is_empty());
    }

    #[test]
    fn leadership_settings_are_checked() {
        let secret = "cluster: {secret: 0123456789abcdef0123456789abcdef}\n";
        let pg = "database: {url: 'postgres://u@h/d'}\n";
        let cp = format!("{secret}{pg}control_plane: {{listen: '0.0.0.0:9100'}}\n");
        let errs = Config::from_yaml(&cp)
            .unwrap()
            .validate(Role::Controlplane)
            .unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.field == "control_plane.advertise_url" && e.message.contains("PostgreSQL")),
            "{errs:?}"
        );
        let ok = format!("{secret}{pg}control_plane: {{listen: '0.0.0.0:9100', advertise_url: 'http://h:9100'}}\n");
        Config::from_yaml(&ok).unwrap().validate(Role::Controlplane).unwrap();
        // A listen address of one host is published as it is.
        let ok = format!("{secret}{pg}control_plane: {{listen: '10.1.2.3:9100'}}\n");
        Config::from_yaml(&ok).unwrap().validate(Role::Controlplane).unwrap();
        let bad = format!("{secret}control_plane: {{lease_secs: 1, renew_secs: 1}}\n");
        let errs = Config::from_yaml(&bad).unwrap().validate(Role::All).unwrap_err();
        assert_eq!(errs[0].field, "control_plane.lease_secs", "{errs:?}");
        let dp =
            format!("{secret}control_plane: {{url: 'http://a:1,http://b:2', urls: ['http://b:2', 'http://c:3']}}\n");
        let c = Config::from_yaml(&dp).unwrap();
        c.validate(Role::Dataplane).unwrap();
        assert_eq!(c.control_plane.endpoints(), ["http://a:1", "http://b:2", "http://c:3"]);
        let dp = format!("{secret}control_plane: {{urls: ['ftp://x']}}\n");
        let errs = Config::from_yaml(&dp).unwrap().validate(Role::Dataplane).unwrap_err();
        assert!(errs[0].message.contains("must start with http://"), "{errs:?}");
    }
}
