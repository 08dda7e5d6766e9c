//! Reading a delta segment: its container is read by range from the blob
//! (opened when sealed), decoded against the cached reference, and a full
//! read is verified against the original's SHA-256.

use std::sync::Arc;

use strata_backend::sealed::{get_encoded, verify_sha256};
use strata_backend::{Backend, Backends, ByteStream};
use strata_core::{ControlPlane, Encoding, Segment};

use super::DeltaEngine;

/// A delta blob as the decoder's random-access source.
struct BlobSource {
    backend: Arc<dyn Backend>,
    seg: Segment,
    len: u64,
}

#[async_trait::async_trait]
impl strata_delta::ContainerSource for BlobSource {
    fn len(&self) -> u64 {
        self.len
    }

    async fn read(&self, offset: u64, len: u64) -> std::io::Result<strata_delta::ByteStream> {
        get_encoded(&*self.backend, &self.seg, offset, offset.saturating_add(len))
            .await
            .map_err(std::io::Error::other)
    }
}

impl DeltaEngine {
    /// Streams logical bytes `[start, end)` of a delta segment.
    pub async fn open_segment(
        &self,
        seg: &Segment,
        backend: Arc<dyn Backend>,
        cp: &dyn ControlPlane,
        backends: &Backends,
        start: u64,
        end: u64,
    ) -> std::io::Result<ByteStream> {
        let Some(Encoding::Delta { encoded_len, ref_id }) = &seg.encoding else {
            return Err(std::io::Error::other("not a delta segment"));
        };
        // Each decode holds about one frame and one reference window until
        // its response ends: the permit bounds how many do at once.
        let permit = (self.decode_permits.clone())
            .acquire_owned()
            .await
            .map_err(|_| std::io::Error::other("delta decoder closed"))?;
        let reference = self.cache.get(ref_id, cp, backends).await?;
        let src = Arc::new(BlobSource {
            backend,
            seg: seg.clone(),
            len: *encoded_len,
        });
        let decoded = strata_delta::decode_range(src, reference, start, end).await?;
        let decoded: ByteStream = Box::pin(futures::StreamExt::map(decoded, move |item| {
            let _held = &permit;
            item
        }));
        Ok(match &seg.sha256 {
            Some(hex) if start == 0 && end == seg.length => verify_sha256(decoded, hex.clone()),
            _ => decoded,
        })
    }
}
