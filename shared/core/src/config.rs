//! Typed, strict configuration: YAML with `${ENV}` expansion, unknown keys
//! rejected, and one [`Config::validate`] whose errors say how to fix them.

mod database;
mod degraded;
mod delta;
mod encryption;
mod env;
mod jobs;
mod lenient;
mod rebalance;
mod redis;
mod resilience;
mod worker;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub use database::{
    DEFAULT_PG_MAX_CONNECTIONS, DEFAULT_PG_PORT, DatabaseConfig, DatabaseTarget, redact_url, scrub as scrub_secrets,
};
pub use degraded::DegradedConfig;
pub use delta::{DeltaConfig, DeltaRule, DeltaSwitch, MEDIA_SUFFIXES, glob_match};
pub use encryption::{EncryptionConfig, EncryptionMode, KeyConfig};
pub use env::expand_env;
pub use jobs::JobsConfig;
pub use rebalance::{RebalanceConfig, RebalanceStrategy};
pub use redis::RedisConfig;
pub use resilience::{BreakerConfig, FailoverConfig, ReplicationConfig, ResilienceConfig, UsageConfig};
pub use worker::{LifecycleRule, WorkerConfig};

/// Which parts of Strata a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Data plane, control plane and workers in one process (the embedded default).
    All,
    Dataplane,
    Controlplane,
    Worker,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "all" => Some(Role::All),
            "dataplane" => Some(Role::Dataplane),
            "controlplane" => Some(Role::Controlplane),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }

    pub fn runs_dataplane(self) -> bool {
        matches!(self, Role::All | Role::Dataplane)
    }

    pub fn runs_controlplane(self) -> bool {
        matches!(self, Role::All | Role::Controlplane)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::All => "all",
            Role::Dataplane => "dataplane",
            Role::Controlplane => "controlplane",
            Role::Worker => "worker",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the embedded defaults: the SQLite database and the default
    /// local-disk backend live under it. Default `./strata-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub control_plane: ControlPlaneConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// The metadata store: SQLite (default, `DATA_DIR/meta.db`) or PostgreSQL,
    /// by `url` or by `host`/`port`/`user`/`password`/`dbname`.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Storage backends. When empty, one local-disk backend under `data_dir/objects`.
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    /// How new objects are spread over the backends.
    #[serde(default)]
    pub placement: PlacementConfig,
    /// Access keys. When empty, the control plane creates one unrestricted
    /// development credential on first start and prints it once.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Circuit breakers, usage reporting and write failover (data plane).
    #[serde(default)]
    pub resilience: ResilienceConfig,
    /// Background replication (workers).
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// Schedules of the cleanup and reaper jobs.
    #[serde(default)]
    pub jobs: JobsConfig,
    /// The worker role's HTTP endpoint (`--role worker`).
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Lifecycle expiration rules, applied by the workers' lifecycle job.
    #[serde(default)]
    pub lifecycle: Vec<LifecycleRule>,
    /// The rebalance job (off by default) and the drain and
    /// over-replication cleanup schedules (docs/drain.md).
    #[serde(default)]
    pub rebalance: RebalanceConfig,
    /// Encryption at rest: modes and master keys (control plane).
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// Delta compression of versioned artifacts (control plane policy, data
    /// plane encoding). Off unless enabled or turned on by a rule.
    #[serde(default)]
    pub delta: DeltaConfig,
    /// Optional Redis for usage counters shared by all data planes
    /// (docs/redis.md). Without it, data planes count locally.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// The control plane's breaker and read cache for when the metadata
    /// database is unreachable (docs/degraded-mode.md).
    #[serde(default)]
    pub degraded: DegradedConfig,
}

impl Default for Config {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("empty config deserializes")
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./strata-data")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the S3 endpoint (and `/health`, `/ready`, `/metrics`). Default `127.0.0.1:9000`.
    #[serde(default = "default_s3_listen")]
    pub listen: SocketAddr,
    /// The region clients must sign for. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Base domain for virtual-host-style addressing (`bucket.DOMAIN`). Unset: path style only.
    #[serde(default)]
    pub domain: Option<String>,
    /// Largest accepted difference between a request's signing time and ours, in seconds. Default 900.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_secs: u32,
    /// Seconds to let in-flight requests finish after SIGTERM. Default 30.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("empty server config deserializes")
    }
}

