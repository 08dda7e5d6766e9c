//! The official Rust SDK (`aws-sdk-s3`) against a real `strata` process, in both
//! deployment modes: one `--role all` process, and a split control plane + data plane.
//!
//! Needs the binary: `cargo build -p strata` (or `STRATA_BIN=/path/to/strata`).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use strata_tests::Strata;

/// Generates `mod NAME { fn all(); fn split(); }`, each a `#[tokio::test]` that starts a
/// deployment in that mode and runs `async fn NAME(&Strata)` against it.
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn all() {
                let s = strata_tests::Strata::start_all();
                super::$name(&s).await;
            }

            #[tokio::test]
            async fn split() {
                let s = strata_tests::Strata::start_split();
                super::$name(&s).await;
            }
        }
    )*};
}

// A test-target root resolves `mod` beside itself; keep the pieces in `sdk/`.
#[path = "sdk/buckets.rs"]
mod buckets;
#[path = "sdk/checksums.rs"]
mod checksums;
#[path = "sdk/listing.rs"]
mod listing;
#[path = "sdk/multipart.rs"]
mod multipart;
#[path = "sdk/objects.rs"]
mod objects;

/// A path-style client signed with the test credential, over plain http, with no retries
/// (so a server error is seen as it is) and a generous per-operation timeout.
pub fn client(s: &Strata) -> Client {
    s.client()
}

/// A client with one bucket already created.
pub async fn with_bucket(s: &Strata, bucket: &str) -> Client {
    let c = client(s);
    c.create_bucket().bucket(bucket).send().await.expect("create_bucket");
    c
}

/// HTTP status and S3 error code of a failed call; panics on success.
pub fn status_and_code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> (u16, String) {
    let err = match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    };
    let status = err
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|| panic!("no HTTP response: {err:?}"));
    (status, err.code().unwrap_or_default().to_owned())
}

pub async fn put(c: &Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_object {bucket}/{key}: {e:?}"));
}

pub async fn get(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get_object {bucket}/{key}: {e:?}"));
    out.body.collect().await.expect("read the body").to_vec()
}

/// Deterministic, non-repeating-looking test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// `"<md5 hex>"`, the ETag of a single-part object.
pub fn etag_of(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    format!("\"{}\"", hex(&Md5::digest(data)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The harness stops deployments with SIGTERM; every process must exit 0 from it.
#[test]
fn sigterm_exits_zero() {
    for mode in [strata_tests::Mode::All, strata_tests::Mode::Split] {
        let mut s = Strata::start(mode);
        assert_eq!(s.mode(), mode);
        for (name, status) in s.stop() {
            assert!(status.success(), "{mode}: {name} exited with {status}\n{}", s.logs(40));
        }
    }
}
