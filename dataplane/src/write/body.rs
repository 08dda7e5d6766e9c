//! The bytes of a write and what they are checked against: a client's body
//! (read once, verified against its Content-MD5, checksum and declared
//! length), or a range of a stored object (CopyObject, UploadPartCopy), read
//! again for each attempt and checked against the source's stored checksum
//! when it is copied whole. Every strategy reads through [`Body::open`].

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use s3s::dto::StreamingBlob;
use s3s::{S3Result, StdError, s3_error};
use strata_core::ObjectRecord;

use crate::pipeline::{DigestSlot, Digests, Expect, Verifying, verify};
use crate::s3::StrataS3;

/// A body as the verifying pipeline reads it.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, StdError>> + Send + Sync>>;

/// A body being read through the verifying pipeline.
pub(crate) type Verified = Verifying<BodyStream>;

/// Where the bytes of a write come from.
pub(crate) enum Body<'a> {
    /// The request's own body; `stream` is `None` once it has been read.
    Client {
        stream: Option<BodyStream>,
        /// What the client declared about it.
        expect: Expect,
        /// Its Content-Length, told to the planner.
        size_hint: Option<u64>,
    },
    /// Bytes `[start, end)` of a stored object (its SSE-C keys opened).
    Copy {
        src: &'a ObjectRecord,
        start: u64,
        end: u64,
    },
}

impl<'a> Body<'a> {
    /// A client's body (none: an empty one) with what it declared.
    pub fn client(blob: Option<StreamingBlob>, expect: Expect, size_hint: Option<u64>) -> Body<'a> {
        let blob =
            blob.unwrap_or_else(|| StreamingBlob::wrap(futures::stream::empty::<Result<Bytes, std::io::Error>>()));
        Body::Client {
            stream: Some(Box::pin(blob)),
            expect,
            size_hint,
        }
    }

    /// Bytes `[start, end)` of `src`.
    pub fn copy(src: &'a ObjectRecord, start: u64, end: u64) -> Body<'a> {
        Body::Copy { src, start, end }
    }

    /// The length the planner is told of.
    pub fn size_hint(&self) -> Option<u64> {
        match self {
            Body::Client { size_hint, .. } => *size_hint,
            Body::Copy { start, end, .. } => Some(end - start),
        }
    }

    /// The length the body must have, when it is declared.
    pub fn declared_len(&self) -> Option<u64> {
        match self {
            Body::Client { expect, .. } => expect.length,
            Body::Copy { start, end, .. } => Some(end - start),
        }
    }

    /// Opens the bytes for one pass through the verifying pipeline; the slot
    /// holds their digests once the stream has ended cleanly. A client's body
    /// opens once, a copy source on every call.
    pub fn open(&mut self, s3: &StrataS3) -> S3Result<(Verified, DigestSlot)> {
        match self {
            Body::Client { stream, expect, .. } => {
                let Some(stream) = stream.take() else {
                    tracing::error!("a client body was read twice");
                    return Err(s3_error!(InternalError));
                };
                Ok(verify(stream, expect.clone()))
            }
            Body::Copy { src, start, end } => {
                let read = s3.read_range(src, *start, *end)?;
                let stream: BodyStream = Box::pin(read.map_err(|e| Box::new(e) as StdError));
                Ok(verify(stream, copy_expect(src, *start, *end)))
            }
        }
    }
}

/// The digests of a body whose stream has ended cleanly (`None`: it has not).
pub(crate) fn take_digests(slot: &DigestSlot) -> Option<Digests> {
    slot.lock().ok().and_then(|mut d| d.take())
}

/// What a copied range is checked against.
fn copy_expect(src: &ObjectRecord, start: u64, end: u64) -> Expect {
    let whole = start == 0 && end == src.meta.size;
    let checksum = src
        .meta
        .checksums
        .iter()
        .find_map(|(name, v)| crate::checksum::Algo::parse(name).map(|a| (a, v.clone())))
        .filter(|_| whole);
    Expect {
        checksum,
        length: Some(end - start),
        ..Expect::default()
    }
}