fn default_s3_listen() -> SocketAddr {
    "127.0.0.1:9000".parse().expect("valid address")
}
fn default_region() -> String {
    "us-east-1".to_owned()
}
fn default_clock_skew() -> u32 {
    900
}
fn default_shutdown_grace() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneConfig {
    /// gRPC listen address of the control plane. Required for `--role controlplane`;
    /// under `--role all` gRPC is served only when set.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Control-plane URL a data plane connects to, e.g. `http://10.0.0.5:9100`;
    /// several may be given separated by commas. Required for `--role dataplane`
    /// unless `urls` is set (or pass `--control-plane URL[,URL...]`).
    #[serde(default)]
    pub url: Option<String>,
    /// Every control-plane URL a data plane may reach; it follows whichever
    /// leads (docs/leadership.md). Merged with `url`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// The URL data planes reach this control plane at, published in the
    /// leader lease so followers can name the leader, e.g.
    /// `http://10.0.0.5:9100`. Required for `--role controlplane` under PostgreSQL.
    #[serde(default)]
    pub advertise_url: Option<String>,
    /// Seconds a leader lease lasts without renewal; a killed leader is
    /// replaced after about this long. Default 5.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Seconds between lease renewals (and, on followers, takeover attempts).
    /// Must be less than half of `lease_secs`. Default 1.
    #[serde(default = "default_renew_secs")]
    pub renew_secs: u64,
    /// Address of the control plane's HTTP endpoint: `/health`, `/metrics`
    /// (`strata_cp_is_leader`, ...) and `/leader`. Unset: none.
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("empty control_plane config deserializes")
    }
}

impl ControlPlaneConfig {
    /// The control-plane URLs of a data plane: `url` (split on commas), then
    /// `urls`, without blanks or repeats.
    pub fn endpoints(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let from_url = self.url.iter().flat_map(|u| u.split(','));
        for u in from_url.chain(self.urls.iter().map(String::as_str)) {
            let u = u.trim();
            if !u.is_empty() && !out.iter().any(|o| o == u) {
                out.push(u.to_owned());
            }
        }
        out
    }
}

fn default_lease_secs() -> u64 {
    5
}
fn default_renew_secs() -> u64 {
    1
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Shared secret the planes use to sign and verify their JWTs. At least 32
    /// characters; load it from the environment, e.g. `${STRATA_CLUSTER_SECRET}`.
    #[serde(default)]
    pub secret: Option<String>,
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClusterConfig").field("secret", &shown).finish()
    }
}

/// A storage backend, chosen by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BackendConfig {
    /// Object bytes in files under `path`.
    Local {
        /// Unique backend id, used in metrics and placement records.
        id: String,
        /// Directory for the object files; created if missing.
        path: PathBuf,
        /// Optional size and monthly usage limits (see [`BackendLimits`]).
        #[serde(default)]
        limits: BackendLimits,
        /// Seal blobs on this backend: `none` or `aes256-gcm`. Default: `encryption.mode`.
        #[serde(default)]
        encryption: Option<EncryptionMode>,
    },
    /// Object bytes in a bucket of an S3-compatible service (AWS S3, MinIO,
    /// Ceph RGW, R2, GCS interoperability, ...).
    S3 {
        /// Unique backend id, used in metrics and placement records.
        id: String,
        /// Service URL, `http://` or `https://`, e.g. `https://s3.us-east-1.amazonaws.com`.
        endpoint: String,
        /// The region requests are signed for. Default `us-east-1`.
        #[serde(default = "default_region")]
        region: String,
        /// The bucket holding the objects; it must exist.
        bucket: String,
        /// Prepended to every object key, e.g. `strata/`. Default: none.
        #[serde(default)]
        prefix: Option<String>,
        /// Address the bucket as `ENDPOINT/BUCKET` rather than `BUCKET.HOST`. Default true.
        #[serde(default = "default_true")]
        force_path_style: bool,
        /// Where the credentials come from. Default `static`.
        #[serde(default)]
        credential_source: CredentialSource,
        /// Access key for `credential_source: static`.
        #[serde(default)]
        access_key_id: Option<String>,
        /// Secret for `credential_source: static`; prefer `${ENV_VAR}` over a literal.
        #[serde(default)]
        secret_access_key: Option<Secret>,
        /// Send `UNSIGNED-PAYLOAD` instead of hashing each body. Default: on for
        /// https (TLS protects the bytes), off for http.
        #[serde(default)]
        unsigned_payload: Option<bool>,
        /// Do not add the SDK's default CRC checksums to requests nor validate
        /// them on responses (for services that reject them). Default false.
        #[serde(default)]
        disable_checksum: bool,
        /// Remove SDK-only headers (`x-amz-sdk-checksum-algorithm`,
        /// `amz-sdk-invocation-id`, `amz-sdk-request`) before sending, for
        /// services such as GCS that refuse them. Default false.
        #[serde(default)]
        strip_sdk_headers: bool,
        /// Seconds to wait for a TCP (and TLS) connection. Default 10.
        #[serde(default = "default_connect_timeout")]
        connect_timeout_secs: u64,
        /// Seconds from sending a request (including one upload part of up to
        /// 8 MiB) until the response headers arrive. Default 120.
        #[serde(default = "default_read_timeout")]
        read_timeout_secs: u64,
        /// Attempts per request, including the first, for retryable failures. Default 3.
        #[serde(default = "default_max_attempts")]
        max_attempts: u32,
        /// Optional size and monthly usage limits (see [`BackendLimits`]).
        #[serde(default)]
        limits: BackendLimits,
        /// Seal blobs on this backend: `none` or `aes256-gcm`. Default: `encryption.mode`.
        #[serde(default)]
        encryption: Option<EncryptionMode>,
    },
}

