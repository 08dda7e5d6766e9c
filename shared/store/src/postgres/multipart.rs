//! Multipart uploads: creation, parts, listings and abort.

use sqlx::PgConnection;
use strata_core::{
    CleanupItem, CpError, CpResult, ListPartsPage, ListUploadsPage, ListUploadsQuery, PartInfo, Segment, UploadInfo,
};

use super::objects::redeem_intent;
use super::rows::{
    META_COLUMNS, MetaRow, bind_meta, enqueue_unreferenced, from_json, meta_placeholders, require_bucket,
    require_bucket_shared, to_i64, to_json, to_u64,
};
use super::{PgStore, db};
use crate::listing::prefix_successor;

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

/// The upload `upload_id` of `bucket`, or `NoSuchUpload`.
pub(super) async fn load_upload(conn: &mut PgConnection, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
    let sql = format!(
        "SELECT upload_id, bucket, key, initiated_ms, {META_COLUMNS} FROM uploads \
         WHERE upload_id = $1 AND bucket = $2"
    );
    let row: Option<UploadRow> = sqlx::query_as(&sql)
        .bind(upload_id)
        .bind(bucket)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.ok_or(CpError::NoSuchUpload)?.into_info()
}

/// Parts of an upload numbered above `marker`, ascending, at most `limit`.
pub(super) async fn load_parts(
    conn: &mut PgConnection,
    upload_id: &str,
    marker: u32,
    limit: Option<u32>,
) -> CpResult<Vec<PartInfo>> {
    let sql = format!(
        "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 AND part_number > $2 \
         ORDER BY part_number LIMIT $3"
    );
    let rows: Vec<PartRow> = sqlx::query_as(&sql)
        .bind(upload_id)
        .bind(i64::from(marker))
        .bind(limit.map(i64::from))
        .fetch_all(conn)
        .await
        .map_err(db)?;
    rows.into_iter().map(PartRow::into_info).collect()
}

/// Like [`load_upload`], and locks the upload row until the transaction ends:
/// its parts change under one writer at a time.
pub(super) async fn lock_upload(conn: &mut PgConnection, bucket: &str, upload_id: &str) -> CpResult<UploadInfo> {
    let locked: Option<(i32,)> =
        sqlx::query_as("SELECT 1 FROM uploads WHERE upload_id = $1 AND bucket = $2 FOR UPDATE")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    if locked.is_none() {
        return Err(CpError::NoSuchUpload);
    }
    load_upload(conn, bucket, upload_id).await
}

