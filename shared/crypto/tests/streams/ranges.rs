use rand::Rng;
use strata_crypto::{CHUNK, Dek, HEADER_LEN, Span, span};

use crate::*;

fn interesting(plain_len: u64) -> Vec<u64> {
    let mut v = vec![0, 1, plain_len.saturating_sub(1), plain_len];
    for k in 1..=3 {
        for d in [-1i64, 0, 1] {
            v.push((k * CHUNK).saturating_add_signed(d));
        }
    }
    v.retain(|&o| o <= plain_len);
    v.sort();
    v.dedup();
    v
}

async fn check_all_ranges(plain_len: u64, seed: u64) {
    let mut rng = rng(seed);
    let data = random_bytes(&mut rng, plain_len as usize);
    let dek = Dek::generate();
    let sealed = seal_all(&data, &dek, CTX, &mut rng).await;
    let offsets = interesting(plain_len);
    for &start in &offsets {
        for &end in offsets.iter().filter(|&&e| e >= start) {
            let s = span(plain_len, start, end);
            assert!(
                s.cipher_start <= s.cipher_end && s.cipher_end <= sealed.len() as u64,
                "{s:?}"
            );
            let (plain, err) = open_range(&sealed, &dek, CTX, plain_len, start, end, &mut rng).await;
            assert!(err.is_none(), "[{start}, {end}) of {plain_len}: {err:?}");
            assert!(
                plain[..] == data[start as usize..end as usize],
                "[{start}, {end}) of {plain_len}"
            );
        }
    }
    // A few random ranges too.
    for _ in 0..20 {
        let start = rng.random_range(0..=plain_len);
        let end = rng.random_range(start..=plain_len);
        let (plain, err) = open_range(&sealed, &dek, CTX, plain_len, start, end, &mut rng).await;
        assert!(
            err.is_none() && plain[..] == data[start as usize..end as usize],
            "[{start}, {end})"
        );
    }
}

#[tokio::test]
async fn every_interesting_range_of_a_blob_with_a_short_last_chunk() {
    check_all_ranges(3 * CHUNK + 100, 10).await;
}

#[tokio::test]
async fn every_interesting_range_of_a_blob_of_whole_chunks() {
    check_all_ranges(2 * CHUNK, 11).await;
}

#[tokio::test]
async fn ranges_of_tiny_blobs() {
    for len in [0, 1, 5] {
        check_all_ranges(len, 12 + len).await;
    }
}

#[test]
fn span_geometry() {
    let len = 3 * CHUNK + 100;
    let stride = CHUNK + 16;
    // Full read: header included.
    assert_eq!(
        span(len, 0, len),
        Span {
            first_chunk: 0,
            last_chunk: 3,
            cipher_start: 0,
            cipher_end: 16 + 3 * stride + 116,
            skip: 0,
            take: len
        }
    );
    // Within chunk 1 only: no header.
    let s = span(len, CHUNK + 10, CHUNK + 20);
    assert_eq!((s.first_chunk, s.last_chunk, s.skip, s.take), (1, 1, 10, 10));
    assert_eq!(
        (s.cipher_start, s.cipher_end),
        (HEADER_LEN + stride, HEADER_LEN + 2 * stride)
    );
    // Across a boundary.
    let s = span(len, CHUNK - 1, CHUNK + 1);
    assert_eq!(
        (s.first_chunk, s.last_chunk, s.cipher_start, s.skip, s.take),
        (0, 1, 0, CHUNK - 1, 2)
    );
    // Ending exactly at a boundary does not touch the next chunk.
    assert_eq!(span(len, CHUNK, 2 * CHUNK).last_chunk, 1);
    // Empty ranges of a non-empty blob fetch nothing; of the empty blob, the whole blob.
    let s = span(len, 5, 5);
    assert_eq!((s.cipher_start, s.cipher_end, s.take), (0, 0, 0));
    assert!(s.first_chunk > s.last_chunk);
    let s = span(0, 0, 0);
    assert_eq!(
        (s.first_chunk, s.last_chunk, s.cipher_start, s.cipher_end, s.take),
        (0, 0, 0, 32, 0)
    );
    // Out-of-range arguments are clamped, never panic.
    assert_eq!(span(10, 3, 100), span(10, 3, 10));
    assert_eq!(span(10, 8, 2).take, 0);
    let _ = span(u64::MAX, 0, u64::MAX);
    let _ = span(u64::MAX, u64::MAX - 1, u64::MAX);
}

#[tokio::test]
async fn empty_range_rejects_stray_ciphertext() {
    let mut rng = rng(13);
    let dek = Dek::generate();
    let sealed = seal_all(&[9u8; 50], &dek, CTX, &mut rng).await;
    let (out, err) = drain(strata_crypto::open(
        pieces(&sealed, &mut rng),
        dek.clone(),
        CTX,
        50,
        7,
        7,
    ))
    .await;
    assert!(out.is_empty());
    assert!(crypto_err(err).contains("too long"));
}
