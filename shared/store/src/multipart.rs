//! Multipart uploads: creation, parts, listings, completion and abort.

use std::collections::BTreeMap;

use async_trait::async_trait;
use strata_core::{
    CleanupItem, CpError, CpResult, ListPartsPage, ListUploadsPage, ListUploadsQuery, ObjectRecord, PartInfo, Segment,
    UploadInfo, WriteCondition,
};

use crate::Store;
use crate::listing::prefix_successor;
use crate::metrics::timed;
use crate::multipart_rules::{choose_parts, multipart_etag};
use crate::rows::{
    META_COLUMNS, META_PLACEHOLDERS, MetaRow, WRITER, bind_meta, check_condition, enqueue_unreferenced, from_json,
    insert_object, load_object, lock_key, redeem_intent, remove_object, require_bucket, to_i64, to_json, to_u64,
};
use crate::sql::{Conn, sql};
use crate::store::SqlBacked;

#[derive(sqlx::FromRow)]
struct UploadRow {
    upload_id: String,
    bucket: String,
    key: String,
    initiated_ms: i64,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl UploadRow {
    fn into_info(self) -> CpResult<UploadInfo> {
        Ok(UploadInfo {
            upload_id: self.upload_id,
            bucket: self.bucket,
            key: self.key,
            meta: self.meta.into_meta()?,
            initiated_unix_ms: self.initiated_ms,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PartRow {
    part_number: i64,
    etag: String,
    size: i64,
    last_modified_ms: i64,
    backend_id: String,
    backend_key: String,
    checksums: String,
}

impl PartRow {
    fn into_info(self) -> CpResult<PartInfo> {
        Ok(PartInfo {
            part_number: u32::try_from(self.part_number)
                .map_err(|_| CpError::Internal("stored part number out of range".into()))?,
            etag: self.etag,
            size: to_u64(self.size)?,
            last_modified_unix_ms: self.last_modified_ms,
            segment: Segment {
                backend_id: self.backend_id,
                backend_key: self.backend_key,
                length: to_u64(self.size)?,
                ..Default::default()
            },
            checksums: from_json(&self.checksums)?,
        })
    }
}

const PART_COLUMNS: &str = "part_number, etag, size, last_modified_ms, backend_id, backend_key, checksums";
const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, initiated_ms";

/// The upload `upload_id` of `bucket`, or `NoSuchUpload`. With `lock`
/// (`FOR UPDATE`), PostgreSQL holds the upload row until the transaction
/// ends: its parts change under one writer at a time.
async fn load_upload(c: &mut Conn, bucket: &str, upload_id: &str, lock: &'static str) -> CpResult<UploadInfo> {
    let text = format!(
        "SELECT {UPLOAD_COLUMNS}, {META_COLUMNS} FROM uploads WHERE upload_id = ? AND bucket = ?{}",
        c.dialect().lock(lock)
    );
    let row: Option<UploadRow> = sql(text).bind(upload_id).bind(bucket).fetch_optional(c).await?;
    row.ok_or(CpError::NoSuchUpload)?.into_info()
}

/// Parts of an upload numbered above `marker`, ascending, at most `limit`.
async fn load_parts(c: &mut Conn, upload_id: &str, marker: u32, limit: Option<u32>) -> CpResult<Vec<PartInfo>> {
    let text = format!(
        "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?"
    );
    let rows: Vec<PartRow> = sql(text)
        .bind(upload_id)
        .bind(i64::from(marker))
        .bind(limit.map_or(i64::MAX, i64::from))
        .fetch_all(c)
        .await?;
    rows.into_iter().map(PartRow::into_info).collect()
}

/// Deletes the upload and its parts rows.
async fn remove_upload(c: &mut Conn, upload_id: &str) -> CpResult<()> {
    sql("DELETE FROM parts WHERE upload_id = ?")
        .bind(upload_id)
        .execute(c)
        .await?;
    sql("DELETE FROM uploads WHERE upload_id = ?")
        .bind(upload_id)
        .execute(c)
        .await?;
    Ok(())
}

/// Multipart uploads.
#[async_trait]
pub trait Multipart: SqlBacked {
    async fn create_upload(&self, upload: &UploadInfo) -> CpResult<()> {
        timed("create_upload", async {
            let mut c = self.db().write().await?;
            require_bucket(&mut c, &upload.bucket, WRITER).await?;
            let text = format!(
                "INSERT INTO uploads ({UPLOAD_COLUMNS}, {META_COLUMNS}) VALUES (?, ?, ?, ?, {META_PLACEHOLDERS})"
            );
            let q = sql(text)
                .bind(&upload.upload_id)
                .bind(&upload.bucket)
                .bind(&upload.key)
                .bind(upload.initiated_unix_ms);
            bind_meta(q, &upload.meta)?.execute(&mut c).await?;
            c.commit().await
        })
        .await
    }

    /// `NoSuchUpload` unless the upload exists in that bucket.
    async fn get_upload(&self, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
        timed("get_upload", async {
            load_upload(&mut self.db().conn().await?, bucket, upload_id, "").await
        })
        .await
    }

    /// Records (or replaces) a part and removes the intent; a replaced part's
    /// segment is queued for cleanup and returned.
    async fn commit_part(
        &self,
        intent_id: &str,
        bucket: &str,
        upload_id: &str,
        part: &PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        timed("commit_part", async {
            let mut c = self.db().write().await?;
            load_upload(&mut c, bucket, upload_id, " FOR UPDATE").await?;
            let number = i64::from(part.part_number);
            let old: Option<(String, String, i64)> =
                sql("SELECT backend_id, backend_key, size FROM parts WHERE upload_id = ? AND part_number = ?")
                    .bind(upload_id)
                    .bind(number)
                    .fetch_optional(&mut c)
                    .await?;
            let mut old_segments = Vec::new();
            if let Some((backend_id, backend_key, size)) = old {
                let length = to_u64(size)?;
                old_segments.push(Segment {
                    backend_id,
                    backend_key,
                    length,
                    ..Default::default()
                });
            }
            let items = enqueue_unreferenced(&mut c, &old_segments, std::slice::from_ref(&part.segment)).await?;
            // Delete and insert rather than an upsert: the usage triggers fire on
            // both (SQLite's REPLACE would not fire the delete trigger).
            sql("DELETE FROM parts WHERE upload_id = ? AND part_number = ?")
                .bind(upload_id)
                .bind(number)
                .execute(&mut c)
                .await?;
            sql(format!(
                "INSERT INTO parts (upload_id, {PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(upload_id)
            .bind(number)
            .bind(&part.etag)
            .bind(to_i64(part.size)?)
            .bind(part.last_modified_unix_ms)
            .bind(&part.segment.backend_id)
            .bind(&part.segment.backend_key)
            .bind(to_json(&part.checksums)?)
            .execute(&mut c)
            .await?;
            redeem_intent(&mut c, intent_id).await?;
            c.commit().await?;
            Ok(items)
        })
        .await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        timed("list_parts", async {
            let mut c = self.db().read().await?;
            let upload = load_upload(&mut c, bucket, upload_id, "").await?;
            let mut page = ListPartsPage::default();
            if max_parts > 0 {
                let mut parts = load_parts(&mut c, upload_id, marker, Some(max_parts.saturating_add(1))).await?;
                page.is_truncated = parts.len() > max_parts as usize;
                parts.truncate(max_parts as usize);
                page.next_part_number_marker = parts.last().map_or(0, |p| p.part_number);
                page.parts = parts;
            }
            c.commit().await?;
            Ok((upload, page))
        })
        .await
    }

    async fn list_uploads(&self, query: &ListUploadsQuery) -> CpResult<ListUploadsPage> {
        timed("list_uploads", async {
            let mut c = self.db().read().await?;
            require_bucket(&mut c, &query.bucket, "").await?;
            let mut page = ListUploadsPage::default();
            if query.max_uploads == 0 {
                return Ok(page);
            }
            let upper = prefix_successor(&query.prefix);
            let mut text =
                format!("SELECT {UPLOAD_COLUMNS}, {META_COLUMNS} FROM uploads WHERE bucket = ? AND key >= ?");
            if upper.is_some() {
                text.push_str(" AND key < ?");
            }
            let marker = !query.key_marker.is_empty();
            let id_marker = marker && !query.upload_id_marker.is_empty();
            if id_marker {
                text.push_str(" AND (key > ? OR (key = ? AND upload_id > ?))");
            } else if marker {
                text.push_str(" AND key > ?");
            }
            text.push_str(" ORDER BY key, upload_id LIMIT ?");
            let mut q = sql(text).bind(&query.bucket).bind(&query.prefix);
            if let Some(upper) = upper {
                q = q.bind(upper);
            }
            if marker {
                q = q.bind(&query.key_marker);
            }
            if id_marker {
                q = q.bind(&query.key_marker).bind(&query.upload_id_marker);
            }
            let rows: Vec<UploadRow> = q.bind(i64::from(query.max_uploads) + 1).fetch_all(&mut c).await?;
            c.commit().await?;
            page.is_truncated = rows.len() > query.max_uploads as usize;
            page.uploads = (rows.into_iter().take(query.max_uploads as usize))
                .map(UploadRow::into_info)
                .collect::<CpResult<_>>()?;
            Ok(page)
        })
        .await
    }

    /// Validates the part list (ascending numbers, known parts with matching
    /// ETags, every part but the last at least 5 MiB), then in one transaction
    /// makes the object current with one segment per part, queues the replaced
    /// object and the unused parts for cleanup, and removes the upload, if
    /// `condition` holds of the key's current object. The upload is
    /// remembered for a day: completing it again returns the object it made
    /// (with nothing to clean up) while that object is still current.
    async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        timed("complete_upload", async {
            let mut c = self.db().write().await?;
            let upload = match load_upload(&mut c, bucket, upload_id, " FOR UPDATE").await {
                Err(CpError::NoSuchUpload) => return completed_again(&mut c, bucket, upload_id).await,
                other => other?,
            };
            lock_key(&mut c, bucket, &upload.key).await?;
            let stored: BTreeMap<u32, PartInfo> = (load_parts(&mut c, upload_id, 0, None).await?.into_iter())
                .map(|p| (p.part_number, p))
                .collect();
            let chosen = choose_parts(parts, &stored)?;
            let mut meta = upload.meta.clone();
            meta.etag = multipart_etag(&chosen)?;
            meta.size = (chosen.iter())
                .try_fold(0u64, |sum, p| sum.checked_add(p.size))
                .ok_or_else(|| CpError::InvalidArgument("object too large".into()))?;
            meta.parts_count =
                u32::try_from(chosen.len()).map_err(|_| CpError::InvalidArgument("too many parts".into()))?;
            meta.last_modified_unix_ms = now_ms;
            let record = ObjectRecord {
                bucket: upload.bucket.clone(),
                key: upload.key.clone(),
                object_id: object_id.to_owned(),
                meta,
                segments: chosen.iter().map(|p| p.segment.clone()).collect(),
                copies: Vec::new(),
            };
            check_condition(&mut c, bucket, &upload.key, condition).await?;
            let mut items = remove_object(&mut c, bucket, &upload.key, &record.segments).await?;
            insert_object(&mut c, &record).await?;
            let unused: Vec<Segment> = (stored.values())
                .filter(|p| !parts.iter().any(|(n, _)| *n == p.part_number))
                .map(|p| p.segment.clone())
                .collect();
            items.extend(enqueue_unreferenced(&mut c, &unused, &record.segments).await?);
            remove_upload(&mut c, upload_id).await?;
            remember_completed(&mut c, &record, upload_id, now_ms).await?;
            c.commit().await?;
            Ok((record, items))
        })
        .await
    }

    /// Removes the upload and queues all its parts.
    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        timed("abort_upload", async {
            let mut c = self.db().write().await?;
            load_upload(&mut c, bucket, upload_id, " FOR UPDATE").await?;
            let parts = load_parts(&mut c, upload_id, 0, None).await?;
            let segments: Vec<Segment> = parts.into_iter().map(|p| p.segment).collect();
            let items = enqueue_unreferenced(&mut c, &segments, &[]).await?;
            remove_upload(&mut c, upload_id).await?;
            c.commit().await?;
            Ok(items)
        })
        .await
    }
}

impl<D: 'static> Multipart for Store<D> {}

/// How long a completed upload answers a repeated CompleteMultipartUpload.
const REMEMBER_COMPLETED_MS: i64 = 24 * 3600 * 1000;

/// Remembers which object an upload made, so that a repeated
/// CompleteMultipartUpload (an SDK retry after a lost reply) gets the same
/// answer; forgets uploads completed more than a day ago.
async fn remember_completed(c: &mut Conn, record: &ObjectRecord, upload_id: &str, now_ms: i64) -> CpResult<()> {
    sql("INSERT INTO completed_uploads (upload_id, bucket, key, object_id, completed_ms) VALUES (?, ?, ?, ?, ?)")
        .bind(upload_id)
        .bind(record.bucket.as_str())
        .bind(record.key.as_str())
        .bind(record.object_id.as_str())
        .bind(now_ms)
        .execute(&mut *c)
        .await?;
    sql("DELETE FROM completed_uploads WHERE completed_ms < ?")
        .bind(now_ms - REMEMBER_COMPLETED_MS)
        .execute(c)
        .await?;
    Ok(())
}

/// The answer to a repeated CompleteMultipartUpload: the object the upload
/// made, while it is still the key's current object; `NoSuchUpload` otherwise.
async fn completed_again(c: &mut Conn, bucket: &str, upload_id: &str) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
    let row: Option<(String, String)> =
        sql("SELECT key, object_id FROM completed_uploads WHERE upload_id = ? AND bucket = ?")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&mut *c)
            .await?;
    let Some((key, object_id)) = row else {
        return Err(CpError::NoSuchUpload);
    };
    match load_object(c, bucket, &key).await? {
        Some(record) if record.object_id == object_id => Ok((record, Vec::new())),
        _ => Err(CpError::NoSuchUpload),
    }
}
