//! Listing the bucket's blobs (under the backend's prefix) in key order, for
//! the reconciler: ListObjectsV2 with `start-after`, which S3 answers in UTF-8
//! byte order.

use super::S3Backend;
use super::errors::remote;
use crate::listing::{LIST_PAGE_MAX, is_blob_key};
use crate::{BackendError, ListedBlob};

impl S3Backend {
    /// Up to `limit` blobs after `after` (see [`crate::Backend::list_page`]).
    /// Objects under the prefix that are not named like blobs (another
    /// program's, in a shared bucket) are skipped, so this may take several
    /// requests to fill a page; each holds at most one page of keys.
    pub(super) async fn list_blobs(&self, after: &str, limit: u32) -> Result<Vec<ListedBlob>, BackendError> {
        let limit = limit.clamp(1, LIST_PAGE_MAX);
        let mut out: Vec<ListedBlob> = Vec::new();
        let mut start = format!("{}{after}", self.prefix);
        loop {
            let want = limit - out.len() as u32;
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .start_after(&start)
                .max_keys(i32::try_from(want).unwrap_or(1000))
                .send()
                .await
                .map_err(|e| remote("ListObjectsV2", &e, &self.endpoint, &self.field))?;
            let contents = page.contents.unwrap_or_default();
            let truncated = page.is_truncated.unwrap_or(false);
            let Some(last) = contents.last().and_then(|o| o.key.clone()) else {
                return Ok(out);
            };
            for o in contents {
                let Some(key) = o.key.as_deref().and_then(|k| k.strip_prefix(self.prefix.as_str())) else {
                    continue;
                };
                if !is_blob_key(key) || key <= after {
                    continue;
                }
                out.push(ListedBlob {
                    key: key.to_owned(),
                    size: o.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified_ms: o.last_modified.and_then(|t| t.to_millis().ok()).unwrap_or(0),
                });
            }
            if !truncated || out.len() as u32 >= limit {
                out.truncate(limit as usize);
                return Ok(out);
            }
            start = last;
        }
    }
}
