//! Sealing and opening streams: round trips, ranged reads, tampering and a throughput probe.

mod ranges;
mod roundtrip;
mod tamper;
mod throughput;

use std::io;

use bytes::Bytes;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use strata_crypto::{ByteStream, CHUNK, CryptoError, Dek, open, seal, span};

pub const CTX: &str = "bucket/object-1";

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// A stream of `data` cut into random-size pieces (including empty ones), one piece per item.
pub fn pieces(data: &[u8], rng: &mut StdRng) -> ByteStream {
    let mut items = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let max = if rng.random_bool(0.2) { 3 * CHUNK as usize } else { 5000 };
        let n = rng.random_range(0..=max).min(data.len() - at);
        items.push(Ok(Bytes::copy_from_slice(&data[at..at + n])));
        at += n;
    }
    if rng.random_bool(0.3) {
        items.push(Ok(Bytes::new()));
    }
    Box::pin(futures::stream::iter(items))
}

/// Everything a stream yields: its bytes and its error, if any. Asserts that nothing follows an error.
pub async fn drain(mut s: ByteStream) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => {
                assert!(s.next().await.is_none(), "the stream must end after an error");
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

pub async fn seal_all(data: &[u8], dek: &Dek, ctx: &str, rng: &mut StdRng) -> Vec<u8> {
    let (out, err) = drain(seal(pieces(data, rng), dek.clone(), ctx)).await;
    assert!(err.is_none(), "{err:?}");
    out
}

/// Opens plaintext `[start, end)` from `sealed`, fetching only `span`'s ciphertext, in random pieces.
pub async fn open_range(
    sealed: &[u8],
    dek: &Dek,
    ctx: &str,
    plain_len: u64,
    start: u64,
    end: u64,
    rng: &mut StdRng,
) -> (Vec<u8>, Option<io::Error>) {
    let s = span(plain_len, start, end);
    let fetched = &sealed[(s.cipher_start as usize).min(sealed.len())..(s.cipher_end as usize).min(sealed.len())];
    drain(open(pieces(fetched, rng), dek.clone(), ctx, plain_len, start, end)).await
}

/// Opens a whole (possibly tampered) sealed blob.
pub async fn open_all(
    sealed: &[u8],
    dek: &Dek,
    ctx: &str,
    plain_len: u64,
    rng: &mut StdRng,
) -> (Vec<u8>, Option<io::Error>) {
    drain(open(pieces(sealed, rng), dek.clone(), ctx, plain_len, 0, plain_len)).await
}

/// Asserts `err` is an InvalidData error wrapping a CryptoError, and returns the latter's message.
pub fn crypto_err(err: Option<io::Error>) -> String {
    let err = err.expect("expected an error");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let inner: &CryptoError = CryptoError::from_io(&err).expect("wraps a CryptoError");
    inner.to_string()
}
