//! CompleteMultipartUpload: validation, the multipart ETag and the swap.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use strata_core::{CleanupItem, CpError, CpResult, ObjectRecord, PartInfo, Segment};

use super::multipart::{load_parts, lock_upload, remove_upload};
use super::objects::{insert_object, remove_object};
use super::rows::enqueue_unreferenced;
use super::{PgStore, db, lock_key};

/// Every part but the last must hold at least this many bytes.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// Checks the client's part list against the stored parts and returns the
/// chosen parts in order.
fn choose_parts<'p>(requested: &[(u32, String)], stored: &'p BTreeMap<u32, PartInfo>) -> CpResult<Vec<&'p PartInfo>> {
    if requested.is_empty() {
        return Err(CpError::InvalidPart("the part list must name at least one part".into()));
    }
    if requested.windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err(CpError::InvalidPartOrder);
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for (number, etag) in requested {
        let part = stored
            .get(number)
            .ok_or_else(|| CpError::InvalidPart(format!("part {number} was not uploaded")))?;
        if !unquote(&part.etag).eq_ignore_ascii_case(unquote(etag)) {
            return Err(CpError::InvalidPart(format!(
                "part {number} has ETag {}, not {}",
                unquote(&part.etag),
                unquote(etag)
            )));
        }
        chosen.push(part);
    }
    let last = chosen.len() - 1;
    if chosen[..last].iter().any(|p| p.size < MIN_PART_SIZE) {
        return Err(CpError::EntityTooSmall);
    }
    Ok(chosen)
}

/// hex(md5(md5(part 1) ‖ … ‖ md5(part N))) + "-N".
fn multipart_etag(parts: &[&PartInfo]) -> CpResult<String> {
    let mut hasher = Md5::new();
    for part in parts {
        let digest = hex::decode(unquote(&part.etag))
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| CpError::Internal(format!("stored ETag of part {} is not an MD5", part.part_number)))?;
        hasher.update(&digest);
    }
    Ok(format!("{}-{}", hex::encode(hasher.finalize()), parts.len()))
}

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
