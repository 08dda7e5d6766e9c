use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use strata_delta::*;

fn small_params() -> DeltaParams {
    DeltaParams {
        level: 3,
        frame_size: 64 * 1024,
        margin: 16 * 1024,
        whole_ref_max: 0,
        long_distance: true,
    }
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    // Semi-compressible: random words from a small alphabet mixed with random bytes.
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    for (i, b) in v.iter_mut().enumerate() {
        if (i / 64) % 3 == 0 {
            *b = b'a' + (*b % 8);
        }
    }
    v
}

/// Applies random insertions, deletions and replacements.
fn mutate(rng: &mut StdRng, src: &[u8], edits: usize) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..edits {
        let pos = rng.random_range(0..=v.len());
        let n = rng.random_range(1..2000usize);
        match rng.random_range(0..3) {
            0 => {
                let ins = random_bytes(rng, n);
                v.splice(pos..pos, ins);
            }
            1 => {
                let end = (pos + n).min(v.len());
                v.drain(pos..end);
            }
            _ => {
                let end = (pos + n).min(v.len());
                let rep = random_bytes(rng, end - pos);
                v[pos..end].copy_from_slice(&rep);
            }
        }
    }
    v
}

async fn collect(mut s: ByteStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

struct Case {
    _dir: tempfile::TempDir,
    reference: PathBuf,
    container: Bytes,
}

async fn encode(reference: &[u8], input: &[u8], p: &DeltaParams) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let rp = dir.path().join("ref");
    let ip = dir.path().join("in");
    let op = dir.path().join("out");
    std::fs::write(&rp, reference).unwrap();
    std::fs::write(&ip, input).unwrap();
    let st = encode_file(&ip, &rp, &op, p).await.unwrap();
    let container = Bytes::from(std::fs::read(&op).unwrap());
    assert_eq!(st.encoded_len, container.len() as u64);
    assert_eq!(st.logical_len, input.len() as u64);
    assert_eq!(st.frames as u64, (input.len() as u64).div_ceil(p.frame_size));
    assert_eq!(&container[..8], b"STRDLT1\0");
    Case {
        _dir: dir,
        reference: rp,
        container,
    }
}

async fn decode(_c: &Case, container: Bytes, reference: &Path, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let src: Arc<dyn ContainerSource> = Arc::new(MemSource(container));
    let s = decode_range(src, reference.to_owned(), start, end).await?;
    collect(s).await
}

#[tokio::test]
async fn round_trips_with_edits() {
    let mut rng = StdRng::seed_from_u64(1);
    let reference = random_bytes(&mut rng, 700_000);
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("identical", reference.clone()),
        ("edits", mutate(&mut rng, &reference, 30)),
        ("appended", {
            let mut v = reference.clone();
            v.extend(random_bytes(&mut rng, 150_000));
            v
        }),
        ("truncated", reference[..400_000].to_vec()),
        ("head cut", reference[123_457..].to_vec()),
        ("unrelated", random_bytes(&mut rng, 300_000)),
        ("empty", Vec::new()),
        ("tiny", b"x".to_vec()),
    ];
    for (name, input) in variants {
        for p in [
            small_params(),
            DeltaParams {
                whole_ref_max: u64::MAX,
                ..small_params()
            },
        ] {
            let c = encode(&reference, &input, &p).await;
            let out = decode(&c, c.container.clone(), &c.reference, 0, input.len() as u64)
                .await
                .unwrap();
            assert!(out == input, "{name}: round trip differs");
            let src = MemSource(c.container.clone());
            assert_eq!(logical_len(&src).await.unwrap(), input.len() as u64);
            if name == "edits" || name == "identical" {
                assert!(
                    c.container.len() < input.len() / 5,
                    "{name}: container {} not much smaller than {}",
                    c.container.len(),
                    input.len()
                );
            }
        }
    }
}

#[tokio::test]
async fn default_params_round_trip() {
    let mut rng = StdRng::seed_from_u64(7);
    let reference = random_bytes(&mut rng, 300_000);
    let input = mutate(&mut rng, &reference, 10);
    let c = encode(&reference, &input, &DeltaParams::default()).await;
    assert!(c.container.len() < 60_000, "{}", c.container.len());
    let out = decode(&c, c.container.clone(), &c.reference, 0, input.len() as u64)
        .await
        .unwrap();
    assert!(out == input);
}

