//! Each tampering yields InvalidData and never a byte of a tampered (or later) chunk.

use strata_crypto::{CHUNK, Dek, HEADER_LEN};

use crate::*;

const LEN: u64 = 2 * CHUNK + 1000; // chunks of CHUNK, CHUNK and 1000 bytes
const STRIDE: usize = (CHUNK + 16) as usize;

fn chunk_at(i: usize) -> std::ops::Range<usize> {
    let start = HEADER_LEN as usize + i * STRIDE;
    start..(start + STRIDE).min(strata_crypto::sealed_len(LEN) as usize)
}

struct Blob {
    data: Vec<u8>,
    dek: Dek,
    sealed: Vec<u8>,
    rng: rand::rngs::StdRng,
}

async fn blob(seed: u64) -> Blob {
    let mut rng = rng(seed);
    let data = random_bytes(&mut rng, LEN as usize);
    let dek = Dek::generate();
    let sealed = seal_all(&data, &dek, CTX, &mut rng).await;
    Blob { data, dek, sealed, rng }
}

/// Opens `sealed` in full and asserts it fails having yielded exactly the first `good_chunks` chunks.
async fn expect_failure(b: &mut Blob, sealed: &[u8], plain_len: u64, good_chunks: usize) -> String {
    let (out, err) = open_all(sealed, &b.dek, CTX, plain_len, &mut b.rng).await;
    let msg = crypto_err(err);
    let good = (good_chunks * CHUNK as usize).min(b.data.len());
    assert!(
        out[..] == b.data[..good],
        "yielded {} bytes, expected {good} ({msg})",
        out.len()
    );
    msg
}

#[tokio::test]
async fn a_flipped_byte_anywhere_fails_at_its_chunk() {
    let mut b = blob(20).await;
    let mut positions = vec![0, 5, 6, 7, 8, 9, 15];
    for i in 0..3 {
        let r = chunk_at(i);
        positions.extend([
            r.start,
            r.start + 1,
            r.start + 500,
            r.end - 17,
            r.end - 16,
            r.end - 8,
            r.end - 1,
        ]);
    }
    for pos in positions {
        let mut t = b.sealed.clone();
        t[pos] ^= 0x40;
        let chunk = if pos < HEADER_LEN as usize {
            0
        } else {
            (pos - HEADER_LEN as usize) / STRIDE
        };
        let msg = expect_failure(&mut b, &t, LEN, chunk).await;
        if pos < HEADER_LEN as usize {
            assert!(msg.contains("header"), "{msg}");
        } else {
            assert_eq!(msg, format!("chunk {chunk} failed authentication"));
        }
    }
}

#[tokio::test]
async fn truncation_and_dropped_chunks_fail() {
    let mut b = blob(21).await;
    let s = b.sealed.clone();
    for cut in [1, 16, 17, 100, 1016] {
        expect_failure(&mut b, &s[..s.len() - cut], LEN, 2).await;
    }
    // Last chunk dropped: truncated for the catalog's length...
    let without_last = &s[..chunk_at(2).start];
    assert!(expect_failure(&mut b, without_last, LEN, 2).await.contains("truncated"));
    // ...and, if the length were believed shorter too, chunk 1 is not marked final.
    assert_eq!(
        expect_failure(&mut b, without_last, 2 * CHUNK, 1).await,
        "chunk 1 failed authentication"
    );
    // Only the header.
    expect_failure(&mut b, &s[..16], LEN, 0).await;
    expect_failure(&mut b, &[], LEN, 0).await;
}

#[tokio::test]
async fn swapped_chunks_fail() {
    let mut b = blob(22).await;
    let mut t = b.sealed.clone();
    let (c0, c1) = (chunk_at(0), chunk_at(1));
    let first = t[c0.clone()].to_vec();
    t.copy_within(c1.clone(), c0.start);
    t[c1].copy_from_slice(&first);
    assert_eq!(
        expect_failure(&mut b, &t, LEN, 0).await,
        "chunk 0 failed authentication"
    );
}

