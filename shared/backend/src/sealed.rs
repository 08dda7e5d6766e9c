//! Blob I/O in plaintext terms. A blob whose plan or segment carries a
//! [`BlobKey`] is sealed on its way to the backend and opened on the way
//! back, reading only the chunks a range needs; a full read of a blob with a
//! recorded SHA-256 is checked before its last bytes are released. Integrity
//! failures surface as `io::ErrorKind::InvalidData` items in the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use sha2::{Digest, Sha256};
use strata_core::{BlobKey, Segment};

use crate::{Backend, BackendError, BlobMeta, ByteStream};

/// The data key of a sealed blob, or why it cannot be used.
fn dek(key: &BlobKey) -> Result<strata_crypto::Dek, BackendError> {
    if key.dek.is_empty() {
        return Err(BackendError::Key(format!(
            "the data key of this blob (key id `{}`) was not provided",
            key.key_id
        )));
    }
    strata_crypto::Dek::from_slice(&key.dek).map_err(|e| BackendError::Key(e.to_string()))
}

/// Stores `body` under `key`, sealed when `cipher` is given. Returns the bytes
/// stored on the backend (the sealed length for a sealed blob).
pub async fn put_blob(
    backend: &dyn Backend,
    key: &str,
    meta: &BlobMeta,
    body: ByteStream,
    cipher: Option<&BlobKey>,
) -> Result<u64, BackendError> {
    match cipher {
        None => backend.put(key, meta, body).await,
        Some(c) => {
            let sealed = strata_crypto::seal(body, dek(c)?, &c.context);
            backend.put(key, meta, sealed).await
        }
    }
}

/// The number of bytes a segment occupies on its backend: its encoded form
/// (compressed or delta, when it has one), sealed when it is.
pub fn stored_len(seg: &Segment) -> u64 {
    let encoded = seg.encoding.as_ref().map_or(seg.length, |e| e.encoded_len());
    match seg.cipher {
        Some(_) => strata_crypto::sealed_len(encoded),
        None => encoded,
    }
}

/// Streams plaintext bytes `[start, end)` of a segment stored as it is (no
/// encoding). A full read of a plaintext segment with a recorded SHA-256 is
/// verified; a sealed one is authenticated chunk by chunk instead.
/// An encoded segment (compressed, delta) is read with [`get_encoded`] and
/// decoded by the caller, who verifies the decoded bytes.
pub async fn get_blob(backend: &dyn Backend, seg: &Segment, start: u64, end: u64) -> Result<ByteStream, BackendError> {
    if seg.encoding.is_some() {
        return Err(BackendError::Key(
            "an encoded blob must be decoded, not read as it is".into(),
        ));
    }
    let end = end.min(seg.length);
    let start = start.min(end);
    let plain = open_range(backend, seg, seg.length, start, end).await?;
    // A sealed blob's every chunk is authenticated as it is opened, which is
    // stronger than the digest and costs no second pass over the bytes.
    match &seg.sha256 {
        Some(hex) if start == 0 && end == seg.length && seg.cipher.is_none() => Ok(verify_sha256(plain, hex.clone())),
        _ => Ok(plain),
    }
}

/// Streams bytes `[start, end)` of a segment's encoded form (what was sealed,
/// if sealed), for a decoder. Not verified against the segment's SHA-256,
/// which is of the decoded bytes.
pub async fn get_encoded(
    backend: &dyn Backend,
    seg: &Segment,
    start: u64,
    end: u64,
) -> Result<ByteStream, BackendError> {
    let len = seg.encoding.as_ref().map_or(seg.length, |e| e.encoded_len());
    let end = end.min(len);
    let start = start.min(end);
    open_range(backend, seg, len, start, end).await
}

/// `[start, end)` of a blob whose pre-sealing length is `len`, opened.
async fn open_range(
    backend: &dyn Backend,
    seg: &Segment,
    len: u64,
    start: u64,
    end: u64,
) -> Result<ByteStream, BackendError> {
    match &seg.cipher {
        None => backend.get(&seg.backend_key, start, end - start).await,
        Some(c) => {
            let dek = dek(c)?;
            let span = strata_crypto::span(len, start, end);
            let raw = backend
                .get(&seg.backend_key, span.cipher_start, span.cipher_end - span.cipher_start)
                .await?;
            Ok(strata_crypto::open(raw, dek, &c.context, len, start, end))
        }
    }
}

/// Streams the raw stored bytes of a segment (ciphertext for a sealed blob),
/// for copies that keep the seal.
pub async fn get_raw(backend: &dyn Backend, seg: &Segment) -> Result<ByteStream, BackendError> {
    backend.get(&seg.backend_key, 0, stored_len(seg)).await
}

/// Why a read was refused: the bytes are not what was written.
#[derive(Debug, thiserror::Error)]
#[error("blob content does not match its recorded SHA-256 (expected {expected}, got {got})")]
pub struct DigestMismatch {
    pub expected: String,
    pub got: String,
}

/// Whether a stream error means the stored bytes are corrupt or tampered
/// with (as opposed to a failed transfer).
pub fn is_integrity_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
}

/// Passes `inner` through, holding back the latest chunk until the next one
/// arrives; at the end the SHA-256 is checked and the last chunk released
/// only if it matches. A corrupt blob therefore never reads to completion.
pub fn verify_sha256(inner: ByteStream, expected_hex: String) -> ByteStream {
    Box::pin(Verify {
        inner,
        hash: Some(Sha256::new()),
        held: None,
        expected: expected_hex.to_ascii_lowercase(),
        done: false,
    })
}

struct Verify {
    inner: ByteStream,
    hash: Option<Sha256>,
    held: Option<Bytes>,
    expected: String,
    done: bool,
}

impl Stream for Verify {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(b))) => {
                    if b.is_empty() {
                        continue;
                    }
                    if let Some(h) = self.hash.as_mut() {
                        h.update(&b);
                    }
                    if let Some(prev) = self.held.replace(b) {
                        return Poll::Ready(Some(Ok(prev)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    let got = hex::encode(self.hash.take().map(|h| h.finalize()).unwrap_or_default());
                    if got != self.expected {
                        let e = DigestMismatch {
                            expected: self.expected.clone(),
                            got,
                        };
                        return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, e))));
                    }
                    return Poll::Ready(self.held.take().map(Ok));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn stream(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<io::Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn collect(mut s: ByteStream) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn a_matching_digest_passes_every_byte() {
        let good = hex::encode(Sha256::digest(b"hello world"));
        let (out, err) = collect(verify_sha256(stream(&[b"hello", b" ", b"world"]), good)).await;
        assert_eq!(out, b"hello world");
        assert!(err.is_none());
    }

    #[tokio::test]
    async fn a_mismatch_withholds_the_last_chunk() {
        let other = hex::encode(Sha256::digest(b"hello there"));
        let (out, err) = collect(verify_sha256(stream(&[b"hello", b" ", b"world"]), other)).await;
        assert_eq!(out, b"hello ");
        let err = err.expect("mismatch is an error");
        assert!(is_integrity_error(&err));
    }
}
