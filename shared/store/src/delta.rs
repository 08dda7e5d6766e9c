//! Delta compression's rows: deltaspace references (`delta_refs`), the
//! deltaspaces' state (`deltaspaces`) and per-object decisions
//! (`delta_decisions`). See `migrations/0006_delta.sql`.

use strata_core::{CpError, CpResult};

/// The hidden bucket holding the references of user bucket `bucket`.
/// Names starting with `.` are invalid S3 bucket names, so clients can
/// never address it, and `list_buckets` leaves it out.
pub fn refs_bucket(bucket: &str) -> String {
    format!(".refs.{bucket}")
}

/// The user bucket whose references `.refs.<bucket>` holds, if it is one.
pub fn user_bucket_of(bucket: &str) -> Option<&str> {
    bucket.strip_prefix(".refs.")
}

/// `current`: new writes of the deltaspace encode against it; `retired`:
/// replaced, kept while objects need it.
pub const REF_CURRENT: &str = "current";
pub const REF_RETIRED: &str = "retired";

/// One deltaspace reference (a `delta_refs` row).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeltaRefRecord {
    pub ref_id: String,
    /// The user bucket and the deltaspace it serves.
    pub bucket: String,
    pub space: String,
    /// Its object: `.refs.<bucket>` / `<space>/<ref_id>`.
    pub ref_bucket: String,
    pub ref_key: String,
    /// Logical size and hex SHA-256 of its bytes.
    pub size: u64,
    pub sha256: String,
    /// [`REF_CURRENT`] or [`REF_RETIRED`].
    pub state: String,
    pub last_used_ms: i64,
    pub created_ms: i64,
}

/// A deltaspace's state (a `deltaspaces` row).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeltaSpaceRecord {
    pub space: String,
    pub bucket: String,
    /// The reference new writes encode against.
    pub current_ref_id: Option<String>,
    /// Ratios (delta / object, permille) of the last deltas, oldest first.
    pub recent: Vec<u32>,
    /// The recent deltas grew too large: the next eligible write becomes
    /// the new reference.
    pub want_new_ref: bool,
}

/// What a write did about delta compression (a `delta_decisions` row).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeltaDecisionRecord {
    pub object_id: String,
    /// The user bucket.
    pub bucket: String,
    /// `reference`, `delta` or `passthrough`.
    pub decision: String,
    pub reason: String,
    pub ref_id: Option<String>,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    pub created_ms: i64,
}

/// How a decision moves its deltaspace's window of recent ratios (see
/// [`crate::MetaStore::record_delta_decision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReselectPolicy {
    /// Ratios kept (at least 1).
    pub window: u32,
    /// `want_new_ref` is set when the window is full and its mean exceeds this.
    pub threshold_permille: u32,
}

pub(crate) type RefRow = (String, String, String, String, String, i64, String, String, i64, i64);

pub(crate) const REF_COLUMNS: &str =
    "ref_id, bucket, space, ref_bucket, ref_key, size, sha256, state, last_used_ms, created_ms";

pub(crate) fn ref_from_row(row: RefRow) -> DeltaRefRecord {
    let (ref_id, bucket, space, ref_bucket, ref_key, size, sha256, state, last_used_ms, created_ms) = row;
    DeltaRefRecord {
        ref_id,
        bucket,
        space,
        ref_bucket,
        ref_key,
        size: u64::try_from(size).unwrap_or(0),
        sha256,
        state,
        last_used_ms,
        created_ms,
    }
}

pub(crate) fn parse_recent(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

pub(crate) fn format_recent(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The ratio of a delta decision in permille.
pub(crate) fn ratio_permille(d: &DeltaDecisionRecord) -> u32 {
    if d.logical_bytes == 0 {
        return 0;
    }
    let r = u128::from(d.stored_bytes) * 1000 / u128::from(d.logical_bytes);
    u32::try_from(r).unwrap_or(u32::MAX)
}

/// Pushes `ratio` into `recent` (keeping the last `window`) and says
/// whether the deltaspace is due a new reference.
pub(crate) fn push_ratio(recent: &mut Vec<u32>, ratio: u32, policy: ReselectPolicy) -> bool {
    let window = policy.window.max(1) as usize;
    recent.push(ratio);
    if recent.len() > window {
        let extra = recent.len() - window;
        recent.drain(..extra);
    }
    let mean = recent.iter().map(|r| u64::from(*r)).sum::<u64>() / recent.len() as u64;
    recent.len() == window && mean > u64::from(policy.threshold_permille)
}

pub(crate) fn check_decision(d: &DeltaDecisionRecord) -> CpResult<()> {
    match d.decision.as_str() {
        "reference" | "delta" | "passthrough" => Ok(()),
        other => Err(CpError::InvalidArgument(format!(
            "delta decision must be reference, delta or passthrough, not {other:?}"
        ))),
    }
}

/// A report row before assembly: bucket, logical, stored-by-objects.
pub(crate) type ReportBytesRow = (String, i64, i64);

/// Assembles the per-bucket report from its three queries' rows.
pub(crate) fn assemble_report(
    bytes: Vec<ReportBytesRow>,
    refs: Vec<(String, i64, i64)>,
    decisions: Vec<(String, String, i64)>,
) -> Vec<strata_core::DeltaBucketReport> {
    use std::collections::BTreeMap;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out: BTreeMap<String, strata_core::DeltaBucketReport> = BTreeMap::new();
    for (bucket, logical, stored) in bytes {
        let e = out.entry(bucket.clone()).or_default();
        e.bucket = bucket;
        e.logical_bytes = u(logical);
        e.stored_bytes = u(stored);
    }
    for (bucket, count, stored) in refs {
        let e = out.entry(bucket.clone()).or_default();
        e.bucket = bucket;
        e.references = u(count);
        e.stored_bytes += u(stored);
    }
    for (bucket, decision, n) in decisions {
        let e = out.entry(bucket.clone()).or_default();
        e.bucket = bucket;
        e.decisions.push((decision, u(n)));
    }
    for e in out.values_mut() {
        e.decisions.sort();
    }
    out.into_values().collect()
}
