//! The upload byte pipeline: the client's body streams through to a backend
//! while MD5 and the requested checksum are computed. At the end of the body,
//! before the backend may make the object visible, the digests are checked
//! against what the client declared; a mismatch fails the stream.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::TrailingHeaders;

use crate::checksum::{Algo, Checksum, Md5Hex};

/// What the client declared about its body.
#[derive(Default, Clone)]
pub struct Expect {
    pub md5: Option<[u8; 16]>,
    /// A checksum value sent in a header.
    pub checksum: Option<(Algo, String)>,
    /// A checksum algorithm whose value arrives in the trailer.
    pub trailer: Option<(Algo, TrailingHeaders)>,
    pub length: Option<u64>,
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Content-MD5 does not match the body")]
    BadDigest,
    #[error("{0} checksum does not match the body")]
    ChecksumMismatch(&'static str),
    #[error("the {0} trailer is missing")]
    MissingTrailer(&'static str),
    #[error("body ended after {got} of {expected} bytes")]
    Incomplete { got: u64, expected: u64 },
    #[error("body: {0}")]
    Client(s3s::StdError),
}

/// The digests of a body that passed every check.
#[derive(Debug, Clone)]
pub struct Digests {
    pub size: u64,
    pub md5_hex: String,
    /// SHA-256 of the body, recorded for verify-on-read and scrubbing.
    pub sha256_hex: String,
    pub checksum: Option<(Algo, String)>,
}

pub type DigestSlot = Arc<Mutex<Option<Digests>>>;

pub struct Verifying<S> {
    inner: S,
    md5: Option<Md5Hex>,
    sha256: Option<sha2::Sha256>,
    checksum: Option<Checksum>,
    expect: Expect,
    size: u64,
    slot: DigestSlot,
    done: bool,
}

/// Wraps `body`; the slot holds the digests once the stream has ended cleanly.
pub fn verify<S>(body: S, expect: Expect) -> (Verifying<S>, DigestSlot)
where
    S: Stream<Item = Result<Bytes, s3s::StdError>> + Unpin,
{
    let algo = expect
        .checksum
        .as_ref()
        .map(|c| c.0)
        .or(expect.trailer.as_ref().map(|t| t.0));
    let slot = DigestSlot::default();
    let v = Verifying {
        inner: body,
        md5: Some(Md5Hex::default()),
        sha256: Some(sha2::Digest::new()),
        checksum: algo.map(Checksum::new),
        expect,
        size: 0,
        slot: slot.clone(),
        done: false,
    };
    (v, slot)
}

impl<S> Verifying<S> {
    fn finish(&mut self) -> Result<(), BodyError> {
        if let Some(expected) = self.expect.length
            && self.size != expected
        {
            return Err(BodyError::Incomplete {
                got: self.size,
                expected,
            });
        }
        let (md5_hex, md5) = self.md5.take().expect("finished once").finish();
        let sha256_hex = hex::encode(sha2::Digest::finalize(self.sha256.take().expect("finished once")));
        if self.expect.md5.is_some_and(|m| m != md5) {
            return Err(BodyError::BadDigest);
        }
        let checksum = match self.checksum.take() {
            None => None,
            Some(c) => {
                let algo = c.algo();
                let got = c.finish();
                let declared = match (&self.expect.checksum, &self.expect.trailer) {
                    (Some((_, v)), _) => Some(v.clone()),
                    (None, Some((_, trailers))) => trailers
                        .read(|h| h.get(algo.header()).and_then(|v| v.to_str().ok()).map(str::to_owned))
                        .flatten(),
                    (None, None) => None,
                };
                match declared {
                    None => return Err(BodyError::MissingTrailer(algo.header())),
                    Some(v) if v.trim() != got => return Err(BodyError::ChecksumMismatch(algo.name())),
                    Some(_) => Some((algo, got)),
                }
            }
        };
        *self.slot.lock().expect("digest slot") = Some(Digests {
            size: self.size,
            md5_hex,
            sha256_hex,
            checksum,
        });
        Ok(())
    }
}

impl<S> Stream for Verifying<S>
where
    S: Stream<Item = Result<Bytes, s3s::StdError>> + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let this = &mut *self;
                this.size += chunk.len() as u64;
                if let Some(m) = this.md5.as_mut() {
                    m.update(&chunk);
                }
                if let Some(h) = this.sha256.as_mut() {
                    sha2::Digest::update(h, &chunk);
                }
                if let Some(c) = this.checksum.as_mut() {
                    c.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(io::Error::other(BodyError::Client(e)))))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(io::Error::other(e)))),
                }
            }
        }
    }
}

/// Finds the [`BodyError`] inside an error from a failed upload stream.
pub fn body_error(e: &io::Error) -> Option<&BodyError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<BodyError>())
}
