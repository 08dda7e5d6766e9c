//! Flexible checksums as the SDK sends them: in a header for in-memory bodies, and as an
//! aws-chunked trailer (`x-amz-trailer`) for streaming bodies.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use strata_tests::Strata;

use super::{pattern, with_bucket};

both_modes!(put_crc32c_in_memory_and_streaming, put_sha256_in_memory_and_streaming);

/// Records the headers of the last request this client transmitted.
#[derive(Debug, Clone, Default)]
struct SeenHeaders(Arc<Mutex<Vec<(String, String)>>>);

impl SeenHeaders {
    fn get(&self, name: &str) -> Option<String> {
        let h = self.0.lock().expect("lock");
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

impl Intercept for SeenHeaders {
    fn name(&self) -> &'static str {
        "SeenHeaders"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = ctx.request().headers().iter();
        *self.0.lock().expect("lock") = headers.map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Ok(())
    }
}

fn crc32c_b64(data: &[u8]) -> String {
    B64.encode(crc32c::crc32c(data).to_be_bytes())
}

fn sha256_b64(data: &[u8]) -> String {
    B64.encode(Sha256::digest(data))
}

async fn put_crc32c_in_memory_and_streaming(s: &Strata) {
    round_trip(s, ChecksumAlgorithm::Crc32C, crc32c_b64).await;
}

async fn put_sha256_in_memory_and_streaming(s: &Strata) {
    round_trip(s, ChecksumAlgorithm::Sha256, sha256_b64).await;
}

/// The checksum a put or get response reports for `algo`.
macro_rules! reported {
    ($out:expr, $algo:expr) => {
        match $algo {
            ChecksumAlgorithm::Crc32C => $out.checksum_crc32_c().map(str::to_owned),
            ChecksumAlgorithm::Sha256 => $out.checksum_sha256().map(str::to_owned),
            other => panic!("unexpected algorithm {other:?}"),
        }
    };
}

async fn round_trip(s: &Strata, algo: ChecksumAlgorithm, expected: fn(&[u8]) -> String) {
    let bucket = "checksums";
    let c = with_bucket(s, bucket).await;
    let header_name = format!("x-amz-checksum-{}", algo.as_str().to_ascii_lowercase());

    // In memory: the SDK computes the checksum up front and sends it as a header.
    let small = pattern(10_000, 1);
    let seen = SeenHeaders::default();
    let out = c
        .put_object()
        .bucket(bucket)
        .key("in-memory")
        .checksum_algorithm(algo.clone())
        .body(ByteStream::from(small.clone()))
        .customize()
        .interceptor(seen.clone())
        .send()
        .await
        .expect("put_object (checksum header)");
    assert_eq!(
        seen.get(&header_name),
        Some(expected(&small)),
        "SDK sent the checksum header"
    );
    assert_eq!(reported!(out, &algo), Some(expected(&small)), "put response checksum");
    read_back(&c, bucket, "in-memory", &small, &algo, expected).await;

    // Streaming from a file: aws-chunked body with the checksum in a trailer. The small
    // buffer makes the body arrive as many chunks.
    let big = pattern(300_000, 2);
    let path = s.dir().join(format!("upload-{}.bin", algo.as_str()));
    std::fs::write(&path, &big).expect("write the upload file");
    let body = ByteStream::read_from().path(&path).buffer_size(16 * 1024).build().await;
    let seen = SeenHeaders::default();
    let out = c
        .put_object()
        .bucket(bucket)
        .key("streamed")
        .checksum_algorithm(algo.clone())
        .body(body.expect("ByteStream from a file"))
        .customize()
        .interceptor(seen.clone())
        .send()
        .await
        .expect("put_object (aws-chunked, trailer checksum)");
    assert_eq!(
        seen.get("x-amz-trailer"),
        Some(header_name.clone()),
        "SDK sent a trailer"
    );
    assert_eq!(seen.get(&header_name), None, "checksum must not also be a header");
    assert_eq!(reported!(out, &algo), Some(expected(&big)), "put response checksum");
    read_back(&c, bucket, "streamed", &big, &algo, expected).await;
}

/// GET with checksum mode on: exact bytes, and the stored checksum (which the SDK
/// also validates against the body it reads).
async fn read_back(
    c: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
    algo: &ChecksumAlgorithm,
    expected: fn(&[u8]) -> String,
) {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("get_object");
    assert_eq!(
        reported!(out, algo),
        Some(expected(data)),
        "get response checksum of {key}"
    );
    let got = out.body.collect().await.expect("read the body (checksum validated)");
    assert_eq!(got.to_vec(), data, "bytes of {key}");
}
