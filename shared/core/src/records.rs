//! Catalog records exchanged between the planes.

use std::collections::BTreeMap;

/// One contiguous run of an object's bytes on one backend. A single PUT has one
/// segment; a completed multipart upload has one per part, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    pub backend_id: String,
    pub backend_key: String,
    /// Plaintext bytes (a sealed blob is longer on its backend).
    pub length: u64,
    /// Hex SHA-256 of the plaintext, when known (recorded on write, or by the
    /// backfill job for older blobs).
    pub sha256: Option<String>,
    /// The key the blob is sealed with; `None` for a plaintext blob.
    pub cipher: Option<BlobKey>,
    /// How the blob encodes the segment's bytes (compressed, or a delta
    /// against a deltaspace reference); `None`: stored as they are. Sealing,
    /// when on, applies to the encoded bytes.
    pub encoding: Option<Encoding>,
}

/// How a blob's bytes encode a segment's (see `docs/delta.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// zstd frames of the whole segment (deltaspace references).
    Zstd {
        /// Bytes of the encoded form (before any sealing).
        encoded_len: u64,
    },
    /// A delta container against the reference `ref_id`.
    Delta {
        /// Bytes of the encoded form (before any sealing).
        encoded_len: u64,
        /// The deltaspace reference it decodes against.
        ref_id: String,
    },
}

impl Encoding {
    pub fn encoded_len(&self) -> u64 {
        match self {
            Encoding::Zstd { encoded_len } | Encoding::Delta { encoded_len, .. } => *encoded_len,
        }
    }
}

/// What a write may do with delta compression, as the control plane's
/// policy decides for its bucket and key (the content is judged by the
/// data plane).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaPlan {
    /// The deltaspace: `bucket/prefix-up-to-the-last-slash` or a configured group.
    pub space: String,
    /// The reference to encode against; `None` when the deltaspace has none
    /// yet or is due a new one (this object then becomes its reference).
    pub reference: Option<DeltaRef>,
    /// A delta is kept only when `encoded * 1000 <= original * max_delta_permille`.
    pub max_delta_permille: u32,
}

/// A deltaspace reference as the data plane needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaRef {
    pub ref_id: String,
    /// Its bytes (logical size).
    pub size: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

/// Delta compression in one bucket, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeltaBucketReport {
    pub bucket: String,
    /// Bytes of the current objects as clients see them.
    pub logical_bytes: u64,
    /// Bytes those objects and their live references occupy (encoded).
    pub stored_bytes: u64,
    /// Objects by decision: `reference`, `delta`, `passthrough`.
    pub decisions: Vec<(String, u64)>,
    pub references: u64,
}

/// What was done with an object's bytes, and why (recorded per object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaDecision {
    /// `reference`, `delta` or `passthrough`.
    pub decision: String,
    /// e.g. `ratio 0.031 <= 0.75`, `media type gzip`, `below min_size`, `multipart upload`.
    pub reason: String,
    pub ref_id: Option<String>,
    /// Logical bytes and bytes stored (encoded) for the object.
    pub logical_bytes: u64,
    pub stored_bytes: u64,
}

/// How a blob is sealed (see `docs/encryption-format.md`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BlobKey {
    /// Id of the master key wrapping the DEK, or `sse-c:<key MD5>` for a
    /// customer-provided key.
    pub key_id: String,
    /// The DEK, wrapped under that key.
    pub wrapped_dek: Vec<u8>,
    /// The plaintext DEK, handed to data planes by the control plane; never
    /// stored, and empty for customer keys (the data plane unwraps those).
    pub dek: Vec<u8>,
    /// The id bound into every chunk's associated data.
    pub context: String,
}

impl BlobKey {
    /// Whether the blob is sealed under a customer-provided key (SSE-C).
    pub fn is_customer(&self) -> bool {
        self.key_id.starts_with(SSE_C_KEY_PREFIX)
    }

    /// The same key without its plaintext DEK, as it may be stored.
    pub fn stored(&self) -> BlobKey {
        BlobKey {
            dek: Vec::new(),
            ..self.clone()
        }
    }
}

/// Key ids of blobs sealed under a customer key start with this.
pub const SSE_C_KEY_PREFIX: &str = "sse-c:";

impl std::fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobKey")
            .field("key_id", &self.key_id)
            .field("context", &self.context)
            .field("dek", &if self.dek.is_empty() { "<none>" } else { "<redacted>" })
            .finish_non_exhaustive()
    }
}

/// What a client sees of an object besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header, kept as the client sent it.
    pub expires: Option<String>,
    pub user_metadata: BTreeMap<String, String>,
    /// Verified `x-amz-checksum-*` values, by algorithm name in upper case (e.g. `CRC32C`).
    pub checksums: BTreeMap<String, String>,
    /// Number of parts for a multipart object, 0 for a single PUT.
    pub parts_count: u32,
    pub last_modified_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub object_id: String,
    pub meta: ObjectMeta,
    pub segments: Vec<Segment>,
    /// Further complete copies of the object, each covering all its bytes, in
    /// addition to `segments`. Reads fail over between copies.
    pub copies: Vec<Vec<Segment>>,
}

