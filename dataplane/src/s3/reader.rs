//! Reads: an object's copies (`segments`, then each of `copies`) are tried in
//! health order — closed breaker first, then half-open, then open — skipping
//! copies on backends whose monthly egress limit is used up. A failed read
//! (on open or mid-stream) moves to the next copy at the byte offset already
//! sent, so the client sees one uninterrupted body; with no copy left the
//! stream fails and the response is aborted, never silently truncated.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use s3s::{S3Result, s3_error};
use strata_backend::sealed::{get_blob, is_integrity_error};
use strata_backend::{Backend, Backends, ByteStream};
use strata_core::{BreakerState, ControlPlane, ObjectRecord, Segment};

use super::StrataS3;
use crate::delta::DeltaEngine;
use crate::guard::Guard;

/// One full copy of the object, with a handle for each segment's backend.
struct Source {
    parts: Vec<(Segment, Arc<dyn Backend>)>,
}

impl Source {
    fn backend_ids(&self) -> String {
        let ids: Vec<&str> = self.parts.iter().map(|(s, _)| s.backend_id.as_str()).collect();
        ids.join(",")
    }

    /// The segment holding byte `pos` (< object size): its index, the offset
    /// within it and how many bytes of `[pos, end)` it serves.
    fn piece_at(&self, pos: u64, end: u64) -> Option<(usize, u64, u64)> {
        let mut seg_start = 0u64;
        for (i, (seg, _)) in self.parts.iter().enumerate() {
            let seg_end = seg_start + seg.length;
            if pos >= seg_start && pos < seg_end {
                return Some((i, pos - seg_start, end.min(seg_end) - pos));
            }
            seg_start = seg_end;
        }
        None
    }
}

/// Why no copy can be read at all.
#[derive(Debug, PartialEq, Eq)]
enum NoSource {
    /// Every copy is on a backend whose monthly egress limit is used up.
    Egress(Vec<String>),
    /// The record names a backend this data plane does not have.
    UnknownBackend(String),
}

