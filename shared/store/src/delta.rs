//! Delta compression's rows: deltaspace references (`delta_refs`), the
//! deltaspaces' state (`deltaspaces`) and per-object decisions
//! (`delta_decisions`). See `migrations/0006_delta.sql`.

use async_trait::async_trait;
use strata_core::{CpError, CpResult, DeltaBucketReport};

use crate::Store;
use crate::blobs::counter;
use crate::metrics::timed;
use crate::rows::advisory_lock;
use crate::sql::{Sql, sql};
use crate::store::{Db, SqlBacked};

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

/// The references a query over `delta_refs` selects ([`REF_COLUMNS`]).
async fn load_refs(db: &Db, q: Sql<'_>) -> CpResult<Vec<DeltaRefRecord>> {
    let rows: Vec<RefRow> = q.fetch_all(&mut db.conn().await?).await?;
    Ok(rows.into_iter().map(ref_from_row).collect())
}

/// Whether any current segment's blob decodes against reference `r.ref_id`.
const REF_IN_USE: &str = "EXISTS (SELECT 1 FROM blobs b JOIN segments s \
     ON s.backend_id = b.backend_id AND s.backend_key = b.backend_key WHERE b.ref_id = r.ref_id)";

/// Delta compression: deltaspaces, their references, per-object decisions
/// and the report.
#[async_trait]
pub trait Delta: SqlBacked {
    /// The state of deltaspace `space`; `None` when it never had a reference.
    async fn get_deltaspace(&self, space: &str) -> CpResult<Option<DeltaSpaceRecord>> {
        timed("get_deltaspace", async {
            let row: Option<(String, String, Option<String>, String, bool)> =
                sql("SELECT space, bucket, current_ref_id, recent, want_new_ref FROM deltaspaces WHERE space = ?")
                    .bind(space)
                    .fetch_optional(&mut self.db().conn().await?)
                    .await?;
            Ok(row.map(
                |(space, bucket, current_ref_id, recent, want_new_ref)| DeltaSpaceRecord {
                    space,
                    bucket,
                    current_ref_id,
                    recent: parse_recent(&recent),
                    want_new_ref,
                },
            ))
        })
        .await
    }

    /// A reference, current or retired; `None` once dropped.
    async fn get_delta_ref(&self, ref_id: &str) -> CpResult<Option<DeltaRefRecord>> {
        timed("get_delta_ref", async {
            let row: Option<RefRow> = sql(format!("SELECT {REF_COLUMNS} FROM delta_refs WHERE ref_id = ?"))
                .bind(ref_id)
                .fetch_optional(&mut self.db().conn().await?)
                .await?;
            Ok(row.map(ref_from_row))
        })
        .await
    }

