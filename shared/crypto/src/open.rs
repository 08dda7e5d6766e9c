//! Opening: verifying and decrypting the chunks of a sealed blob that a plaintext range needs.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;

use crate::format::{ChunkCipher, HEADER, HEADER_LEN, Span, TAG_LEN, chunk_count, chunk_plain_len, span};
use crate::keys::Dek;
use crate::{ByteStream, CryptoError};

/// Decrypts a fetched part of a sealed blob into plaintext `[start, end)`.
///
/// `cipher` must yield exactly the sealed bytes `[s.cipher_start, s.cipher_end)` for
/// `s = span(plain_len, start, end)`; `plain_len` is the blob's plaintext length (from the catalog) and fixes
/// the chunk sizes and which chunk is final; `dek` and `context` are those the blob was sealed with.
///
/// Each chunk is verified before any of its bytes are yielded. A bad header, a chunk that fails
/// authentication, a ciphertext that ends early or goes on past `cipher_end` yields one `io::Error` of kind
/// `InvalidData` wrapping a [`CryptoError`], and the stream ends. An error of the input stream is passed
/// through unchanged and ends the stream. Arguments out of range are clamped as [`span`] does.
pub fn open(cipher: ByteStream, dek: Dek, context: &str, plain_len: u64, start: u64, end: u64) -> ByteStream {
    let s = span(plain_len, start, end);
    Box::pin(Open {
        input: cipher,
        cipher: ChunkCipher::new(&dek, context),
        need_header: s.includes_header(),
        last_index: chunk_count(plain_len) - 1,
        next: s.first_chunk,
        skip: s.skip,
        take: s.take,
        span: s,
        plain_len,
        buf: BytesMut::new(),
        input_done: false,
        finished: false,
    })
}

struct Open {
    input: ByteStream,
    cipher: ChunkCipher,
    span: Span,
    plain_len: u64,
    /// Index of the blob's final chunk.
    last_index: u64,
    need_header: bool,
    /// Next chunk to verify.
    next: u64,
    /// Plaintext still to drop from the next chunk.
    skip: u64,
    /// Plaintext still to yield.
    take: u64,
    /// Ciphertext received and not yet consumed.
    buf: BytesMut,
    input_done: bool,
    finished: bool,
}

enum Step {
    /// A verified, trimmed piece of plaintext (maybe empty).
    Plain(Bytes),
    /// More input is needed.
    NeedInput,
    /// All expected chunks were verified and the input ended with nothing left over.
    Done,
}

impl Open {
    fn step(&mut self) -> Result<Step, CryptoError> {
        if self.need_header {
            if self.buf.len() < HEADER_LEN as usize {
                return self.need_input();
            }
            if self.buf[..HEADER_LEN as usize] != HEADER {
                return Err(CryptoError::BadHeader);
            }
            self.buf.advance(HEADER_LEN as usize);
            self.need_header = false;
        }
        if self.next <= self.span.last_chunk {
            let index = self.next;
            let body_len = chunk_plain_len(self.plain_len, index);
            // Chunk sizes are at most CHUNK + TAG_LEN, so these fit in usize.
            let body = usize::try_from(body_len).map_err(|_| CryptoError::Truncated)?;
            if self.buf.len() < body + TAG_LEN as usize {
                return self.need_input();
            }
            let mut chunk = self.buf.split_to(body + TAG_LEN as usize);
            let mut tag = [0u8; TAG_LEN as usize];
            tag.copy_from_slice(&chunk[body..]);
            chunk.truncate(body);
            self.cipher
                .open_chunk(index, index == self.last_index, &mut chunk, tag)?;
            self.next += 1;
            let skip = self.skip.min(body_len);
            self.skip -= skip;
            let take = self.take.min(body_len - skip);
            self.take -= take;
            let plain = chunk.freeze().slice(skip as usize..(skip + take) as usize);
            return Ok(Step::Plain(plain));
        }
        // Everything expected was verified: anything more is an error.
        if !self.buf.is_empty() {
            return Err(CryptoError::TooLong);
        }
        if self.input_done {
            Ok(Step::Done)
        } else {
            Ok(Step::NeedInput)
        }
    }

    fn need_input(&self) -> Result<Step, CryptoError> {
        if self.input_done {
            Err(CryptoError::Truncated)
        } else {
            Ok(Step::NeedInput)
        }
    }

    fn fail(&mut self, err: std::io::Error) -> Poll<Option<std::io::Result<Bytes>>> {
        self.finished = true;
        self.buf = BytesMut::new();
        Poll::Ready(Some(Err(err)))
    }
}

impl Stream for Open {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match this.step() {
                Err(err) => return this.fail(err.into_io()),
                Ok(Step::Plain(plain)) if plain.is_empty() => continue,
                Ok(Step::Plain(plain)) => return Poll::Ready(Some(Ok(plain))),
                Ok(Step::Done) => {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                Ok(Step::NeedInput) => match this.input.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => this.input_done = true,
                    Poll::Ready(Some(Ok(piece))) => this.buf.extend_from_slice(&piece),
                    Poll::Ready(Some(Err(err))) => return this.fail(err),
                },
            }
        }
    }
}
