//! Sealing: a plaintext stream of unknown length into header + authenticated chunks.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;

use crate::ByteStream;
use crate::format::{CHUNK, ChunkCipher, HEADER, TAG_LEN};
use crate::keys::Dek;

const CHUNK_USIZE: usize = CHUNK as usize;

/// Encrypts a plaintext stream of unknown length into a version-1 sealed blob (header, then chunks).
///
/// `dek` must be fresh for this blob (nonces are chunk indexes); `context` is the id of the object the blob
/// belongs to and must be given again to [`open`](crate::open). The header is yielded first, then one item per
/// chunk (ciphertext and tag). A chunk is only sealed once the next plaintext byte or the end of the input is
/// seen, since the last chunk is marked as final; at most one chunk plus one input piece is buffered.
///
/// An error of the input stream is passed through unchanged (the same `io::Error`) and ends the output.
pub fn seal(plain: ByteStream, dek: Dek, context: &str) -> ByteStream {
    Box::pin(Seal {
        input: plain,
        cipher: ChunkCipher::new(&dek, context),
        pending: BytesMut::new(),
        index: 0,
        header_sent: false,
        input_done: false,
        finished: false,
    })
}

struct Seal {
    input: ByteStream,
    cipher: ChunkCipher,
    /// Plaintext received and not yet sealed.
    pending: BytesMut,
    /// Index of the next chunk to seal.
    index: u64,
    header_sent: bool,
    input_done: bool,
    finished: bool,
}

impl Seal {
    fn seal_chunk(&mut self, len: usize, last: bool) -> Bytes {
        let mut out = BytesMut::with_capacity(len + TAG_LEN as usize);
        out.extend_from_slice(&self.pending[..len]);
        self.pending.advance(len);
        let tag = self.cipher.seal_chunk(self.index, last, &mut out);
        out.extend_from_slice(&tag);
        self.index += 1;
        out.freeze()
    }
}

impl Stream for Seal {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if !this.header_sent {
            this.header_sent = true;
            return Poll::Ready(Some(Ok(Bytes::from_static(&HEADER))));
        }
        loop {
            // More than a chunk pending: the first chunk is known not to be the last.
            if this.pending.len() > CHUNK_USIZE {
                return Poll::Ready(Some(Ok(this.seal_chunk(CHUNK_USIZE, false))));
            }
            if this.input_done {
                // The rest (at most one chunk; empty only for an empty plaintext) is the final chunk.
                this.finished = true;
                let len = this.pending.len();
                let chunk = this.seal_chunk(len, true);
                this.pending = BytesMut::new();
                return Poll::Ready(Some(Ok(chunk)));
            }
            match this.input.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.input_done = true,
                Poll::Ready(Some(Ok(piece))) => this.pending.extend_from_slice(&piece),
                Poll::Ready(Some(Err(err))) => {
                    this.finished = true;
                    this.pending = BytesMut::new();
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.finished { (0, Some(0)) } else { (1, None) }
    }
}