    /// In one transaction: inserts `reference` (state `current`, whatever
    /// its `state` says) as the current reference of its space, retires the
    /// space's previous current reference, empties the space's window of
    /// recent ratios and clears `want_new_ref`. Returns the id of the
    /// reference it retired. Fails when the `ref_id` exists.
    async fn set_current_ref(&self, r: &DeltaRefRecord) -> CpResult<Option<String>> {
        timed("set_current_ref", async {
            let mut c = self.db().write().await?;
            advisory_lock(&mut c, "deltaspace", &r.space).await?;
            sql(
                "INSERT INTO delta_refs (ref_id, bucket, space, ref_bucket, ref_key, size, sha256, state, \
                 last_used_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.ref_id)
            .bind(&r.bucket)
            .bind(&r.space)
            .bind(&r.ref_bucket)
            .bind(&r.ref_key)
            .bind(counter(r.size)?)
            .bind(&r.sha256)
            .bind(REF_CURRENT)
            .bind(r.last_used_ms)
            .bind(r.created_ms)
            .execute(&mut c)
            .await?;
            let previous: Option<(Option<String>,)> = sql("SELECT current_ref_id FROM deltaspaces WHERE space = ?")
                .bind(&r.space)
                .fetch_optional(&mut c)
                .await?;
            let previous = previous.and_then(|(p,)| p).filter(|p| *p != r.ref_id);
            if let Some(p) = &previous {
                sql("UPDATE delta_refs SET state = ? WHERE ref_id = ?")
                    .bind(REF_RETIRED)
                    .bind(p)
                    .execute(&mut c)
                    .await?;
            }
            sql(
                "INSERT INTO deltaspaces (space, bucket, current_ref_id, recent, want_new_ref) \
                 VALUES (?, ?, ?, '', FALSE) ON CONFLICT (space) DO UPDATE SET \
                 current_ref_id = excluded.current_ref_id, recent = '', want_new_ref = FALSE",
            )
            .bind(&r.space)
            .bind(&r.bucket)
            .bind(&r.ref_id)
            .execute(&mut c)
            .await?;
            c.commit().await?;
            Ok(previous)
        })
        .await
    }

    /// Raises a reference's `last_used_ms` to `now_ms` (no-op if absent).
    async fn touch_delta_ref(&self, ref_id: &str, now_ms: i64) -> CpResult<()> {
        timed("touch_delta_ref", async {
            let text = format!(
                "UPDATE delta_refs SET last_used_ms = {}(last_used_ms, ?) WHERE ref_id = ?",
                self.db().dialect().greatest()
            );
            self.db().write_one(sql(text).bind(now_ms).bind(ref_id)).await?;
            Ok(())
        })
        .await
    }

    /// In one transaction: upserts the decision of `decision.object_id`;
    /// when it is a `delta` and `space` exists, pushes its ratio
    /// (`stored * 1000 / logical`) into the space's window of the last
    /// `policy.window` ratios and sets `want_new_ref` once the window is
    /// full and its mean exceeds `policy.threshold_permille`. Returns the
    /// space's `want_new_ref` afterwards (false without a space).
    /// `InvalidArgument` unless the decision is `reference`, `delta` or
    /// `passthrough`.
    async fn record_delta_decision(
        &self,
        d: &DeltaDecisionRecord,
        space: Option<&str>,
        policy: ReselectPolicy,
    ) -> CpResult<bool> {
        check_decision(d)?;
        timed("record_delta_decision", async {
            let mut c = self.db().write().await?;
            sql(
                "INSERT INTO delta_decisions (object_id, bucket, decision, reason, ref_id, logical_bytes, \
                 stored_bytes, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (object_id) DO UPDATE SET bucket = excluded.bucket, decision = excluded.decision, \
                 reason = excluded.reason, ref_id = excluded.ref_id, logical_bytes = excluded.logical_bytes, \
                 stored_bytes = excluded.stored_bytes, created_ms = excluded.created_ms",
            )
            .bind(&d.object_id)
            .bind(&d.bucket)
            .bind(&d.decision)
            .bind(&d.reason)
            .bind(d.ref_id.as_deref())
            .bind(counter(d.logical_bytes)?)
            .bind(counter(d.stored_bytes)?)
            .bind(d.created_ms)
            .execute(&mut c)
            .await?;
            let mut want = false;
            if let Some(space) = space {
                let text = format!(
                    "SELECT recent, want_new_ref FROM deltaspaces WHERE space = ?{}",
                    c.dialect().lock(" FOR UPDATE")
                );
                let row: Option<(String, bool)> = sql(text).bind(space).fetch_optional(&mut c).await?;
                if let Some((recent, wanted)) = row {
                    want = wanted;
                    if d.decision == "delta" {
                        let mut recent = parse_recent(&recent);
                        want |= push_ratio(&mut recent, ratio_permille(d), policy);
                        sql("UPDATE deltaspaces SET recent = ?, want_new_ref = ? WHERE space = ?")
                            .bind(format_recent(&recent))
                            .bind(want)
                            .bind(space)
                            .execute(&mut c)
                            .await?;
                    }
                }
            }
            c.commit().await?;
            Ok(want)
        })
        .await
    }

    /// Per user bucket that has any decision or reference, sorted by name,
    /// over current objects only: logical bytes = sizes of all its current
    /// objects; stored bytes = the decisions' `stored_bytes` (an object
    /// without a decision counts its size) plus the encoded bytes of the
    /// primary copy of every reference not yet dropped; decisions counted
    /// by kind; references = references not yet dropped.
    async fn delta_report(&self) -> CpResult<Vec<DeltaBucketReport>> {
        timed("delta_report", async {
            let mut c = self.db().read().await?;
            let bytes: Vec<ReportBytesRow> = sql(
                "SELECT o.bucket, CAST(SUM(o.size) AS BIGINT), CAST(SUM(COALESCE(d.stored_bytes, o.size)) AS BIGINT) \
                 FROM objects o LEFT JOIN delta_decisions d ON d.object_id = o.object_id \
                 WHERE o.bucket IN (SELECT DISTINCT bucket FROM delta_decisions) GROUP BY o.bucket",
            )
            .fetch_all(&mut c)
            .await?;
            let refs: Vec<(String, i64, i64)> = sql("SELECT r.bucket, COUNT(DISTINCT r.ref_id), \
                 CAST(COALESCE(SUM(COALESCE(b.encoded_len, s.length)), 0) AS BIGINT) FROM delta_refs r \
                 LEFT JOIN objects o ON o.bucket = r.ref_bucket AND o.key = r.ref_key \
                 LEFT JOIN segments s ON s.object_id = o.object_id AND s.seq < 100000 \
                 LEFT JOIN blobs b ON b.backend_id = s.backend_id AND b.backend_key = s.backend_key \
                 GROUP BY r.bucket")
            .fetch_all(&mut c)
            .await?;
            let decisions: Vec<(String, String, i64)> =
                sql("SELECT d.bucket, d.decision, COUNT(*) FROM delta_decisions d \
                 JOIN objects o ON o.object_id = d.object_id GROUP BY d.bucket, d.decision")
                .fetch_all(&mut c)
                .await?;
            c.commit().await?;
            Ok(assemble_report(bytes, refs, decisions))
        })
        .await
    }

    /// Up to `limit` references (current or retired) last used before
    /// `older_than_ms` whose id no current segment's blob names as its
    /// `ref_id`, least recently used first: safe to free. A current one
    /// of those serves a deltaspace none of whose objects is a delta.
    async fn unreferenced_refs(&self, older_than_ms: i64, limit: u32) -> CpResult<Vec<DeltaRefRecord>> {
        timed("unreferenced_refs", async {
            let text = format!(
                "SELECT {REF_COLUMNS} FROM delta_refs r WHERE r.last_used_ms < ? AND NOT {REF_IN_USE} \
                 ORDER BY r.last_used_ms, r.ref_id LIMIT ?"
            );
            load_refs(self.db(), sql(text).bind(older_than_ms).bind(i64::from(limit))).await
        })
        .await
    }

    /// In one transaction, re-checking what [`Delta::unreferenced_refs`]
    /// checks (last used before `older_than_ms`, named by no current
    /// segment's blob): deletes the reference's row and clears it as its
    /// space's current reference; returns whether it did. The reference's
    /// object (in `.refs.<bucket>`) is the caller's to delete.
    async fn drop_ref(&self, ref_id: &str, older_than_ms: i64) -> CpResult<bool> {
        timed("drop_ref", async {
            let mut c = self.db().write().await?;
            let text =
                format!("DELETE FROM delta_refs AS r WHERE r.ref_id = ? AND r.last_used_ms < ? AND NOT {REF_IN_USE}");
            let done = sql(text).bind(ref_id).bind(older_than_ms).execute(&mut c).await?;
            if done > 0 {
                sql(
                    "UPDATE deltaspaces SET current_ref_id = NULL, recent = '', want_new_ref = FALSE \
                     WHERE current_ref_id = ?",
                )
                .bind(ref_id)
                .execute(&mut c)
                .await?;
            }
            c.commit().await?;
            Ok(done > 0)
        })
        .await
    }

    /// Up to `limit` references (current or retired) whose
    /// `compacted_level` is below `below_level` (0 until
    /// [`Delta::mark_ref_compacted`]), oldest (`created_ms`, then
    /// `ref_id`) first: those the `delta-compact` job has yet to recompress.
    async fn refs_to_compact(&self, below_level: i32, limit: u32) -> CpResult<Vec<DeltaRefRecord>> {
        timed("refs_to_compact", async {
            let text = format!(
                "SELECT {REF_COLUMNS} FROM delta_refs WHERE compacted_level < ? ORDER BY created_ms, ref_id LIMIT ?"
            );
            load_refs(self.db(), sql(text).bind(below_level).bind(i64::from(limit))).await
        })
        .await
    }

    /// Sets a reference's `compacted_level` (no-op if absent).
    async fn mark_ref_compacted(&self, ref_id: &str, level: i32) -> CpResult<()> {
        timed("mark_ref_compacted", async {
            self.db()
                .write_one(
                    sql("UPDATE delta_refs SET compacted_level = ? WHERE ref_id = ?")
                        .bind(level)
                        .bind(ref_id),
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` current objects (`(bucket, key, object_id)`) whose
    /// decision is `delta` and whose decision's `compacted_level` is below
    /// `below_level` (0 until [`Delta::mark_delta_compacted`]), oldest
    /// decision (`created_ms`, then `object_id`) first: the deltas the
    /// `delta-compact` job has yet to re-encode. Decisions of objects
    /// replaced or deleted since are left out.
    async fn deltas_to_compact(&self, below_level: i32, limit: u32) -> CpResult<Vec<(String, String, String)>> {
        timed("deltas_to_compact", async {
            sql("SELECT o.bucket, o.key, o.object_id FROM delta_decisions d \
                 JOIN objects o ON o.object_id = d.object_id \
                 WHERE d.decision = 'delta' AND d.compacted_level < ? \
                 ORDER BY d.created_ms, d.object_id LIMIT ?")
            .bind(below_level)
            .bind(i64::from(limit))
            .fetch_all(&mut self.db().conn().await?)
            .await
        })
        .await
    }

    /// Sets the `compacted_level` of an object's decision and, when
    /// `stored_bytes` is given (its delta was replaced by one of that many
    /// encoded bytes), its `stored_bytes`, which the report sums. No-op if
    /// the object has no decision.
    async fn mark_delta_compacted(&self, object_id: &str, level: i32, stored_bytes: Option<u64>) -> CpResult<()> {
        let stored = stored_bytes.map(counter).transpose()?;
        timed("mark_delta_compacted", async {
            self.db()
                .write_one(
                    sql(
                        "UPDATE delta_decisions SET compacted_level = ?, stored_bytes = COALESCE(?, stored_bytes) \
                 WHERE object_id = ?",
                    )
                    .bind(level)
                    .bind(stored)
                    .bind(object_id),
                )
                .await?;
            Ok(())
        })
        .await
    }
}

impl<D: 'static> Delta for Store<D> {}