/// A placement decision: where the bytes of a write go, under a pending intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritePlan {
    pub intent_id: String,
    pub object_id: String,
    pub backend_id: String,
    pub backend_key: String,
    /// Set when the blob must be sealed (encryption at rest): the key to
    /// seal it with, already recorded in the catalog.
    pub cipher: Option<BlobKey>,
    /// Set when delta compression may apply to this write.
    pub delta: Option<DeltaPlan>,
    /// The leader term the plan was made under (1 under SQLite, where the
    /// one process always leads). Commits are fenced by the committing
    /// leader's term in the store (docs/leadership.md).
    pub term: u64,
}

/// Bytes no longer referenced by the catalog, to be deleted from a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupItem {
    pub id: i64,
    pub backend_id: String,
    pub backend_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created_unix_ms: i64,
}

/// Whom a credential may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every bucket, and bucket creation.
    Unrestricted,
    /// Only the listed buckets.
    Buckets(Vec<String>),
}

impl Scope {
    pub fn allows(&self, bucket: &str) -> bool {
        match self {
            Scope::Unrestricted => true,
            Scope::Buckets(b) => b.iter().any(|x| x == bucket),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub scope: Scope,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: String,
    /// Only keys (and prefixes) strictly greater than this.
    pub after: String,
    pub max_keys: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified_unix_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or prefix returned; the next page starts after it.
    pub next_after: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub meta: ObjectMeta,
    pub initiated_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified_unix_ms: i64,
    pub segment: Segment,
    pub checksums: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPartsPage {
    pub parts: Vec<PartInfo>,
    pub is_truncated: bool,
    pub next_part_number_marker: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUploadsQuery {
    pub bucket: String,
    pub prefix: String,
    pub key_marker: String,
    pub upload_id_marker: String,
    pub max_uploads: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUploadsPage {
    pub uploads: Vec<UploadInfo>,
    pub is_truncated: bool,
}

/// One configured backend as the control plane sees it: what the catalog says
/// it holds, and its configured limits. Sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackendStatus {
    pub backend_id: String,
    /// `local` or `s3`.
    pub kind: String,
    /// Bytes of current objects' segments and of uploaded multipart parts.
    pub bytes_used: u64,
    /// Bytes queued for deletion but still on the backend.
    pub orphan_bytes: u64,
    /// Size hints of pending writes.
    pub reserved_bytes: u64,
    /// Blobs (segments and parts) counted in `bytes_used`.
    pub objects: u64,
    pub quota_bytes: Option<u64>,
    pub max_object_size: Option<u64>,
    /// Whether the quota (if any) still leaves at least one free byte after
    /// used, orphan and reserved bytes, and no monthly limit is exhausted.
    pub eligible_for_writes: bool,
    /// This month's traffic against the monthly limits.
    pub usage: MonthlyUsage,
    pub api_request_limit: Option<u64>,
    pub egress_byte_limit: Option<u64>,
    pub ingress_byte_limit: Option<u64>,
    /// The circuit breaker as the data planes last reported it: `closed`,
    /// `open`, `half_open`, or `unknown` before any report.
    pub breaker: String,
}

/// State of one backend's circuit breaker in a data plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The value of every `strata_*_breaker_state` gauge (backends, the
    /// metadata database, Redis): 0 closed, 1 half-open, 2 open, ordered by
    /// severity so that `max()` and alert thresholds (`== 2`) read naturally.
    pub fn gauge_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// Traffic one data plane sent to one backend since its previous report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendTraffic {
    pub backend_id: String,
    pub requests: u64,
    pub egress_bytes: u64,
    pub ingress_bytes: u64,
    /// The reporter's breaker for this backend, now.
    pub breaker: BreakerState,
}

/// A data plane's periodic usage report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// Stable id of the reporting process (for the breaker view in status).
    pub reporter: String,
    pub backends: Vec<BackendTraffic>,
}

/// One backend's traffic in the current calendar month (UTC) and which of its
/// monthly limits are used up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyUsage {
    pub backend_id: String,
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub requests: u64,
    pub egress_bytes: u64,
    pub ingress_bytes: u64,
    pub requests_exhausted: bool,
    pub egress_exhausted: bool,
    pub ingress_exhausted: bool,
}

/// The state of the cluster, for `GET /status` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    /// Every configured backend, in configuration order.
    pub backends: Vec<BackendStatus>,
    /// Cleanup rows given up on after too many failed deletions (all backends).
    pub cleanup_dead_letters: u64,
    /// Encryption keys and how many blobs each one wraps.
    pub encryption: EncryptionStatus,
    /// Progress of the resumable background jobs (re-wrap, scrub,
    /// encrypt-existing, decrypt-existing).
    pub jobs: Vec<JobReport>,
}

/// Which keys wrap the catalog's data keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EncryptionStatus {
    /// The key new data keys are wrapped under; empty when none is configured.
    pub primary_key_id: String,
    /// Blob counts by key id: master key ids, `sse-c:<md5>` for customer
    /// keys, and `""` for blobs that are not sealed but have a digest.
    pub blobs_by_key: Vec<(String, u64)>,
    /// Blobs found corrupt and not yet repaired, and blobs quarantined
    /// because no healthy copy existed.
    pub corrupt_blobs: u64,
}

/// The saved progress of one resumable job.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobReport {
    pub name: String,
    /// `running`, `paused`, `cancelled` or `done`.
    pub state: String,
    pub done: u64,
    pub total: u64,
    pub errors: u64,
    pub detail: String,
    pub updated_unix_ms: i64,
}
