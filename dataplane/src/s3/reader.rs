use futures::{StreamExt, TryStreamExt, stream};
use s3s::{S3Result, s3_error};
use strata_backend::ByteStream;
use strata_core::ObjectRecord;

use super::StrataS3;

/// One backend read that serves part of a requested range.
struct Piece {
    backend_id: String,
    backend_key: String,
    offset: u64,
    len: u64,
}

/// Splits the byte range `[start, end)` of an object over its segments.
fn pieces(rec: &ObjectRecord, start: u64, end: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut seg_start = 0u64;
    for seg in &rec.segments {
        let seg_end = seg_start + seg.length;
        let from = start.max(seg_start);
        let to = end.min(seg_end);
        if from < to {
            out.push(Piece {
                backend_id: seg.backend_id.clone(),
                backend_key: seg.backend_key.clone(),
                offset: from - seg_start,
                len: to - from,
            });
        }
        seg_start = seg_end;
        if seg_start >= end {
            break;
        }
    }
    out
}

impl StrataS3 {
    /// Streams bytes `[start, end)` of an object. Each segment is opened only
    /// when the previous one is exhausted, so memory stays bounded.
    pub(super) fn read_range(&self, rec: &ObjectRecord, start: u64, end: u64) -> S3Result<ByteStream> {
        let list = pieces(rec, start, end);
        let mut opened = Vec::with_capacity(list.len());
        for p in list {
            let backend = self.backends.get(&p.backend_id).cloned().ok_or_else(|| {
                tracing::error!(backend = %p.backend_id, "object refers to an unknown backend");
                s3_error!(InternalError)
            })?;
            opened.push((backend, p));
        }
        let s = stream::iter(opened)
            .then(|(backend, p)| async move {
                backend.get(&p.backend_key, p.offset, p.len).await.map_err(|e| {
                    tracing::error!(backend = %p.backend_id, error = %e, "backend read failed");
                    std::io::Error::other(e)
                })
            })
            .try_flatten();
        Ok(Box::pin(sync_wrapper::SyncStream::new(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{ObjectMeta, Segment};

    fn rec(lens: &[u64]) -> ObjectRecord {
        ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            object_id: "o".into(),
            meta: ObjectMeta {
                size: lens.iter().sum(),
                ..Default::default()
            },
            segments: lens
                .iter()
                .enumerate()
                .map(|(i, l)| Segment {
                    backend_id: "d".into(),
                    backend_key: format!("s{i}"),
                    length: *l,
                })
                .collect(),
            copies: Vec::new(),
        }
    }

    #[test]
    fn ranges_map_onto_segments() {
        let r = rec(&[10, 10, 5]);
        let p = pieces(&r, 5, 22);
        let got: Vec<_> = p.iter().map(|p| (p.backend_key.as_str(), p.offset, p.len)).collect();
        assert_eq!(got, vec![("s0", 5, 5), ("s1", 0, 10), ("s2", 0, 2)]);
        assert_eq!(pieces(&r, 10, 20).len(), 1);
        assert!(pieces(&r, 25, 25).is_empty());
    }
}