#[tokio::test]
async fn chunks_spliced_from_other_blobs_fail() {
    let mut b = blob(23).await;
    let data = b.data.clone();
    // Same position from a blob with another DEK, and from a blob with the same DEK and another context.
    let other_dek = seal_all(&data, &Dek::generate(), CTX, &mut b.rng).await;
    let other_ctx = seal_all(&data, &b.dek.clone(), "bucket/object-2", &mut b.rng).await;
    for other in [other_dek, other_ctx] {
        let mut t = b.sealed.clone();
        t[chunk_at(1)].copy_from_slice(&other[chunk_at(1)]);
        assert_eq!(
            expect_failure(&mut b, &t, LEN, 1).await,
            "chunk 1 failed authentication"
        );
    }
}

#[tokio::test]
async fn wrong_plain_len_or_trailing_bytes_fail() {
    let mut b = blob(24).await;
    let s = b.sealed.clone();
    for wrong in [LEN - 1, LEN + 1, LEN - 1000, 3 * CHUNK, 1] {
        let (out, err) = open_all(&s, &b.dek, CTX, wrong, &mut b.rng).await;
        crypto_err(err);
        assert!(out.len() <= 2 * CHUNK as usize && out[..] == b.data[..out.len()]);
    }
    let mut t = s.clone();
    t.push(0);
    let (out, err) = open_all(&t, &b.dek, CTX, LEN, &mut b.rng).await;
    assert!(crypto_err(err).contains("too long"));
    assert!(out == b.data);
}

#[tokio::test]
async fn wrong_key_or_context_fails_at_once() {
    let mut b = blob(25).await;
    let s = b.sealed.clone();
    let (out, err) = open_all(&s, &Dek::generate(), CTX, LEN, &mut b.rng).await;
    assert!(out.is_empty());
    assert_eq!(crypto_err(err), "chunk 0 failed authentication");
    let (out, err) = open_all(&s, &b.dek.clone(), "bucket/other", LEN, &mut b.rng).await;
    assert!(out.is_empty());
    crypto_err(err);
}

#[tokio::test]
async fn ranged_reads_of_tampered_chunks_fail() {
    let mut b = blob(26).await;
    let mut t = b.sealed.clone();
    t[chunk_at(1).start + 3] ^= 1;
    let (out, err) = open_range(&t, &b.dek.clone(), CTX, LEN, CHUNK + 5, CHUNK + 50, &mut b.rng).await;
    assert!(out.is_empty());
    assert_eq!(crypto_err(err), "chunk 1 failed authentication");
    // A range over chunk 2 only is unaffected; one over chunks 0 and 1 yields chunk 0's part only.
    let (out, err) = open_range(&t, &b.dek.clone(), CTX, LEN, 2 * CHUNK, LEN, &mut b.rng).await;
    assert!(err.is_none() && out[..] == b.data[2 * CHUNK as usize..]);
    let (out, err) = open_range(&t, &b.dek.clone(), CTX, LEN, 10, CHUNK + 10, &mut b.rng).await;
    crypto_err(err);
    assert!(out[..] == b.data[10..CHUNK as usize]);
    // Chunk 1 served where chunk 2 is expected (a shifted range) fails too.
    let s = strata_crypto::span(LEN, 2 * CHUNK, LEN);
    let shifted = &b.sealed[chunk_at(1)];
    let (out, err) = drain(strata_crypto::open(
        pieces(shifted, &mut b.rng),
        b.dek.clone(),
        CTX,
        LEN,
        2 * CHUNK,
        LEN,
    ))
    .await;
    assert!(out.is_empty(), "{s:?}");
    crypto_err(err);
}

#[tokio::test]
async fn garbage_never_panics() {
    let mut b = blob(27).await;
    for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, STRIDE, 3 * STRIDE] {
        let junk = random_bytes(&mut b.rng, len);
        for plain_len in [0, 1, 100, CHUNK, LEN, u64::MAX] {
            let (out, err) = open_all(&junk, &b.dek, CTX, plain_len, &mut b.rng).await;
            assert!(out.is_empty());
            crypto_err(err);
        }
    }
}
