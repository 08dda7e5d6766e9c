use std::io;

use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use strata_crypto::{ByteStream, CHUNK, Dek, HEADER, HEADER_LEN, chunk_count, open, seal, sealed_len};

use crate::*;

#[tokio::test]
async fn round_trips_at_chunk_boundaries_and_random_lengths() {
    let mut rng = rng(1);
    let c = CHUNK as usize;
    let mut lens = vec![0, 1, 2, 15, 16, 17, c - 1, c, c + 1, 2 * c, 3 * c, 3 * c + 7];
    for _ in 0..12 {
        lens.push(rng.random_range(0..4 * c));
    }
    for len in lens {
        let data = random_bytes(&mut rng, len);
        let dek = Dek::generate();
        let sealed = seal_all(&data, &dek, CTX, &mut rng).await;
        assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
        assert_eq!(sealed[..HEADER_LEN as usize], HEADER);
        let (plain, err) = open_all(&sealed, &dek, CTX, len as u64, &mut rng).await;
        assert!(err.is_none(), "len {len}: {err:?}");
        assert!(plain == data, "len {len}: plaintext differs");
    }
}

#[test]
fn sealed_len_and_chunk_count() {
    assert_eq!(chunk_count(0), 1);
    assert_eq!(sealed_len(0), 32);
    assert_eq!(sealed_len(1), 33);
    assert_eq!(sealed_len(CHUNK), 16 + CHUNK + 16);
    assert_eq!(sealed_len(CHUNK + 1), 16 + CHUNK + 1 + 32);
    assert_eq!(chunk_count(3 * CHUNK), 3);
    assert_eq!(sealed_len(u64::MAX), u64::MAX);
}

#[test]
fn header_layout() {
    assert_eq!(&HEADER[..6], b"STRATA");
    assert_eq!(HEADER[6..9], [1, 1, 16]);
    assert_eq!(HEADER[9..], [0; 7]);
}

#[tokio::test]
async fn same_plaintext_under_fresh_deks_differs() {
    let mut rng = rng(2);
    let data = random_bytes(&mut rng, 1000);
    let a = seal_all(&data, &Dek::generate(), CTX, &mut rng).await;
    let b = seal_all(&data, &Dek::generate(), CTX, &mut rng).await;
    assert_ne!(a, b);
}

#[derive(Debug, thiserror::Error)]
#[error("backend went away")]
struct Upstream;

#[tokio::test]
async fn input_errors_pass_through_unchanged() {
    let items: Vec<io::Result<Bytes>> = vec![Ok(Bytes::from(vec![7u8; 100_000])), Err(io::Error::other(Upstream))];
    let (out, err) = drain(seal(Box::pin(futures::stream::iter(items)), Dek::generate(), CTX)).await;
    let err = err.expect("error passed through");
    assert!(err.get_ref().and_then(|e| e.downcast_ref::<Upstream>()).is_some());
    // The header and the first (non-final) chunk may have gone out; nothing was sealed as final.
    assert!(out.len() as u64 <= HEADER_LEN + CHUNK + 16);

    let dek = Dek::generate();
    let mut rng = rng(3);
    let sealed = seal_all(&[1u8; 100], &dek, CTX, &mut rng).await;
    let items: Vec<io::Result<Bytes>> = vec![
        Ok(Bytes::copy_from_slice(&sealed[..10])),
        Err(io::Error::other(Upstream)),
    ];
    let (out, err) = drain(open(Box::pin(futures::stream::iter(items)), dek, CTX, 100, 0, 100)).await;
    assert!(out.is_empty());
    assert!(
        err.unwrap()
            .get_ref()
            .and_then(|e| e.downcast_ref::<Upstream>())
            .is_some()
    );
}

#[test]
fn streams_are_send_and_sync() {
    fn check<T: Send + Sync>(_: &T) {}
    let empty: ByteStream = Box::pin(futures::stream::empty());
    let s = seal(empty, Dek::generate(), CTX);
    check(&s);
    let empty: ByteStream = Box::pin(futures::stream::empty());
    check(&open(empty, Dek::generate(), CTX, 0, 0, 0));
}

#[tokio::test]
async fn header_is_yielded_before_input_is_read() {
    let never: ByteStream = Box::pin(futures::stream::pending());
    let mut s = seal(never, Dek::generate(), CTX);
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first[..], HEADER);
}
