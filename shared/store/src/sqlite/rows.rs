//! Row shapes, column lists and small helpers shared by the statements.

use std::collections::BTreeMap;

use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqliteConnection};
use strata_core::{CleanupItem, CpError, CpResult, ObjectMeta, Segment};

use super::db;

pub(super) type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// The columns holding an [`ObjectMeta`], shared by `objects` and `uploads`.
pub(super) const META_COLUMNS: &str = "size, etag, content_type, content_encoding, \
     content_disposition, content_language, cache_control, expires, user_metadata, \
     checksums, parts_count, last_modified_ms";
pub(super) const META_PLACEHOLDERS: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

#[derive(sqlx::FromRow)]
pub(super) struct MetaRow {
    size: i64,
    etag: String,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
    user_metadata: String,
    checksums: String,
    parts_count: i64,
    last_modified_ms: i64,
}

impl MetaRow {
    pub(super) fn into_meta(self) -> CpResult<ObjectMeta> {
        Ok(ObjectMeta {
            size: to_u64(self.size)?,
            etag: self.etag,
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires,
            user_metadata: from_json(&self.user_metadata)?,
            checksums: from_json(&self.checksums)?,
            parts_count: u32::try_from(self.parts_count)
                .map_err(|_| CpError::Internal("stored parts count out of range".into()))?,
            last_modified_unix_ms: self.last_modified_ms,
        })
    }
}

/// Binds the [`META_COLUMNS`] of `meta`, in order.
pub(super) fn bind_meta<'q>(q: Query<'q>, meta: &'q ObjectMeta) -> CpResult<Query<'q>> {
    Ok(q.bind(to_i64(meta.size)?)
        .bind(meta.etag.as_str())
        .bind(meta.content_type.as_deref())
        .bind(meta.content_encoding.as_deref())
        .bind(meta.content_disposition.as_deref())
        .bind(meta.content_language.as_deref())
        .bind(meta.cache_control.as_deref())
        .bind(meta.expires.as_deref())
        .bind(to_json(&meta.user_metadata)?)
        .bind(to_json(&meta.checksums)?)
        .bind(i64::from(meta.parts_count))
        .bind(meta.last_modified_unix_ms))
}

pub(super) fn to_i64(v: u64) -> CpResult<i64> {
    i64::try_from(v).map_err(|_| CpError::InvalidArgument(format!("size {v} out of range")))
}

pub(super) fn to_u64(v: i64) -> CpResult<u64> {
    u64::try_from(v).map_err(|_| CpError::Internal(format!("stored size {v} is negative")))
}

pub(super) fn to_json(map: &BTreeMap<String, String>) -> CpResult<String> {
    serde_json::to_string(map).map_err(|e| CpError::Internal(format!("encode metadata: {e}")))
}

pub(super) fn from_json(text: &str) -> CpResult<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| CpError::Internal(format!("decode metadata: {e}")))
}

pub(super) async fn bucket_exists(conn: &mut SqliteConnection, bucket: &str) -> CpResult<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM buckets WHERE name = ?")
        .bind(bucket)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    Ok(row.is_some())
}

pub(super) async fn require_bucket(conn: &mut SqliteConnection, bucket: &str) -> CpResult<()> {
    if bucket_exists(conn, bucket).await? {
        Ok(())
    } else {
        Err(CpError::NoSuchBucket)
    }
}

/// The segments of an object, in order.
/// Copies of an object share the `segments` table: segment `i` of copy `c`
/// has `seq = c * COPY_STRIDE + i` (copy 0 is the primary). Parts are at most
/// 10 000, so the ranges never overlap; usage triggers and removal treat every
/// copy's bytes alike.
pub(super) const COPY_STRIDE: i64 = 100_000;

/// The primary copy's segments and every further copy, each in order.
pub(super) async fn load_segments(
    conn: &mut SqliteConnection,
    object_id: &str,
) -> CpResult<(Vec<Segment>, Vec<Vec<Segment>>)> {
    let rows: Vec<(i64, String, String, i64)> =
        sqlx::query_as("SELECT seq, backend_id, backend_key, length FROM segments WHERE object_id = ? ORDER BY seq")
            .bind(object_id)
            .fetch_all(conn)
            .await
            .map_err(db)?;
    let mut copies: Vec<(i64, Vec<Segment>)> = Vec::new();
    for (seq, backend_id, backend_key, length) in rows {
        let copy = seq / COPY_STRIDE;
        let seg = Segment {
            backend_id,
            backend_key,
            length: to_u64(length)?,
            ..Default::default()
        };
        match copies.last_mut() {
            Some((c, segs)) if *c == copy => segs.push(seg),
            _ => copies.push((copy, vec![seg])),
        }
    }
    let mut it = copies.into_iter();
    let primary = match it.next() {
        Some((0, segs)) => segs,
        Some((_, segs)) => {
            // The primary copy is never removed alone; treat the lowest as primary.
            segs
        }
        None => Vec::new(),
    };
    Ok((primary, it.map(|(_, s)| s).collect()))
}

/// Appends `segments` as a new copy of `object_id`; returns its copy number.
pub(super) async fn insert_copy(conn: &mut SqliteConnection, object_id: &str, segments: &[Segment]) -> CpResult<i64> {
    let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM segments WHERE object_id = ?")
        .bind(object_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let copy = max.map_or(0, |m| m / COPY_STRIDE + 1);
    insert_segments_at(conn, object_id, copy * COPY_STRIDE, segments).await?;
    Ok(copy)
}

pub(super) async fn insert_segments(
    conn: &mut SqliteConnection,
    object_id: &str,
    segments: &[Segment],
) -> CpResult<()> {
    insert_segments_at(conn, object_id, 0, segments).await
}

async fn insert_segments_at(
    conn: &mut SqliteConnection,
    object_id: &str,
    first_seq: i64,
    segments: &[Segment],
) -> CpResult<()> {
    for (i, seg) in segments.iter().enumerate() {
        let seq = first_seq + i as i64;
        sqlx::query(
            "INSERT INTO segments (object_id, seq, backend_id, backend_key, length) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(object_id)
        .bind(seq)
        .bind(&seg.backend_id)
        .bind(&seg.backend_key)
        .bind(to_i64(seg.length)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Queues bytes for deletion and returns the queued item.
pub(super) async fn enqueue_cleanup(
    conn: &mut SqliteConnection,
    backend_id: &str,
    backend_key: &str,
    length: u64,
) -> CpResult<CleanupItem> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO cleanup_queue (backend_id, backend_key, enqueued_ms, length) VALUES (?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(backend_id)
    .bind(backend_key)
    .bind(super::now_ms())
    .bind(to_i64(length)?)
    .fetch_one(conn)
    .await
    .map_err(db)?;
    Ok(CleanupItem {
        id,
        backend_id: backend_id.to_owned(),
        backend_key: backend_key.to_owned(),
    })
}

/// Queues each of `old` that `keep` does not reference any more.
pub(super) async fn enqueue_unreferenced(
    conn: &mut SqliteConnection,
    old: &[Segment],
    keep: &[Segment],
) -> CpResult<Vec<CleanupItem>> {
    let mut items = Vec::new();
    for seg in old {
        let still_used = keep
            .iter()
            .any(|k| k.backend_id == seg.backend_id && k.backend_key == seg.backend_key);
        if !still_used {
            items.push(enqueue_cleanup(&mut *conn, &seg.backend_id, &seg.backend_key, seg.length).await?);
        }
    }
    Ok(items)
}
