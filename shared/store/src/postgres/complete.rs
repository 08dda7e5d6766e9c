//! CompleteMultipartUpload: validation, the multipart ETag and the swap.

use std::collections::BTreeMap;

use crate::multipart_rules::{choose_parts, multipart_etag};
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, PartInfo, Segment};

use super::multipart::{load_parts, lock_upload, remove_upload};
use super::objects::{insert_object, remove_object};
use super::rows::enqueue_unreferenced;
use super::{PgStore, db, lock_key};

impl PgStore {
    pub(super) async fn complete_upload_impl(
        &self,
        bucket: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        object_id: &str,
        now_ms: i64,
    ) -> CpResult<(ObjectRecord, Vec<CleanupItem>)> {
        let mut tx = self.write_tx().await?;
        let upload = lock_upload(&mut tx, bucket, upload_id).await?;
        lock_key(&mut tx, bucket, &upload.key).await?;
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

        let mut items = remove_object(&mut tx, bucket, &upload.key, &record.segments).await?;
        insert_object(&mut tx, &record).await?;
        let unused: Vec<Segment> = stored
            .values()
            .filter(|p| !parts.iter().any(|(n, _)| *n == p.part_number))
            .map(|p| p.segment.clone())
            .collect();
        items.extend(enqueue_unreferenced(&mut tx, &unused, &record.segments).await?);
        remove_upload(&mut tx, upload_id).await?;
        tx.commit().await.map_err(db)?;
        Ok((record, items))
    }
}
