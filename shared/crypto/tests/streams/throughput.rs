//! Not a test: prints seal/open throughput for 64 MiB.
//! `cargo test -p strata-crypto --release --test streams -- --ignored --nocapture throughput`

use std::time::Instant;

use bytes::Bytes;
use strata_crypto::{ByteStream, Dek, open, seal};

use crate::*;

#[tokio::test]
#[ignore = "throughput probe, not a test"]
async fn throughput() {
    const MIB: usize = 1024 * 1024;
    let len = 64 * MIB;
    let data = Bytes::from(random_bytes(&mut rng(99), len));
    let pieces: Vec<std::io::Result<Bytes>> = (0..len).step_by(MIB).map(|at| Ok(data.slice(at..at + MIB))).collect();
    let dek = Dek::generate();

    let t = Instant::now();
    let input: ByteStream = Box::pin(futures::stream::iter(pieces));
    let (sealed, err) = drain(seal(input, dek.clone(), CTX)).await;
    let seal_s = t.elapsed().as_secs_f64();
    assert!(err.is_none());

    let sealed = Bytes::from(sealed);
    let pieces: Vec<std::io::Result<Bytes>> = (0..sealed.len())
        .step_by(MIB)
        .map(|at| Ok(sealed.slice(at..(at + MIB).min(sealed.len()))))
        .collect();
    let t = Instant::now();
    let input: ByteStream = Box::pin(futures::stream::iter(pieces));
    let (plain, err) = drain(open(input, dek, CTX, len as u64, 0, len as u64)).await;
    let open_s = t.elapsed().as_secs_f64();
    assert!(err.is_none() && plain[..] == data[..]);

    println!(
        "seal: {:.0} MB/s, open: {:.0} MB/s (64 MiB)",
        len as f64 / 1e6 / seal_s,
        len as f64 / 1e6 / open_s
    );
}
