//! Row shapes, column lists and the statements several roles share: buckets,
//! segments, objects, intents and the cleanup queue.

use std::collections::BTreeMap;

use strata_core::{CleanupItem, CpError, CpResult, ObjectMeta, ObjectRecord, Segment, WriteCondition};

use crate::sql::{Conn, Dialect, Sql, now_ms, sql};

/// The columns holding an [`ObjectMeta`], shared by `objects` and `uploads`.
pub(crate) const META_COLUMNS: &str = "size, etag, content_type, content_encoding, \
     content_disposition, content_language, cache_control, expires, user_metadata, \
     checksums, parts_count, last_modified_ms";
pub(crate) const META_PLACEHOLDERS: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

#[derive(sqlx::FromRow)]
pub(crate) struct MetaRow {
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
    pub(crate) fn into_meta(self) -> CpResult<ObjectMeta> {
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
pub(crate) fn bind_meta<'q>(q: Sql<'q>, meta: &'q ObjectMeta) -> CpResult<Sql<'q>> {
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

pub(crate) fn to_i64(v: u64) -> CpResult<i64> {
    i64::try_from(v).map_err(|_| CpError::InvalidArgument(format!("size {v} out of range")))
}

pub(crate) fn to_u64(v: i64) -> CpResult<u64> {
    u64::try_from(v).map_err(|_| CpError::Internal(format!("stored size {v} is negative")))
}

/// A count or sum the database returned; negative (never, short of a bug) reads as 0.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_json(map: &BTreeMap<String, String>) -> CpResult<String> {
    serde_json::to_string(map).map_err(|e| CpError::Internal(format!("encode metadata: {e}")))
}

pub(crate) fn from_json(text: &str) -> CpResult<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| CpError::Internal(format!("decode metadata: {e}")))
}

/// Whether the bucket exists. With `lock` (a row lock clause such as
/// `FOR KEY SHARE`), PostgreSQL holds that lock on the bucket row until the
/// transaction ends, so `delete_bucket` (which locks the row `FOR UPDATE`)
/// waits for this writer, or this writer sees the bucket gone.
pub(crate) async fn bucket_exists(c: &mut Conn, bucket: &str, lock: &'static str) -> CpResult<bool> {
    let text = format!("SELECT 1 FROM buckets WHERE name = ?{}", c.dialect().lock(lock));
    let row: Option<(i32,)> = sql(text).bind(bucket).fetch_optional(c).await?;
    Ok(row.is_some())
}

/// `NoSuchBucket` unless the bucket exists (see [`bucket_exists`] for `lock`).
pub(crate) async fn require_bucket(c: &mut Conn, bucket: &str, lock: &'static str) -> CpResult<()> {
    if bucket_exists(c, bucket, lock).await? {
        Ok(())
    } else {
        Err(CpError::NoSuchBucket)
    }
}

/// The row lock writers hold on their bucket (see [`bucket_exists`]).
pub(crate) const WRITER: &str = " FOR KEY SHARE";

/// On PostgreSQL, takes a transaction-level advisory lock named by `scope`
/// and `name` (the 64-bit hash of both), released at commit or rollback; a
/// hash collision only serializes two unrelated writers. Nothing on SQLite,
/// whose write transactions are serialized already.
pub(crate) async fn advisory_lock(c: &mut Conn, scope: &str, name: &str) -> CpResult<()> {
    if c.dialect() == Dialect::Postgres {
        sql("SELECT pg_advisory_xact_lock(hashtextextended(? || ':' || ?, 0))")
            .bind(scope)
            .bind(name)
            .execute(c)
            .await?;
    }
    Ok(())
}

/// Serializes the writers of one (bucket, key). Bucket names never hold `/`.
pub(crate) async fn lock_key(c: &mut Conn, bucket: &str, key: &str) -> CpResult<()> {
    advisory_lock(c, "object", &format!("{bucket}/{key}")).await
}

/// Copies of an object share the `segments` table: segment `i` of copy `c`
/// has `seq = c * COPY_STRIDE + i` (copy 0 is the primary). Parts are at most
/// 10 000, so the ranges never overlap; usage triggers and removal treat every
/// copy's bytes alike.
pub(crate) const COPY_STRIDE: i64 = 100_000;