fn rank(s: BreakerState) -> u8 {
    match s {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// The readable copies of `rec`, best first.
fn sources(rec: &ObjectRecord, backends: &Backends, guard: Option<&Guard>) -> Result<Vec<Source>, NoSource> {
    let mut ranked: Vec<(u8, &Vec<Segment>)> = Vec::new();
    let mut exhausted = Vec::new();
    for copy in std::iter::once(&rec.segments).chain(&rec.copies) {
        let egress_out = copy
            .iter()
            .find(|s| guard.is_some_and(|g| g.egress_exhausted(&s.backend_id)));
        if let Some(seg) = egress_out {
            exhausted.push(seg.backend_id.clone());
            continue;
        }
        let worst = copy
            .iter()
            .map(|s| guard.map_or(0, |g| rank(g.state(&s.backend_id))))
            .max()
            .unwrap_or(0);
        ranked.push((worst, copy));
    }
    if ranked.is_empty() && !exhausted.is_empty() {
        exhausted.dedup();
        return Err(NoSource::Egress(exhausted));
    }
    ranked.sort_by_key(|(r, _)| *r);
    let count = ranked.len();
    let mut out = Vec::with_capacity(count);
    let mut unknown = None;
    for (i, (r, copy)) in ranked.into_iter().enumerate() {
        // Open breakers, and the last copy there is, are tried even so.
        let last_resort = r == rank(BreakerState::Open) || i + 1 == count;
        let parts: Option<Vec<_>> = copy
            .iter()
            .map(|s| {
                let b = match guard {
                    Some(g) if last_resort => g.last_resort(&s.backend_id),
                    _ => backends.get(&s.backend_id).cloned(),
                };
                if b.is_none() {
                    unknown = Some(s.backend_id.clone());
                }
                b.map(|b| (s.clone(), b))
            })
            .collect();
        match parts {
            Some(parts) => out.push(Source { parts }),
            None => tracing::error!(backend = ?unknown, "object copy refers to an unknown backend"),
        }
    }
    match (out.is_empty(), unknown) {
        (true, Some(id)) => Err(NoSource::UnknownBackend(id)),
        _ => Ok(out),
    }
}

/// The read in progress.
struct Read {
    sources: Vec<Source>,
    at: usize,
    pos: u64,
    end: u64,
    /// The open piece, the object offset where it ends and its part index.
    current: Option<(ByteStream, u64, usize)>,
    guard: Option<Arc<Guard>>,
    /// Where corrupt blobs are reported.
    cp: Option<Arc<dyn ControlPlane>>,
    /// Decodes delta segments (with the backends to fetch references from).
    delta: Option<(Arc<DeltaEngine>, Backends)>,
    done: bool,
}

impl Read {
    /// A stream error of part `i`: a corrupt blob is reported, then the
    /// read moves to the next copy either way.
    fn stream_failed(&mut self, i: usize, e: &std::io::Error) {
        if is_integrity_error(e)
            && let Some((seg, _)) = self.sources.get(self.at).and_then(|s| s.parts.get(i))
        {
            let decrypt = strata_crypto::CryptoError::from_io(e).is_some();
            crate::metrics::integrity_failure(&seg.backend_id, decrypt);
            tracing::error!(
                backend = %seg.backend_id, blob = %seg.backend_key, error = %e,
                "stored bytes failed their integrity check; reporting the blob as corrupt"
            );
            if let Some(cp) = self.cp.clone() {
                let (id, key, reason) = (seg.backend_id.clone(), seg.backend_key.clone(), e.to_string());
                tokio::spawn(async move {
                    if let Err(err) = cp.report_corrupt(&id, &key, &reason).await {
                        tracing::warn!(error = %err, blob = %key, "could not report a corrupt blob");
                    }
                });
            }
        }
        self.fail_over(e);
    }

    /// Opens `[start, end)` of one segment: decoded when it is a delta.
    async fn open_piece(
        &self,
        seg: &Segment,
        backend: &Arc<dyn Backend>,
        start: u64,
        end: u64,
    ) -> std::io::Result<ByteStream> {
        if seg.encoding.is_none() {
            return get_blob(&**backend, seg, start, end)
                .await
                .map_err(std::io::Error::other);
        }
        let (Some((engine, backends)), Some(cp)) = (&self.delta, &self.cp) else {
            return Err(std::io::Error::other(
                "an encoded segment, and no delta engine to decode it",
            ));
        };
        engine
            .open_segment(seg, backend.clone(), &**cp, backends, start, end)
            .await
    }

    /// Moves to the next copy after a failure of the current one.
    fn fail_over(&mut self, error: &dyn std::fmt::Display) {
        let from = self.sources.get(self.at).map(Source::backend_ids).unwrap_or_default();
        self.at += 1;
        self.current = None;
        if let Some(g) = &self.guard {
            g.read_failover();
        }
        tracing::warn!(
            backends = %from,
            offset = self.pos,
            error = %error,
            copies_left = self.sources.len().saturating_sub(self.at),
            "object read failed; trying the next copy"
        );
    }

    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        while !self.done && self.pos < self.end {
            let Some(source) = self.sources.get(self.at) else {
                self.done = true;
                return Some(Err(std::io::Error::other("no copy of the object could be read")));
            };
            let Some((stream, piece_end, piece)) = &mut self.current else {
                let Some((i, offset, len)) = source.piece_at(self.pos, self.end) else {
                    self.done = true;
                    return Some(Err(std::io::Error::other("object segments do not cover its size")));
                };
                let (seg, backend) = &source.parts[i];
                match self.open_piece(seg, backend, offset, offset + len).await {
                    Ok(s) => self.current = Some((s, self.pos + len, i)),
                    Err(e) => self.fail_over(&e),
                }
                continue;
            };
            let piece = *piece;
            match stream.next().await {
                Some(Ok(mut b)) => {
                    let room = *piece_end - self.pos;
                    if b.len() as u64 > room {
                        b.truncate(room as usize);
                    }
                    self.pos += b.len() as u64;
                    if self.pos >= *piece_end {
                        self.current = None;
                    }
                    if !b.is_empty() {
                        return Some(Ok(b));
                    }
                }
                Some(Err(e)) => self.stream_failed(piece, &e),
                None => self.fail_over(&"the backend ended the stream early"),
            }
        }
        None
    }
}

fn new_read(
    sources: Vec<Source>,
    start: u64,
    end: u64,
    guard: Option<Arc<Guard>>,
    cp: Option<Arc<dyn ControlPlane>>,
) -> Read {
    Read {
        sources,
        at: 0,
        pos: start,
        end,
        current: None,
        guard,
        cp,
        delta: None,
        done: false,
    }
}

/// The rest of a read as a stream, after `first` (a chunk already read).
fn stream_rest(read: Read, first: Option<Bytes>) -> ByteStream {
    let rest = futures::stream::unfold(read, |mut r| async move { r.next_chunk().await.map(|item| (item, r)) });
    let s = futures::stream::iter(first.map(Ok)).chain(rest);
    Box::pin(sync_wrapper::SyncStream::new(s))
}

/// Streams `[start, end)` from the first source that serves it, failing over.
#[cfg(test)]
fn stream_sources(
    sources: Vec<Source>,
    start: u64,
    end: u64,
    guard: Option<Arc<Guard>>,
    cp: Option<Arc<dyn ControlPlane>>,
) -> ByteStream {
    stream_rest(new_read(sources, start, end, guard, cp), None)
}

impl StrataS3 {
    /// Like [`StrataS3::read_range`], but reads the first chunk before
    /// returning, so that when no copy can be read at all the client gets an
    /// error status (503 ServiceUnavailable) instead of a 200 and a cut body.
    pub(super) async fn open_range(&self, rec: &ObjectRecord, start: u64, end: u64) -> S3Result<ByteStream> {
        let mut read = new_read(
            self.readable_copies(rec)?,
            start,
            end,
            self.guard.clone(),
            Some(self.cp.clone()),
        );
        read.delta = self.delta.clone().map(|d| (d, self.backends.clone()));
        match read.next_chunk().await {
            None => Ok(stream_rest(read, None)),
            Some(Ok(first)) => Ok(stream_rest(read, Some(first))),
            Some(Err(e)) => {
                tracing::error!(bucket = %rec.bucket, key = %rec.key, error = %e, "no copy of the object could be read");
                Err(s3_error!(
                    ServiceUnavailable,
                    "No copy of the object can be read right now; retry later."
                ))
            }
        }
    }

    /// Streams bytes `[start, end)` of an object. Each segment is opened only
    /// when the previous one is exhausted, so memory stays bounded.
    pub(crate) fn read_range(&self, rec: &ObjectRecord, start: u64, end: u64) -> S3Result<ByteStream> {
        let list = self.readable_copies(rec)?;
        let mut read = new_read(list, start, end, self.guard.clone(), Some(self.cp.clone()));
        read.delta = self.delta.clone().map(|d| (d, self.backends.clone()));
        Ok(stream_rest(read, None))
    }

    /// The copies a read may use, best first, or the S3 error for none.
    fn readable_copies(&self, rec: &ObjectRecord) -> S3Result<Vec<Source>> {
        sources(rec, &self.backends, self.guard.as_deref()).map_err(|e| match e {
            NoSource::Egress(ids) => crate::errors::egress_exhausted(&ids),
            NoSource::UnknownBackend(id) => {
                tracing::error!(backend = %id, "object refers to an unknown backend");
                s3_error!(InternalError)
            }
        })
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
