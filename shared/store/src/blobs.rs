//! Per-blob integrity and encryption facts and the progress of resumable
//! admin jobs: the row types of the `blobs` and `jobs_progress` tables.

use async_trait::async_trait;
use strata_core::{CpError, CpResult};

use crate::Store;
use crate::metrics::timed;
use crate::rows::count;
use crate::sql::{Dialect, sql};
use crate::store::SqlBacked;

/// The integrity state of one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlobState {
    /// Not known to be damaged.
    #[default]
    Ok,
    /// An integrity check found the bytes differ from the recorded SHA-256.
    Corrupt,
    /// Set aside: readers must not serve it.
    Quarantined,
}

impl BlobState {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobState::Ok => "ok",
            BlobState::Corrupt => "corrupt",
            BlobState::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<BlobState> {
        match s {
            "ok" => Some(BlobState::Ok),
            "corrupt" => Some(BlobState::Corrupt),
            "quarantined" => Some(BlobState::Quarantined),
            _ => None,
        }
    }
}

/// What the catalog knows of one blob (one segment's or part's bytes on one
/// backend) besides its length: its plaintext digest and how it is encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlobRecord {
    pub backend_id: String,
    pub backend_key: String,
    /// Hex SHA-256 of the blob's plaintext.
    pub sha256: Option<String>,
    /// Id of the master key wrapping the data key, or `sse-c:<md5>` for a
    /// customer-provided key.
    pub key_id: Option<String>,
    /// The data key, wrapped by `key_id`.
    pub wrapped_dek: Option<Vec<u8>>,
    /// The id bound into the AEAD associated data.
    pub context: Option<String>,
    pub state: BlobState,
    /// When the blob was last checked (0: never).
    pub checked_ms: i64,
    /// How the bytes encode the segment: `zstd` (a deltaspace reference) or
    /// `delta` (against `ref_id`); `None`: plain.
    pub codec: Option<String>,
    /// Bytes of the encoded form (before any sealing).
    pub encoded_len: Option<u64>,
    /// For `delta`: the reference the blob decodes against. A reference is
    /// freed only once no segment's blob names it.
    pub ref_id: Option<String>,
}

pub use strata_core::JobProgress;

/// A `blobs` row as both stores select it (see [`BLOB_COLUMNS`]).
pub(crate) type BlobRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The columns of a [`BlobRow`], in order.
pub(crate) const BLOB_COLUMNS: &str =
    "backend_id, backend_key, sha256, key_id, wrapped_dek, context, state, checked_ms, codec, encoded_len, ref_id";

pub(crate) fn blob_from_row(row: BlobRow) -> CpResult<BlobRecord> {
    let (backend_id, backend_key, sha256, key_id, wrapped_dek, context, state, checked_ms, codec, encoded_len, ref_id) =
        row;
    let state = BlobState::parse(&state).ok_or_else(|| CpError::Internal(format!("stored blob state {state:?}")))?;
    Ok(BlobRecord {
        backend_id,
        backend_key,
        sha256,
        key_id,
        wrapped_dek,
        context,
        state,
        checked_ms,
        codec,
        encoded_len: encoded_len.and_then(|n| u64::try_from(n).ok()),
        ref_id,
    })
}

/// A `jobs_progress` row as both stores select it (see [`JOB_COLUMNS`]).
pub(crate) type JobRow = (String, String, String, i64, i64, i64, String, i64);

pub(crate) const JOB_COLUMNS: &str = "name, state, cursor, done, total, errors, detail, updated_ms";

pub(crate) fn job_from_row(row: JobRow) -> JobProgress {
    let (name, state, cursor, done, total, errors, detail, updated_ms) = row;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    JobProgress {
        name,
        state,
        cursor,
        done: u(done),
        total: u(total),
        errors: u(errors),
        detail,
        updated_ms,
    }
}

/// A counter as a database integer.
pub(crate) fn counter(v: u64) -> CpResult<i64> {
    i64::try_from(v).map_err(|_| CpError::InvalidArgument(format!("counter {v} out of range")))
}

/// A segment row as both stores select it: backend_id, backend_key, length.
pub(crate) type SegmentRow = (String, String, i64);