/// The primary copy's segments and every further copy, each in order.
pub(crate) async fn load_segments(c: &mut Conn, object_id: &str) -> CpResult<(Vec<Segment>, Vec<Vec<Segment>>)> {
    let rows: Vec<(i64, String, String, i64)> =
        sql("SELECT seq, backend_id, backend_key, length FROM segments WHERE object_id = ? ORDER BY seq")
            .bind(object_id)
            .fetch_all(c)
            .await?;
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
    // The primary copy is never removed alone; the lowest copy is the primary.
    let mut it = copies.into_iter().map(|(_, segs)| segs);
    let primary = it.next().unwrap_or_default();
    Ok((primary, it.collect()))
}

/// The highest copy number of `object_id`, if it has segments.
pub(crate) async fn last_copy(c: &mut Conn, object_id: &str) -> CpResult<Option<i64>> {
    let max: Option<i64> = sql("SELECT MAX(seq) FROM segments WHERE object_id = ?")
        .bind(object_id)
        .scalar(c)
        .await?;
    Ok(max.map(|m| m / COPY_STRIDE))
}

/// Appends `segments` as a new copy of `object_id`; returns its copy number.
pub(crate) async fn insert_copy(c: &mut Conn, object_id: &str, segments: &[Segment]) -> CpResult<i64> {
    let copy = last_copy(c, object_id).await?.map_or(0, |m| m + 1);
    insert_copy_at(c, object_id, copy, segments).await?;
    Ok(copy)
}

/// Writes `segments` as copy `copy` of `object_id` (its slots must be free).
pub(crate) async fn insert_copy_at(c: &mut Conn, object_id: &str, copy: i64, segments: &[Segment]) -> CpResult<()> {
    for (i, seg) in (0_i64..).zip(segments) {
        sql("INSERT INTO segments (object_id, seq, backend_id, backend_key, length) VALUES (?, ?, ?, ?, ?)")
            .bind(object_id)
            .bind(copy * COPY_STRIDE + i)
            .bind(&seg.backend_id)
            .bind(&seg.backend_key)
            .bind(to_i64(seg.length)?)
            .execute(c)
            .await?;
    }
    Ok(())
}