#[tokio::test]
async fn no_reference_round_trip() {
    let mut rng = StdRng::seed_from_u64(3);
    let input = random_bytes(&mut rng, 200_000);
    let c = encode(&[], &input, &small_params()).await;
    let out = decode(&c, c.container.clone(), &c.reference, 0, input.len() as u64)
        .await
        .unwrap();
    assert!(out == input);
}

#[tokio::test]
async fn range_decodes_equal_slices() {
    let mut rng = StdRng::seed_from_u64(2);
    let reference = random_bytes(&mut rng, 500_000);
    let input = mutate(&mut rng, &reference, 20);
    let p = small_params();
    let c = encode(&reference, &input, &p).await;
    let n = input.len() as u64;
    let fs = p.frame_size;
    let mut ranges = vec![
        (0, 0),
        (0, 1),
        (n - 1, n),
        (n, n),
        (fs, fs),
        (fs - 1, fs + 1),
        (fs, 2 * fs),
        (2 * fs - 3, 3 * fs + 5),
    ];
    for _ in 0..40 {
        let a = rng.random_range(0..=n);
        let b = rng.random_range(a..=n.min(a + 3 * fs));
        ranges.push((a, b));
    }
    for (a, b) in ranges {
        let out = decode(&c, c.container.clone(), &c.reference, a, b).await.unwrap();
        assert!(out == input[a as usize..b as usize], "range {a}..{b}");
    }
    let e = decode(&c, c.container.clone(), &c.reference, 0, n + 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn file_source_round_trip() {
    let mut rng = StdRng::seed_from_u64(4);
    let reference = random_bytes(&mut rng, 3_000_000);
    let input = mutate(&mut rng, &reference, 20);
    let c = encode(
        &reference,
        &input,
        &DeltaParams {
            frame_size: 1 << 20,
            ..small_params()
        },
    )
    .await;
    let cp = c._dir.path().join("container");
    std::fs::write(&cp, &c.container).unwrap();
    let src: Arc<dyn ContainerSource> = Arc::new(FileSource::open(&cp).await.unwrap());
    let op = c._dir.path().join("decoded");
    let n = decode_to_file(src.clone(), c.reference.clone(), &op).await.unwrap();
    assert_eq!(n, input.len() as u64);
    assert!(std::fs::read(&op).unwrap() == input);
    let out = collect(
        decode_range(src, c.reference.clone(), 1_000_000, 2_500_000)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(out == input[1_000_000..2_500_000]);
}

#[tokio::test]
async fn identity_container_decodes_to_reference() {
    let mut rng = StdRng::seed_from_u64(5);
    let reference = random_bytes(&mut rng, 100_000);
    let dir = tempfile::tempdir().unwrap();
    let rp = dir.path().join("ref");
    std::fs::write(&rp, &reference).unwrap();
    let c = Bytes::from(identity_container(reference.len() as u64));
    assert_eq!(&c[..8], b"STRDLT1\0");
    assert_eq!(&c[c.len() - 8..], b"STRDLTIX");
    assert_eq!(c.len(), 8 + 56 + 40);
    let src: Arc<dyn ContainerSource> = Arc::new(MemSource(c.clone()));
    assert_eq!(logical_len(&*src).await.unwrap(), 100_000);
    let out = collect(decode_range(src.clone(), rp.clone(), 0, 100_000).await.unwrap())
        .await
        .unwrap();
    assert!(out == reference);
    let out = collect(decode_range(src.clone(), rp.clone(), 777, 54_321).await.unwrap())
        .await
        .unwrap();
    assert!(out == reference[777..54_321]);
    // Wrong reference length.
    std::fs::write(&rp, &reference[..99_999]).unwrap();
    let e = decode_range(src, rp.clone(), 0, 10).await.err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // Empty identity.
    let c0 = Bytes::from(identity_container(0));
    let src0: Arc<dyn ContainerSource> = Arc::new(MemSource(c0));
    assert_eq!(logical_len(&*src0).await.unwrap(), 0);
    assert!(
        collect(decode_range(src0, rp, 0, 0).await.unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Decodes fully; Ok(bytes) only if the whole stream decoded.
async fn try_decode_all(container: Bytes, reference: &Path) -> io::Result<Vec<u8>> {
    let src: Arc<dyn ContainerSource> = Arc::new(MemSource(container));
    let len = logical_len(&*src).await?;
    collect(decode_range(src, reference.to_owned(), 0, len).await?).await
}

#[tokio::test]
async fn corruption_is_detected() {
    let mut rng = StdRng::seed_from_u64(6);
    let reference = random_bytes(&mut rng, 400_000);
    let input = mutate(&mut rng, &reference, 20);
    let c = encode(&reference, &input, &small_params()).await;
    let len = c.container.len();
    // Flip single bytes all over the container: every decode either fails with InvalidData or
    // returns exactly the input (a flip in a byte zstd does not use, e.g. reserved index bytes is
    // covered by the index CRC; a flip in the header magic is not read by decoders).
    let mut positions: Vec<usize> = (0..200).map(|_| rng.random_range(8..len)).collect();
    positions.extend(len - 60..len);
    let mut failures = 0;
    for pos in positions {
        let mut bad = c.container.to_vec();
        bad[pos] ^= 1 << rng.random_range(0..8);
        match try_decode_all(Bytes::from(bad), &c.reference).await {
            Ok(out) => assert!(out == input, "corruption at {pos} gave wrong bytes"),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "at {pos}: {e}");
                failures += 1;
            }
        }
    }
    assert!(failures > 150, "only {failures} corruptions detected");
    // Truncations.
    for cut in [1, 5, 40, 41, 100, len / 2, len - 9] {
        let e = try_decode_all(c.container.slice(..len - cut), &c.reference)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "cut {cut}: {e}");
    }
    // Wrong reference of the same length: zstd's checksum catches it.
    let other = mutate(&mut rng, &reference, 0);
    let mut other = other;
    for b in other.iter_mut().skip(1000).step_by(997) {
        *b ^= 0x55;
    }
    let rp2 = c._dir.path().join("ref2");
    std::fs::write(&rp2, &other).unwrap();
    let e = try_decode_all(c.container.clone(), &rp2).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // A partially read stream never yields bytes from a bad frame: corrupt the last frame and
    // check the bytes yielded before the error are a correct prefix.
    let src0 = MemSource(c.container.clone());
    let (_, entries) = read_index(&src0).await.unwrap();
    let last = entries.last().unwrap();
    let mut bad = c.container.to_vec();
    bad[(last.frame_offset + last.frame_len / 2) as usize] ^= 0xff;
    let src: Arc<dyn ContainerSource> = Arc::new(MemSource(Bytes::from(bad)));
    let mut s = decode_range(src, c.reference.clone(), 0, input.len() as u64)
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut err = None;
    while let Some(b) = s.next().await {
        match b {
            Ok(b) => got.extend_from_slice(&b),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err.expect("error").kind(), io::ErrorKind::InvalidData);
    assert!(got == input[..got.len()]);
    assert!(got.len() as u64 <= last.out_offset);
    // Wrong-length reference.
    let rp3 = c._dir.path().join("ref3");
    std::fs::write(&rp3, &reference[..reference.len() - 1]).unwrap();
    let e = try_decode_all(c.container.clone(), &rp3).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // Not a container.
    let e = try_decode_all(Bytes::from(vec![0u8; 200]), &c.reference)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn compress_and_stream_decompress() {
    let mut rng = StdRng::seed_from_u64(8);
    let data = random_bytes(&mut rng, 2_500_000);
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("in");
    let op = dir.path().join("out.zst");
    std::fs::write(&ip, &data).unwrap();
    let n = compress_file(&ip, &op, 3).await.unwrap();
    let z = std::fs::read(&op).unwrap();
    assert_eq!(n, z.len() as u64);
    assert!(z.len() < data.len());
    assert_eq!(sniff(&z), Sniff::Zstd);
    // Feed in awkward chunk sizes, plus two concatenated copies (two frames).
    let mut two = z.clone();
    two.extend_from_slice(&z);
    let chunks: Vec<io::Result<Bytes>> = two.chunks(7777).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let out = collect(decompress_stream(Box::pin(futures::stream::iter(chunks))))
        .await
        .unwrap();
    assert!(out.len() == 2 * data.len() && out[..data.len()] == data[..] && out[data.len()..] == data[..]);
    // Truncated.
    let chunks = vec![Ok(Bytes::copy_from_slice(&z[..z.len() - 10]))];
    let e = collect(decompress_stream(Box::pin(futures::stream::iter(chunks))))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // Corrupt.
    let mut bad = z.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let chunks = vec![Ok(Bytes::from(bad))];
    let e = collect(decompress_stream(Box::pin(futures::stream::iter(chunks))))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // Empty input.
    let out = collect(decompress_stream(Box::pin(futures::stream::iter(Vec::<
        io::Result<Bytes>,
    >::new()))))
    .await
    .unwrap();
    assert!(out.is_empty());
}

/// Highly compressible input in 256 KiB pieces, the shape a backend streams:
/// zstd holds decoded data back between calls, and a call after the frame's
/// end answers with the next header's size, not 0 (both once broke the end).
#[tokio::test]
async fn compressible_input_in_backend_sized_pieces() {
    let text: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| b"abcdefgh "[(i % 9) as usize] ^ ((i / 4096) as u8 & 1))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (ip, op) = (dir.path().join("in"), dir.path().join("out.zst"));
    std::fs::write(&ip, &text).unwrap();
    compress_file(&ip, &op, 6).await.unwrap();
    let z = std::fs::read(&op).unwrap();
    for piece in [256 * 1024, 65536, 1000] {
        let chunks: Vec<io::Result<Bytes>> = z.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let out = collect(decompress_stream(Box::pin(futures::stream::iter(chunks))))
            .await
            .unwrap();
        assert!(out == text, "piece size {piece}");
    }
}

#[test]
fn reference_windows_follow_growth() {
    let p = DeltaParams {
        frame_size: 100,
        margin: 10,
        whole_ref_max: 500,
        ..DeltaParams::default()
    };
    assert_eq!(ref_window(&p, 1000, 500, 300, 100), (0, 500));
    assert_eq!(ref_window(&p, 1000, 2000, 0, 100), (0, 210));
    assert_eq!(ref_window(&p, 1000, 2000, 500, 100), (990, 220));
    assert_eq!(ref_window(&p, 1000, 2000, 900, 100), (1790, 210));
    assert_eq!(ref_window(&p, 1000, 0, 0, 100), (0, 0));
}

/// A long-window compression (window beyond the level's default, repeated content further apart
/// than 8 MiB) is smaller than the default and still decodes with `decompress_stream`.
#[tokio::test]
async fn long_window_compression_decodes_with_stream() {
    let mut rng = StdRng::seed_from_u64(27);
    let block = random_bytes(&mut rng, 12 << 20);
    let mut data = block.clone();
    data.extend_from_slice(&block);
    let dir = tempfile::tempdir().unwrap();
    let (ip, op, lp) = (
        dir.path().join("in"),
        dir.path().join("plain.zst"),
        dir.path().join("long.zst"),
    );
    std::fs::write(&ip, &data).unwrap();
    let plain = compress_file(&ip, &op, 3).await.unwrap();
    let long = compress_file_long(&ip, &lp, 3, 27).await.unwrap();
    let z = std::fs::read(&lp).unwrap();
    assert_eq!(long, z.len() as u64);
    assert!(long * 10 < plain * 6, "long {long} plain {plain}");
    let chunks: Vec<io::Result<Bytes>> = z.chunks(256 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let out = collect(decompress_stream(Box::pin(futures::stream::iter(chunks))))
        .await
        .unwrap();
    assert!(out == data);
    // A window decompress_stream would refuse is refused up front.
    let e = compress_file_long(&ip, &lp, 3, 28).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

/// Pushes `input` into a [`StreamEncoder`] in random-sized pieces.
async fn stream_encode(rng: &mut StdRng, rp: &Path, op: &Path, input: &[u8], p: &DeltaParams) -> EncodeStats {
    let mut enc = StreamEncoder::new(rp, op, input.len() as u64, p).await.unwrap();
    let mut at = 0;
    while at < input.len() {
        let n = match rng.random_range(0..4) {
            0 => 1,
            1 => rng.random_range(1..300usize),
            2 => rng.random_range(1..(3 * p.frame_size as usize)),
            _ => rng.random_range(1..70_000usize),
        }
        .min(input.len() - at);
        enc.push(&input[at..at + n]).await.unwrap();
        if rng.random_range(0..5) == 0 {
            enc.push(&[]).await.unwrap();
        }
        at += n;
    }
    assert_eq!(enc.received(), input.len() as u64);
    enc.finish().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_encoder_round_trips_with_random_chunking() {
    let mut rng = StdRng::seed_from_u64(42);
    for (p, rlen, ilen) in [
        (small_params(), 300_000usize, 333_333usize),
        (small_params(), 300_000, 64 * 1024),
        (small_params(), 0, 200_000),
        (small_params(), 100_000, 1),
        (
            DeltaParams {
                whole_ref_max: 1 << 20,
                ..small_params()
            },
            250_000,
            500_001,
        ),
        (DeltaParams::default(), 200_000, 150_000),
    ] {
        let reference = random_bytes(&mut rng, rlen);
        let input = if rlen == 0 {
            random_bytes(&mut rng, ilen)
        } else {
            let mut v = mutate(&mut rng, &reference, 20);
            v.resize(ilen, b'z');
            v
        };
        let dir = tempfile::tempdir().unwrap();
        let (rp, ip, op, fp) = (
            dir.path().join("ref"),
            dir.path().join("in"),
            dir.path().join("out"),
            dir.path().join("file-out"),
        );
        std::fs::write(&rp, &reference).unwrap();
        std::fs::write(&ip, &input).unwrap();
        let st = stream_encode(&mut rng, &rp, &op, &input, &p).await;
        let container = Bytes::from(std::fs::read(&op).unwrap());
        assert_eq!(st.encoded_len, container.len() as u64);
        assert_eq!(st.logical_len, input.len() as u64);
        assert_eq!(st.frames as u64, (input.len() as u64).div_ceil(p.frame_size));
        // Same frames and windows as the spool-then-encode path.
        encode_file(&ip, &rp, &fp, &p).await.unwrap();
        assert_eq!(container, std::fs::read(&fp).unwrap(), "rlen {rlen} ilen {ilen}");
        let back = try_decode_all(container.clone(), &rp).await.unwrap();
        assert!(back == input, "rlen {rlen} ilen {ilen}");
    }
}

#[tokio::test]
async fn stream_encoder_of_an_empty_input() {
    let dir = tempfile::tempdir().unwrap();
    let (rp, op) = (dir.path().join("ref"), dir.path().join("out"));
    std::fs::write(&rp, b"reference").unwrap();
    let mut enc = StreamEncoder::new(&rp, &op, 0, &small_params()).await.unwrap();
    enc.push(&[]).await.unwrap();
    let st = enc.finish().await.unwrap();
    assert_eq!((st.logical_len, st.frames), (0, 0));
    let back = try_decode_all(Bytes::from(std::fs::read(&op).unwrap()), &rp)
        .await
        .unwrap();
    assert!(back.is_empty());
}

#[tokio::test]
async fn stream_encoder_refuses_a_wrong_declared_length() {
    let mut rng = StdRng::seed_from_u64(7);
    let reference = random_bytes(&mut rng, 100_000);
    let input = mutate(&mut rng, &reference, 5);
    let dir = tempfile::tempdir().unwrap();
    let (rp, op) = (dir.path().join("ref"), dir.path().join("out"));
    std::fs::write(&rp, &reference).unwrap();
    let p = small_params();

    // Longer than declared: the push that overflows fails, and so does everything after it.
    let mut enc = StreamEncoder::new(&rp, &op, input.len() as u64 - 10, &p).await.unwrap();
    let e = enc.push(&input).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(enc.push(b"x").await.is_err());
    assert!(enc.finish().await.is_err());

    // Shorter than declared: finish fails.
    let mut enc = StreamEncoder::new(&rp, &op, input.len() as u64 + 1, &p).await.unwrap();
    for piece in input.chunks(7_000) {
        enc.push(piece).await.unwrap();
    }
    let e = enc.finish().await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    // A missing reference fails at the start.
    assert!(StreamEncoder::new(&dir.path().join("nope"), &op, 10, &p).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_windows_are_shared_across_decodes_and_follow_file_changes() {
    // Two references at the same path one after the other (a re-fetched cache entry has a new
    // inode): the shared window must never serve the old bytes for the new file.
    let mut rng = StdRng::seed_from_u64(11);
    let p = DeltaParams {
        whole_ref_max: 1 << 20,
        ..small_params()
    };
    let dir = tempfile::tempdir().unwrap();
    let (rp, ip, op) = (dir.path().join("ref"), dir.path().join("in"), dir.path().join("out"));
    for round in 0..3 {
        let reference = random_bytes(&mut rng, 200_000);
        let input = mutate(&mut rng, &reference, 10);
        let tmp = dir.path().join("ref.tmp");
        std::fs::write(&tmp, &reference).unwrap();
        std::fs::rename(&tmp, &rp).unwrap();
        std::fs::write(&ip, &input).unwrap();
        encode_file(&ip, &rp, &op, &p).await.unwrap();
        let container = Bytes::from(std::fs::read(&op).unwrap());
        for _ in 0..2 {
            assert!(
                try_decode_all(container.clone(), &rp).await.unwrap() == input,
                "round {round}"
            );
        }
    }
}