/// Whether the rows `have` are exactly the segments `want`, comparing the
/// blob and its length.
pub(crate) fn same_segments(have: &[SegmentRow], want: &[strata_core::Segment]) -> bool {
    have.len() == want.len()
        && have.iter().zip(want).all(|((id, key, len), w)| {
            *id == w.backend_id && *key == w.backend_key && u64::try_from(*len).is_ok_and(|l| l == w.length)
        })
}

/// Blob facts: integrity, encryption and codec, for scrubbing and re-encryption.
#[async_trait]
pub trait Blobs: SqlBacked {
    /// Upserts blob facts. For an existing row, a `None` field keeps the
    /// stored value (so the cipher recorded at plan time and the sha256
    /// recorded at commit merge); `state` and `checked_ms` are only written on
    /// insert, `now_ms` is the new rows' creation time (see `prune_blobs`).
    async fn put_blobs(&self, blobs: &[BlobRecord], now_ms: i64) -> CpResult<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        timed("put_blobs", async {
            let mut c = self.db().write().await?;
            for b in blobs {
                sql(
                    "INSERT INTO blobs (backend_id, backend_key, sha256, key_id, wrapped_dek, context, state, \
                     checked_ms, created_ms, codec, encoded_len, ref_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (backend_id, backend_key) DO UPDATE SET \
                     sha256 = COALESCE(excluded.sha256, blobs.sha256), \
                     key_id = COALESCE(excluded.key_id, blobs.key_id), \
                     wrapped_dek = COALESCE(excluded.wrapped_dek, blobs.wrapped_dek), \
                     context = COALESCE(excluded.context, blobs.context), \
                     codec = COALESCE(excluded.codec, blobs.codec), \
                     encoded_len = COALESCE(excluded.encoded_len, blobs.encoded_len), \
                     ref_id = COALESCE(excluded.ref_id, blobs.ref_id)",
                )
                .bind(&b.backend_id)
                .bind(&b.backend_key)
                .bind(b.sha256.as_deref())
                .bind(b.key_id.as_deref())
                .bind(b.wrapped_dek.as_deref())
                .bind(b.context.as_deref())
                .bind(b.state.as_str())
                .bind(b.checked_ms)
                .bind(now_ms)
                .bind(b.codec.as_deref())
                .bind(b.encoded_len.map(counter).transpose()?)
                .bind(b.ref_id.as_deref())
                .execute(&mut c)
                .await?;
            }
            c.commit().await
        })
        .await
    }

    /// The facts of the given (backend_id, backend_key) blobs that have a row, in any order.
    async fn get_blobs(&self, keys: &[(String, String)]) -> CpResult<Vec<BlobRecord>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        timed("get_blobs", async {
            // One statement over the list of keys: a JSON array of pairs on
            // SQLite, two arrays on PostgreSQL.
            let mut c = self.db().conn().await?;
            let (ids, names): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
            let q = match c.dialect() {
                Dialect::Sqlite => sql(format!(
                    "SELECT {BLOB_COLUMNS} FROM blobs WHERE (backend_id, backend_key) IN \
                     (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
                ))
                .bind(serde_json::to_string(keys).map_err(|e| CpError::Internal(e.to_string()))?),
                Dialect::Postgres => sql(format!(
                    "SELECT {BLOB_COLUMNS} FROM blobs WHERE (backend_id, backend_key) IN \
                     (SELECT * FROM unnest(?::text[], ?::text[]))"
                ))
                .bind_list(&ids)
                .bind_list(&names),
            };
            let rows: Vec<BlobRow> = q.fetch_all(&mut c).await?;
            rows.into_iter().map(blob_from_row).collect()
        })
        .await
    }

    /// Sets state and checked_ms of one blob (no-op if absent).
    async fn mark_blob(&self, backend_id: &str, backend_key: &str, state: BlobState, checked_ms: i64) -> CpResult<()> {
        timed("mark_blob", async {
            self.db()
                .write_one(
                    sql("UPDATE blobs SET state = ?, checked_ms = ? WHERE backend_id = ? AND backend_key = ?")
                        .bind(state.as_str())
                        .bind(checked_ms)
                        .bind(backend_id)
                        .bind(backend_key),
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Rows per key_id (rows with a NULL key_id are counted under ""), sorted by key id.
    async fn blob_key_counts(&self) -> CpResult<Vec<(String, u64)>> {
        timed("blob_key_counts", async {
            let rows: Vec<(String, i64)> =
                sql("SELECT COALESCE(key_id, ''), COUNT(*) FROM blobs GROUP BY COALESCE(key_id, '')")
                    .fetch_all(&mut self.db().conn().await?)
                    .await?;
            let mut out: Vec<(String, u64)> = rows.into_iter().map(|(k, n)| (k, count(n))).collect();
            out.sort();
            Ok(out)
        })
        .await
    }

    /// Up to `limit` rows whose key_id is not NULL, does not start with
    /// `sse-c:` and differs from `key_id`, ordered by (backend_id, backend_key).
    async fn blobs_not_under(&self, key_id: &str, limit: u32) -> CpResult<Vec<BlobRecord>> {
        timed("blobs_not_under", async {
            let mut c = self.db().conn().await?;
            let text = format!(
                "SELECT {BLOB_COLUMNS} FROM blobs WHERE key_id IS NOT NULL AND substr(key_id, 1, 6) <> 'sse-c:' \
                 AND key_id <> ? ORDER BY backend_id, backend_key{} LIMIT ?",
                c.dialect().bytewise()
            );
            let rows: Vec<BlobRow> = sql(text).bind(key_id).bind(i64::from(limit)).fetch_all(&mut c).await?;
            rows.into_iter().map(blob_from_row).collect()
        })
        .await
    }

    /// Up to `limit` rows in state `corrupt`, ordered by (backend_id, backend_key).
    async fn corrupt_blobs(&self, limit: u32) -> CpResult<Vec<BlobRecord>> {
        timed("corrupt_blobs", async {
            let text = format!(
                "SELECT {BLOB_COLUMNS} FROM blobs WHERE state = 'corrupt' ORDER BY backend_id, backend_key LIMIT ?"
            );
            let rows: Vec<BlobRow> = sql(text)
                .bind(i64::from(limit))
                .fetch_all(&mut self.db().conn().await?)
                .await?;
            rows.into_iter().map(blob_from_row).collect()
        })
        .await
    }

    /// The (bucket, key) of the current object one of whose segments (of
    /// any copy) is the blob (`backend_id`, `backend_key`), if any.
    async fn blob_owner(&self, backend_id: &str, backend_key: &str) -> CpResult<Option<(String, String)>> {
        timed("blob_owner", async {
            sql(
                "SELECT o.bucket, o.key FROM segments s JOIN objects o ON o.object_id = s.object_id \
                 WHERE s.backend_id = ? AND s.backend_key = ? ORDER BY o.bucket, o.key LIMIT 1",
            )
            .bind(backend_id)
            .bind(backend_key)
            .fetch_optional(&mut self.db().conn().await?)
            .await
        })
        .await
    }

    /// Compare-and-set: replaces key_id and wrapped_dek only if the row still
    /// has `old_key_id`; returns whether it did.
    async fn rewrap_blob(
        &self,
        backend_id: &str,
        backend_key: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped: &[u8],
    ) -> CpResult<bool> {
        timed("rewrap_blob", async {
            let done = self.db().write_one(sql(
                "UPDATE blobs SET key_id = ?, wrapped_dek = ? WHERE backend_id = ? AND backend_key = ? AND key_id = ?",
            )
            .bind(new_key_id)
            .bind(wrapped)
            .bind(backend_id)
            .bind(backend_key)
            .bind(old_key_id)).await?;
            Ok(done > 0)
        })
        .await
    }

    /// Deletes up to `limit` rows created before `older_than_ms` whose blob is
    /// referenced by no segment, part or intent; returns how many.
    async fn prune_blobs(&self, older_than_ms: i64, limit: u32) -> CpResult<u64> {
        timed("prune_blobs", async {
            let done = self.db().write_one(sql(
                "DELETE FROM blobs WHERE (backend_id, backend_key) IN ( \
                   SELECT b.backend_id, b.backend_key FROM blobs b WHERE b.created_ms < ? \
                   AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.backend_id = b.backend_id AND s.backend_key = b.backend_key) \
                   AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.backend_id = b.backend_id AND p.backend_key = b.backend_key) \
                   AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.backend_id = b.backend_id AND i.backend_key = b.backend_key) \
                   ORDER BY b.created_ms LIMIT ?)",
            )
            .bind(older_than_ms)
            .bind(i64::from(limit))).await?;
            Ok(done)
        })
        .await
    }
}

impl<D: 'static> Blobs for Store<D> {}