/// Deletes the upload and its parts rows.
pub(super) async fn remove_upload(conn: &mut PgConnection, upload_id: &str) -> CpResult<()> {
    sqlx::query("DELETE FROM parts WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM uploads WHERE upload_id = $1")
        .bind(upload_id)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

impl PgStore {
    pub(super) async fn create_upload_impl(&self, upload: &UploadInfo) -> CpResult<()> {
        let mut tx = self.write_tx().await?;
        require_bucket_shared(&mut tx, &upload.bucket).await?;
        let sql = format!(
            "INSERT INTO uploads (upload_id, bucket, key, initiated_ms, {META_COLUMNS}) \
             VALUES ($1, $2, $3, $4, {})",
            meta_placeholders(5)
        );
        let q = sqlx::query(&sql)
            .bind(&upload.upload_id)
            .bind(&upload.bucket)
            .bind(&upload.key)
            .bind(upload.initiated_unix_ms);
        bind_meta(q, &upload.meta)?.execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn commit_part_impl(
        &self,
        intent_id: &str,
        bucket: &str,
        upload_id: &str,
        part: &PartInfo,
    ) -> CpResult<Vec<CleanupItem>> {
        let mut tx = self.write_tx().await?;
        lock_upload(&mut tx, bucket, upload_id).await?;
        let old: Option<(String, String, i64)> =
            sqlx::query_as("SELECT backend_id, backend_key, size FROM parts WHERE upload_id = $1 AND part_number = $2")
                .bind(upload_id)
                .bind(i64::from(part.part_number))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let old: Vec<Segment> = old
            .into_iter()
            .map(|(backend_id, backend_key, size)| {
                Ok(Segment {
                    backend_id,
                    backend_key,
                    length: to_u64(size)?,
                    ..Default::default()
                })
            })
            .collect::<CpResult<_>>()?;
        let items = enqueue_unreferenced(&mut tx, &old, std::slice::from_ref(&part.segment)).await?;
        // Delete and insert rather than an upsert: the usage triggers fire on both.
        sqlx::query("DELETE FROM parts WHERE upload_id = $1 AND part_number = $2")
            .bind(upload_id)
            .bind(i64::from(part.part_number))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let sql = format!("INSERT INTO parts (upload_id, {PART_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        sqlx::query(&sql)
            .bind(upload_id)
            .bind(i64::from(part.part_number))
            .bind(&part.etag)
            .bind(to_i64(part.size)?)
            .bind(part.last_modified_unix_ms)
            .bind(&part.segment.backend_id)
            .bind(&part.segment.backend_key)
            .bind(to_json(&part.checksums)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        redeem_intent(&mut tx, intent_id).await?;
        tx.commit().await.map_err(db)?;
        Ok(items)
    }

    pub(super) async fn list_parts_impl(
        &self,
        bucket: &str,
        upload_id: &str,
        marker: u32,
        max_parts: u32,
    ) -> CpResult<(UploadInfo, ListPartsPage)> {
        let mut tx = self.read_tx().await?;
        let upload = load_upload(&mut tx, bucket, upload_id).await?;
        let mut page = ListPartsPage::default();
        if max_parts > 0 {
            let mut parts = load_parts(&mut tx, upload_id, marker, Some(max_parts.saturating_add(1))).await?;
            page.is_truncated = parts.len() > max_parts as usize;
            parts.truncate(max_parts as usize);
            page.next_part_number_marker = parts.last().map_or(0, |p| p.part_number);
            page.parts = parts;
        }
        tx.commit().await.map_err(db)?;
        Ok((upload, page))
    }

    pub(super) async fn list_uploads_impl(&self, query: &ListUploadsQuery) -> CpResult<ListUploadsPage> {
        let mut tx = self.read_tx().await?;
        require_bucket(&mut tx, &query.bucket).await?;
        let mut page = ListUploadsPage::default();
        if query.max_uploads == 0 {
            return Ok(page);
        }
        let upper = prefix_successor(&query.prefix);
        let mut sql = format!(
            "SELECT upload_id, bucket, key, initiated_ms, {META_COLUMNS} FROM uploads \
             WHERE bucket = $1 AND key >= $2"
        );
        let mut n = 2;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if upper.is_some() {
            sql.push_str(&format!(" AND key < {}", next()));
        }
        let marker = !query.key_marker.is_empty();
        let id_marker = marker && !query.upload_id_marker.is_empty();
        if id_marker {
            let (a, b, c) = (next(), next(), next());
            sql.push_str(&format!(" AND (key > {a} OR (key = {b} AND upload_id > {c}))"));
        } else if marker {
            sql.push_str(&format!(" AND key > {}", next()));
        }
        sql.push_str(&format!(" ORDER BY key, upload_id LIMIT {}", next()));
        let mut q = sqlx::query_as(&sql).bind(&query.bucket).bind(&query.prefix);
        if let Some(upper) = &upper {
            q = q.bind(upper);
        }
        if marker {
            q = q.bind(&query.key_marker);
        }
        if id_marker {
            q = q.bind(&query.key_marker).bind(&query.upload_id_marker);
        }
        let rows: Vec<UploadRow> = q
            .bind(i64::from(query.max_uploads) + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        page.is_truncated = rows.len() > query.max_uploads as usize;
        page.uploads = rows
            .into_iter()
            .take(query.max_uploads as usize)
            .map(UploadRow::into_info)
            .collect::<CpResult<_>>()?;
        Ok(page)
    }

    pub(super) async fn abort_upload_impl(&self, bucket: &str, upload_id: &str) -> CpResult<Vec<CleanupItem>> {
        let mut tx = self.write_tx().await?;
        lock_upload(&mut tx, bucket, upload_id).await?;
        let parts = load_parts(&mut tx, upload_id, 0, None).await?;
        let segments: Vec<Segment> = parts.into_iter().map(|p| p.segment).collect();
        let items = enqueue_unreferenced(&mut tx, &segments, &[]).await?;
        remove_upload(&mut tx, upload_id).await?;
        tx.commit().await.map_err(db)?;
        Ok(items)
    }
}
