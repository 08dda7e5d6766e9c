//! CompleteMultipartUpload: validation, the multipart ETag and the swap.

use std::collections::BTreeMap;

use crate::multipart_rules::{choose_parts, multipart_etag};
use sqlx::SqliteConnection;
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, PartInfo, Segment, WriteCondition};

use super::multipart::{load_parts, load_upload, remove_upload};
use super::objects::{check_condition, insert_object, load_object, remove_object};
use super::rows::enqueue_unreferenced;
use super::{SqliteStore, db};

impl SqliteStore {
    pub(super) async fn complete_upload_impl(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
        condition: &WriteCondition,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        let mut tx = self.write_tx().await?;
        let upload = match load_upload(&mut tx, bucket, upload_id).await {
            Err(CpError::NoSuchUpload) => return completed_again(&mut tx, bucket, upload_id).await,
            other => other?,
        };
        let stored: BTreeMap<u32, PartInfo> = load_parts(&mut tx, upload_id, 0, None)
            .await?
            .into_iter()
            .map(|p| (p.part_number, p))
            .collect();
        let chosen = choose_parts(parts, &stored)?;

        let mut meta = upload.meta.clone();
        meta.etag = multipart_etag(&chosen)?;
        meta.size = chosen
            .iter()
            .try_fold(0u64, |sum, p| sum.checked_add(p.size))
            .ok_or_else(|| CpError::InvalidArgument("object too large".into()))?;
        meta.parts_count =
            u32::try_from(chosen.len()).map_err(|_| CpError::InvalidArgument("too many parts".into()))?;
        meta.last_modified_unix_ms = now_ms;
        let segments: Vec<Segment> = chosen.iter().map(|p| p.segment.clone()).collect();
        let record = ObjectRecord {
            bucket: upload.bucket.clone(),
            key: upload.key.clone(),
            object_id: object_id.to_owned(),
            meta,
            segments,
            copies: Vec::new(),
        };

        check_condition(&mut tx, bucket, &upload.key, condition).await?;
        let mut items = remove_object(&mut tx, bucket, &upload.key, &record.segments).await?;
        insert_object(&mut tx, &record).await?;
        let unused: Vec<Segment> = stored
            .values()
            .filter(|p| !parts.iter().any(|(n, _)| *n == p.part_number))
            .map(|p| p.segment.clone())
            .collect();
        items.extend(enqueue_unreferenced(&mut tx, &unused, &record.segments).await?);
        remove_upload(&mut tx, upload_id).await?;
        remember_completed(&mut tx, &record, upload_id, now_ms).await?;
        tx.commit().await.map_err(db)?;
        Ok((record, items))
    }
}

/// How long a completed upload answers a repeated CompleteMultipartUpload.
const REMEMBER_COMPLETED_MS: i64 = 24 * 3600 * 1000;

/// Remembers which object an upload made, so that a repeated
/// CompleteMultipartUpload (an SDK retry after a lost reply) gets the same
/// answer; forgets uploads completed more than a day ago.
async fn remember_completed(
    conn: &mut SqliteConnection,
    record: &ObjectRecord,
    upload_id: &str,
    now_ms: i64,
) -> CpResult<()> {
    sqlx::query(
        "INSERT INTO completed_uploads (upload_id, bucket, key, object_id, completed_ms) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(upload_id)
    .bind(&record.bucket)
    .bind(&record.key)
    .bind(&record.object_id)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query("DELETE FROM completed_uploads WHERE completed_ms < ?")
        .bind(now_ms - REMEMBER_COMPLETED_MS)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// The answer to a repeated CompleteMultipartUpload: the object the upload
/// made, while it is still the key's current object; `NoSuchUpload` otherwise.
async fn completed_again(
    conn: &mut SqliteConnection,
    bucket: &str,
    upload_id: &str,
) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT key, object_id FROM completed_uploads WHERE upload_id = ? AND bucket = ?")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some((key, object_id)) = row else {
        return Err(CpError::NoSuchUpload);
    };
    match load_object(conn, bucket, &key).await? {
        Some(record) if record.object_id == object_id => Ok((record, Vec::new())),
        _ => Err(CpError::NoSuchUpload),
    }
}