impl BackendConfig {
    pub fn id(&self) -> &str {
        match self {
            BackendConfig::Local { id, .. } | BackendConfig::S3 { id, .. } => id,
        }
    }

    /// `local` or `s3`, as in the `type:` key.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Local { .. } => "local",
            BackendConfig::S3 { .. } => "s3",
        }
    }

    /// The backend's own `encryption:` setting, if any.
    pub fn encryption(&self) -> Option<EncryptionMode> {
        match self {
            BackendConfig::Local { encryption, .. } | BackendConfig::S3 { encryption, .. } => *encryption,
        }
    }

    pub fn limits(&self) -> &BackendLimits {
        match self {
            BackendConfig::Local { limits, .. } | BackendConfig::S3 { limits, .. } => limits,
        }
    }
}

/// The `placement:` section: which backend a new object (or part) goes to.
///
/// ```yaml
/// placement:
///   routing_strategy: spread        # or `pack` (the default)
///   bucket_backends:
///     photos: [disk-1, disk-2]      # objects of `photos` only go to these
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// `pack` (default) or `spread`.
    #[serde(default)]
    pub routing_strategy: RoutingStrategy,
    /// Buckets pinned to a subset of the backends, by backend id. A bucket not
    /// listed may use every backend.
    #[serde(default)]
    pub bucket_backends: std::collections::BTreeMap<String, Vec<String>>,
}

/// How placement chooses among the backends with room for an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// The first backend in configuration order with room: fill one, then the next.
    #[default]
    Pack,
    /// The backend with the lowest fill ratio (used / quota).
    Spread,
}

fn default_true() -> bool {
    true
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_read_timeout() -> u64 {
    120
}
fn default_max_attempts() -> u32 {
    3
}

/// Where an S3 backend gets its credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// `access_key_id` and `secret_access_key` from this file.
    #[default]
    Static,
    /// The AWS default chain: environment, shared profile files, web identity,
    /// ECS and EC2 instance metadata.
    DefaultChain,
}

/// Limits of one backend, under its `limits:` key. All optional; sizes in bytes,
/// usage limits per calendar month. They are a nested block (with unknown keys
/// rejected) rather than flattened into the backend, because serde's `flatten`
/// cannot be combined with `deny_unknown_fields`. Placement enforces
/// `max_object_size` and `quota_bytes`; the monthly usage limits are validated
/// but not enforced yet.
///
/// ```yaml
/// limits:
///   max_object_size: 5368709120   # 5 GiB
///   quota_bytes: 10995116277760   # 10 TiB
///   api_request_limit: 1000000
///   egress_byte_limit: 107374182400
///   ingress_byte_limit: 107374182400
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendLimits {
    /// Largest single object this backend should hold.
    #[serde(default)]
    pub max_object_size: Option<u64>,
    /// Total bytes this backend should hold.
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    /// Requests per month.
    #[serde(default)]
    pub api_request_limit: Option<u64>,
    /// Bytes read from the backend per month.
    #[serde(default)]
    pub egress_byte_limit: Option<u64>,
    /// Bytes written to the backend per month.
    #[serde(default)]
    pub ingress_byte_limit: Option<u64>,
}

/// A secret string from the config: deserializes like a string, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub access_key_id: String,
    /// The secret; prefer `${ENV_VAR}` over a literal.
    pub secret_access_key: String,
    /// Buckets this key may reach. Omit only together with `unrestricted: true`.
    #[serde(default)]
    pub buckets: Vec<String>,
    /// Reach every bucket and create buckets.
    #[serde(default)]
    pub unrestricted: bool,
}

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .field("buckets", &self.buckets)
            .field("unrestricted", &self.unrestricted)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter such as `info` or `strata=debug`. `RUST_LOG` overrides it.
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

mod validate;
pub use validate::ConfigError;

impl Config {
    /// Parses YAML after expanding `${VAR}` and `${VAR:-default}`.
    pub fn from_yaml(text: &str) -> Result<Config, Vec<ConfigError>> {
        match lenient::parse(text) {
            (Some(c), errs) if errs.is_empty() => Ok(c),
            (_, errs) => Err(errs),
        }
    }

    /// Parses as far as possible: the config with bad fields left at their
    /// defaults (when the document is YAML at all), plus every parse error.
    pub fn parse_all(text: &str) -> (Option<Config>, Vec<ConfigError>) {
        lenient::parse(text)
    }

    /// The backends in effect: the configured ones, or the embedded local disk.
    pub fn effective_backends(&self) -> Vec<BackendConfig> {
        if self.backends.is_empty() {
            vec![BackendConfig::Local {
                id: "local".into(),
                path: self.data_dir.join("objects"),
                limits: BackendLimits::default(),
                encryption: None,
            }]
        } else {
            self.backends.clone()
        }
    }

    /// The metadata store to open, with the driver inferred from `database:`.
    pub fn database_target(&self) -> DatabaseTarget {
        self.database.target(&self.data_dir)
    }
}