/// Queues bytes for deletion and returns the queued item.
pub(crate) async fn enqueue_cleanup(
    c: &mut Conn,
    backend_id: &str,
    backend_key: &str,
    length: u64,
) -> CpResult<CleanupItem> {
    let id: i64 = sql(
        "INSERT INTO cleanup_queue (backend_id, backend_key, enqueued_ms, length) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(backend_id)
    .bind(backend_key)
    .bind(now_ms())
    .bind(to_i64(length)?)
    .scalar(c)
    .await?;
    Ok(CleanupItem {
        id,
        backend_id: backend_id.to_owned(),
        backend_key: backend_key.to_owned(),
    })
}

/// Queues each of `old` that `keep` does not reference any more.
pub(crate) async fn enqueue_unreferenced(
    c: &mut Conn,
    old: &[Segment],
    keep: &[Segment],
) -> CpResult<Vec<CleanupItem>> {
    let mut items = Vec::new();
    for seg in old {
        let still_used = keep
            .iter()
            .any(|k| k.backend_id == seg.backend_id && k.backend_key == seg.backend_key);
        if !still_used {
            items.push(enqueue_cleanup(c, &seg.backend_id, &seg.backend_key, seg.length).await?);
        }
    }
    Ok(items)
}

/// Every segment of every copy of `record`.
pub(crate) fn all_segments(record: Option<&ObjectRecord>) -> Vec<Segment> {
    record
        .map(|r| r.segments.iter().chain(r.copies.iter().flatten()).cloned().collect())
        .unwrap_or_default()
}

#[derive(sqlx::FromRow)]
struct ObjectRow {
    object_id: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

/// The current object at (bucket, key), if any.
pub(crate) async fn load_object(c: &mut Conn, bucket: &str, key: &str) -> CpResult<Option<ObjectRecord>> {
    let text = format!("SELECT object_id, {META_COLUMNS} FROM objects WHERE bucket = ? AND key = ?");
    let row: Option<ObjectRow> = sql(text).bind(bucket).bind(key).fetch_optional(c).await?;
    let Some(row) = row else { return Ok(None) };
    let (segments, copies) = load_segments(c, &row.object_id).await?;
    Ok(Some(ObjectRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        object_id: row.object_id,
        meta: row.meta.into_meta()?,
        segments,
        copies,
    }))
}

/// Loads the full records of the (bucket, key) rows `listing` returns, in
/// its order, skipping any gone meanwhile (call it in a read transaction).
pub(crate) async fn load_listed(c: &mut Conn, listing: Sql<'_>) -> CpResult<Vec<ObjectRecord>> {
    let rows: Vec<(String, String)> = listing.fetch_all(c).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (bucket, key) in rows {
        out.extend(load_object(c, &bucket, &key).await?);
    }
    Ok(out)
}

/// Removes the object at (bucket, key), if any, and queues those of its
/// segments that `keep` does not reuse.
pub(crate) async fn remove_object(
    c: &mut Conn,
    bucket: &str,
    key: &str,
    keep: &[Segment],
) -> CpResult<Vec<CleanupItem>> {
    let Some(old) = load_object(c, bucket, key).await? else {
        return Ok(Vec::new());
    };
    let items = enqueue_unreferenced(c, &all_segments(Some(&old)), keep).await?;
    // Segments go with the row (ON DELETE CASCADE); delete them explicitly anyway.
    sql("DELETE FROM segments WHERE object_id = ?")
        .bind(&old.object_id)
        .execute(c)
        .await?;
    sql("DELETE FROM objects WHERE bucket = ? AND key = ?")
        .bind(bucket)
        .bind(key)
        .execute(c)
        .await?;
    Ok(items)
}

/// Writes `record` as the object at its (bucket, key); the slot must be free.
pub(crate) async fn insert_object(c: &mut Conn, record: &ObjectRecord) -> CpResult<()> {
    let text =
        format!("INSERT INTO objects (bucket, key, object_id, {META_COLUMNS}) VALUES (?, ?, ?, {META_PLACEHOLDERS})");
    let q = sql(text).bind(&record.bucket).bind(&record.key).bind(&record.object_id);
    bind_meta(q, &record.meta)?.execute(c).await?;
    insert_copy_at(c, &record.object_id, 0, &record.segments).await?;
    for copy in &record.copies {
        insert_copy(c, &record.object_id, copy).await?;
    }
    Ok(())
}

/// Deletes an intent; returns whether it existed.
pub(crate) async fn delete_intent_row(c: &mut Conn, intent_id: &str) -> CpResult<bool> {
    let done = sql("DELETE FROM intents WHERE intent_id = ?")
        .bind(intent_id)
        .execute(c)
        .await?;
    Ok(done > 0)
}

/// Fails unless `condition` holds of the current object at (bucket, key).
/// Called inside the commit's write transaction, after the key is locked, so
/// no other writer of the key can commit between the check and the swap.
pub(crate) async fn check_condition(c: &mut Conn, bucket: &str, key: &str, condition: &WriteCondition) -> CpResult<()> {
    if condition.is_none() {
        return Ok(());
    }
    let current: Option<(String,)> = sql("SELECT etag FROM objects WHERE bucket = ? AND key = ?")
        .bind(bucket)
        .bind(key)
        .fetch_optional(c)
        .await?;
    condition.check(current.as_ref().map(|(e,)| e.as_str()))
}

/// Removes the intent a commit redeems. A missing intent means the reaper
/// judged the write abandoned and may have deleted its bytes, so the commit
/// must not make them current; the client retries the whole request.
pub(crate) async fn redeem_intent(c: &mut Conn, intent_id: &str) -> CpResult<()> {
    if !delete_intent_row(c, intent_id).await? {
        return Err(CpError::Unavailable(
            "the write took too long and its plan expired before the commit; retry the request".into(),
        ));
    }
    Ok(())
}
