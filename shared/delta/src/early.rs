//! Decoding one frame while its first bytes already go out.
//!
//! A frame decodes into one flat buffer (the decoder's history, so no window buffer of its own is
//! needed). While it decodes, finished bytes are copied out in pieces through an unbounded channel,
//! but only while the reader keeps up (at most [`EARLY_MAX`] bytes queued), so memory stays the
//! frame plus a little; the rest of the frame then leaves as slices of the buffer. An object of one
//! frame therefore starts streaming at once instead of after its whole frame is decoded. A frame
//! that turns out corrupt ends the stream with an error after the pieces already sent; a full read
//! is also checked against the object's SHA-256 before its last bytes leave.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer};

use crate::{WINDOW_LOG_MAX, invalid, zerr};

/// Most bytes copied out and not yet taken by the reader, per frame.
const EARLY_MAX: usize = 2 << 20;
/// Smallest piece worth copying out.
const MIN_PIECE: u64 = 256 << 10;
/// Compressed bytes given to the decoder per step.
const FEED: usize = 64 << 10;

/// The decoder's side.
pub(crate) struct Early {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// The reader's side.
pub(crate) struct Receiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Receiver {
    /// The next piece, or `None` once the decoder has finished (or stopped sending).
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        let b = self.rx.recv().await?;
        self.queued.fetch_sub(b.len(), Ordering::AcqRel);
        Some(b)
    }
}

pub(crate) fn channel() -> (Early, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Early {
            tx,
            queued: queued.clone(),
        },
        Receiver { rx, queued },
    )
}

impl Early {
    /// A sink that never sends (for frames decoded whole).
    #[cfg(test)]
    pub(crate) fn none() -> Early {
        channel().0
    }

    /// Sends as much of `piece` as fits under [`EARLY_MAX`], in pieces of at most 1 MiB;
    /// returns how many bytes were sent.
    fn offer(&self, piece: &[u8]) -> usize {
        let room = EARLY_MAX.saturating_sub(self.queued.load(Ordering::Acquire));
        let n = piece.len().min(room);
        if (n as u64) < MIN_PIECE && n < piece.len() {
            return 0;
        }
        for part in piece[..n].chunks(1 << 20) {
            self.queued.fetch_add(part.len(), Ordering::AcqRel);
            // A reader that went away is not an error here: the decode finishes for the cache.
            let _ = self.tx.send(Bytes::copy_from_slice(part));
        }
        n
    }
}

/// Decodes a zstd frame of `out_len` bytes (against `prefix`), offering the bytes `[lo, hi)` to
/// `early` as they are produced. Returns the decoded frame and the offset up to which its bytes
/// were sent early (at least `lo`).
pub(crate) fn decode_frame(
    frame: &[u8],
    prefix: Option<&[u8]>,
    out_len: u64,
    lo: u64,
    hi: u64,
    early: &Early,
) -> io::Result<(Vec<u8>, u64)> {
    let cap = usize::try_from(out_len).map_err(|_| invalid("frame too large"))?;
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    let mut dctx = DCtx::create();
    dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
        .map_err(|c| zerr("zstd parameter", c))?;
    // Decode straight into `out` (it never moves): no window buffer inside the decoder.
    dctx.set_parameter(DParameter::StableOutBuffer(true))
        .map_err(|c| zerr("zstd parameter", c))?;
    if let Some(p) = prefix {
        dctx.ref_prefix(p).map_err(|c| zerr("zstd prefix", c))?;
    }
    let (mut consumed, mut sent) = (0usize, lo);
    loop {
        let limit = (consumed + FEED).min(frame.len());
        let before = (consumed, out.len());
        let mut input = InBuffer::around(&frame[..limit]);
        input.set_pos(consumed);
        let at = out.len();
        let mut output = OutBuffer::around_pos(&mut out, at);
        let hint = dctx
            .decompress_stream(&mut output, &mut input)
            .map_err(|c| zerr("zstd decompress", c))?;
        consumed = input.pos();
        let upto = (out.len() as u64).min(hi);
        if upto >= sent + MIN_PIECE {
            sent += early.offer(&out[sent as usize..upto as usize]) as u64;
        }
        if hint == 0 {
            break;
        }
        if limit == frame.len() && (consumed, out.len()) == before {
            return Err(invalid(if out.len() == cap {
                "frame decoded to the wrong length"
            } else {
                "truncated frame"
            }));
        }
    }
    if out.len() != cap {
        return Err(invalid("frame decoded to the wrong length"));
    }
    Ok((out, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8], prefix: Option<&[u8]>) -> Vec<u8> {
        let mut c = zstd::zstd_safe::CCtx::create();
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .unwrap();
        if let Some(p) = prefix {
            c.ref_prefix(p).unwrap();
        }
        let mut dst = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        c.compress2(&mut dst, data).unwrap();
        dst
    }

    #[tokio::test]
    async fn pieces_then_rest_make_the_range() {
        let prefix: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut data = prefix.clone();
        data[1_000_000] ^= 1;
        let f = frame(&data, Some(&prefix));
        let (tx, mut rx) = channel();
        let (lo, hi) = (100u64, 2_900_000u64);
        let (out, sent) = decode_frame(&f, Some(&prefix), data.len() as u64, lo, hi, &tx).unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        assert!(sent > lo, "nothing was sent early");
        got.extend_from_slice(&out[sent as usize..hi as usize]);
        assert_eq!(got, &data[lo as usize..hi as usize]);
    }

    #[test]
    fn corrupt_and_short_frames_are_errors() {
        let data = vec![5u8; 1 << 20];
        let f = frame(&data, None);
        let early = Early::none();
        assert!(decode_frame(&f[..f.len() - 3], None, data.len() as u64, 0, 10, &early).is_err());
        assert!(decode_frame(&f, None, data.len() as u64 - 1, 0, 10, &early).is_err());
        assert!(decode_frame(&f, None, data.len() as u64 + 1, 0, 10, &early).is_err());
        let mut bad = f.clone();
        let n = bad.len();
        bad[n - 2] ^= 0xff; // the checksum
        assert!(decode_frame(&bad, None, data.len() as u64, 0, 10, &early).is_err());
    }
}
