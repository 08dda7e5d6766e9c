//! The S3 backend against a real third-party S3 server, `s3s-fs`, started as a
//! process on a free port (see `/work/shared/testing.md`). Install it with
//! `cargo install s3s-fs --version 0.14.1 --features binary --locked`; without it
//! on PATH the tests that need it say so and return early.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use bytes::Bytes;
use futures::{StreamExt, stream};
use strata_backend::{
    Backend, BackendError, Backends, BlobMeta, ByteStream, DEFAULT_PART_SIZE, S3Backend, SDK_ONLY_HEADERS,
};
use strata_core::config::{Config, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AK: &str = "AKSTRATATEST";
const SK: &str = "strata-test-secret-key";
const BUCKET: &str = "strata-test";

/// A running `s3s-fs`, killed on drop.
struct S3sFs {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl S3sFs {
    /// Starts one, or returns `None` (after saying why) when `s3s-fs` is not on PATH.
    fn start() -> Option<S3sFs> {
        let installed = Command::new("s3s-fs")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!(
                "SKIPPED: `s3s-fs` is not on PATH; install it with \
                 `cargo install s3s-fs --version 0.14.1 --features binary --locked`"
            );
            return None;
        }
        let root = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("s3s-fs")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                AK,
                "--secret-key",
                SK,
            ])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        let server = S3sFs { child, port, root };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {addr} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain SDK client, to set up buckets and look behind the backend's back.
    fn admin(&self) -> Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .build();
        Client::from_conf(conf)
    }

    async fn with_bucket(self) -> (S3sFs, Client) {
        let admin = self.admin();
        admin
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("create bucket");
        (self, admin)
    }

    /// The YAML of one `type: s3` backend on this server, plus `extra` lines.
    fn yaml(&self, id: &str, bucket: &str, secret: &str, extra: &str) -> String {
        format!(
            "- type: s3\n  id: {id}\n  endpoint: {}\n  bucket: {bucket}\n  access_key_id: {AK}\n  secret_access_key: {secret}\n{extra}",
            self.endpoint()
        )
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Parses `backends:` YAML, validates it like the server does, and returns the configs.
fn backend_configs(list: &str) -> Config {
    let c = Config::from_yaml(&format!("backends:\n{list}")).expect("config parses");
    c.validate(Role::All).expect("config is valid");
    c
}

async fn backend(yaml: &str) -> S3Backend {
    let c = backend_configs(yaml);
    S3Backend::from_config(&c.backends[0], "backends[0]")
        .await
        .expect("backend builds")
}

/// Deterministic, non-repeating-ish test bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `data` as a stream of `chunk`-sized pieces.
fn body(data: &[u8], chunk: usize) -> ByteStream {
    let pieces: Vec<io::Result<Bytes>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(stream::iter(pieces))
}

async fn read_all(s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("body chunk"));
    }
    out
}

async fn get(b: &S3Backend, key: &str, offset: u64, len: u64) -> Vec<u8> {
    read_all(b.get(key, offset, len).await.expect("get")).await
}

/// Puts, reads back (whole and in ranges), heads and deletes one small and one
/// multipart object; checks where they land in the bucket.
async fn round_trip(admin: &Client, b: &S3Backend, prefix: &str, big_len: usize) {
    let small = pattern(1024, 1);
    let tags = BlobMeta::from([
        ("key".to_owned(), "dir/ünï cödé=1%".to_owned()),
        ("v".to_owned(), "1".to_owned()),
    ]);
    assert_eq!(b.put("small", &tags, body(&small, 100)).await.expect("put small"), 1024);
    let head = b.head("small").await.expect("head small");
    assert_eq!(
        (head.size, &head.meta),
        (1024, &tags),
        "size and tags come back from HEAD"
    );
    assert_eq!(get(b, "small", 0, 1024).await, small);
    assert_eq!(get(b, "small", 10, 20).await, &small[10..30]);
    assert_eq!(get(b, "small", 1000, 24).await, &small[1000..]);
    assert!(get(b, "small", 5, 0).await.is_empty());

    let big = pattern(big_len, 2);
    // Odd chunk size, so parts never line up with chunks.
    assert_eq!(
        b.put("big", &tags, body(&big, 100_003)).await.expect("put big"),
        big_len as u64
    );
    let head = b.head("big").await.expect("head big");
    assert_eq!(
        (head.size, &head.meta),
        (big_len as u64, &tags),
        "multipart blobs keep their tags"
    );
    let parts = big_len.div_ceil(DEFAULT_PART_SIZE);
    let seen = admin
        .head_object()
        .bucket(BUCKET)
        .key(format!("{prefix}big"))
        .send()
        .await
        .expect("big is stored under the prefix");
    let etag = seen.e_tag().unwrap_or_default().trim_matches('"').to_owned();
    assert!(
        etag.ends_with(&format!("-{parts}")),
        "multipart etag with {parts} parts: {etag}"
    );
    let full = get(b, "big", 0, big_len as u64).await;
    assert!(full == big, "big object differs after a round trip");
    // Across the first part boundary, and the tail.
    let at = (DEFAULT_PART_SIZE - 1000) as u64;
    assert_eq!(get(b, "big", at, 5000).await, &big[at as usize..at as usize + 5000]);
    assert_eq!(get(b, "big", big_len as u64 - 7, 7).await, &big[big_len - 7..]);

    b.delete("small").await.expect("delete");
    assert!(matches!(b.head("small").await, Err(BackendError::NotFound)));
    assert!(matches!(b.get("small", 0, 1).await, Err(BackendError::NotFound)));
    b.delete("small").await.expect("deleting a missing object succeeds");
    b.delete("big").await.expect("delete big");
    assert!(matches!(b.head("big").await, Err(BackendError::NotFound)));
}

#[tokio::test]
async fn put_get_head_delete_small_and_multipart() {
    let Some(server) = S3sFs::start() else { return };
    let (server, admin) = server.with_bucket().await;
    let b = backend(&server.yaml("b0", BUCKET, SK, "  prefix: strata/\n")).await;
    b.check().await.expect("check");
    round_trip(&admin, &b, "strata/", 20 * 1024 * 1024).await;
}

/// Unsigned payloads, no SDK checksums and stripped SDK headers still make valid,
/// signed requests that the server accepts.
#[tokio::test]
async fn unsigned_unchecksummed_and_stripped_requests_work() {
    let Some(server) = S3sFs::start() else { return };
    let (server, admin) = server.with_bucket().await;
    let extra = "  unsigned_payload: true\n  disable_checksum: true\n  strip_sdk_headers: true\n";
    let b = backend(&server.yaml("b0", BUCKET, SK, extra)).await;
    b.check().await.expect("check");
    round_trip(&admin, &b, "", 2 * DEFAULT_PART_SIZE).await;
}

#[tokio::test]
async fn a_failing_body_leaves_nothing_behind() {
    let Some(server) = S3sFs::start() else { return };
    let (server, admin) = server.with_bucket().await;
    let b = backend(&server.yaml("b0", BUCKET, SK, "")).await;

    // Fails after more than one part: a multipart upload was started and must be aborted.
    for fail_after in [9 * 1024 * 1024, 1000] {
        let data = pattern(fail_after, 3);
        let pieces = data
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .chain([Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away"))]);
        let s: ByteStream = Box::pin(stream::iter(pieces.collect::<Vec<_>>()));
        match b.put("doomed", &BlobMeta::new(), s).await {
            Err(BackendError::Body(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
                assert_eq!(e.to_string(), "client went away");
            }
            other => panic!("expected the body error back, got {other:?}"),
        }
        assert!(matches!(b.head("doomed").await, Err(BackendError::NotFound)));
    }
    assert!(no_open_uploads(&server, &admin).await);

    // A put dropped midway (the client went away) aborts its upload in the background.
    let first = pattern(9 * 1024 * 1024, 4);
    let pieces = stream::iter(vec![Ok(Bytes::from(first))]).chain(stream::pending());
    let no_tags = BlobMeta::new();
    let mut put = Box::pin(b.put("dropped", &no_tags, Box::pin(pieces)));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            r = &mut put => panic!("the put cannot end, its body never does: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if !no_open_uploads(&server, &admin).await {
            break;
        }
        assert!(Instant::now() < deadline, "the put never started a multipart upload");
    }
    drop(put);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !no_open_uploads(&server, &admin).await {
        assert!(Instant::now() < deadline, "the dropped put's upload was not aborted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(b.head("dropped").await, Err(BackendError::NotFound)));
}

/// Whether the server holds no unfinished multipart upload.
async fn no_open_uploads(server: &S3sFs, admin: &Client) -> bool {
    let uploads = admin.list_multipart_uploads().bucket(BUCKET).send().await;
    match uploads {
        Ok(out) => out.uploads().is_empty(),
        Err(e) if e.code() == Some("NotImplemented") => {
            // s3s-fs 0.14 has no ListMultipartUploads; it keeps an open upload as
            // `.upload-ID.json` and its parts as `.upload_id-ID.part-N` under its root.
            let left: Vec<_> = std::fs::read_dir(server.root.path())
                .expect("read root")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".upload"))
                .collect();
            left.is_empty()
        }
        Err(e) => panic!("list_multipart_uploads: {e:?}"),
    }
}

fn remote_message(r: Result<(), BackendError>) -> String {
    match r {
        Err(BackendError::Remote(m)) => m,
        other => panic!("expected a Remote error, got {other:?}"),
    }
}

#[tokio::test]
async fn check_explains_missing_bucket_wrong_secret_and_no_server() {
    let Some(server) = S3sFs::start() else { return };
    let (server, _admin) = server.with_bucket().await;

    let missing = backend(&server.yaml("b0", "no-such-bucket", SK, "")).await;
    let m = remote_message(missing.check().await);
    assert!(
        m.contains("bucket `no-such-bucket` not found at http://127.0.0.1:")
            && m.contains("create it or fix `backends[0].bucket`"),
        "{m}"
    );

    let wrong = backend(&server.yaml("b0", BUCKET, "not-the-secret", "")).await;
    let m = remote_message(wrong.check().await);
    assert!(
        m.contains("denied (HTTP 403)") && m.contains("`backends[0].secret_access_key`"),
        "{m}"
    );

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let gone = backend(
        &server
            .yaml("b0", BUCKET, SK, "  max_attempts: 1\n")
            .replace(&server.endpoint(), &nobody),
    )
    .await;
    let m = remote_message(gone.check().await);
    assert!(
        m.contains("connection refused") && m.contains("`backends[0].endpoint`"),
        "{m}"
    );

    // Backends::open checks each S3 backend and names the backend and the field.
    let list = format!(
        "- type: local\n  id: l0\n  path: {}\n{}",
        server.root.path().join("local").display(),
        server.yaml("b1", "no-such-bucket", SK, "")
    );
    let c = backend_configs(&list);
    let e = Backends::open(&c.backends).await.err().expect("open fails");
    assert!(
        e.starts_with("backend `b1`: bucket `no-such-bucket` not found at http://127.0.0.1:")
            && e.ends_with("; create it or fix `backends[1].bucket`"),
        "{e}"
    );
    let list = format!(
        "{}{}",
        server.yaml("b0", BUCKET, SK, ""),
        server.yaml("b1", BUCKET, SK, "  prefix: p/\n")
    );
    let opened = Backends::open(&backend_configs(&list).backends).await.expect("open");
    assert_eq!(opened.all().len(), 2);
    assert!(opened.get("b1").is_some());
}

/// A one-shot HTTP server that answers 200 to everything and records the header
/// names of each request, to see what the backend actually sends.
async fn header_recorder() -> (String, Arc<Mutex<Vec<Vec<(String, String)>>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 8192];
                let head_end = loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let names: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    })
                    .collect();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut have = buf.len() - head_end;
                while have < len {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    have += n;
                }
                seen.lock().expect("lock").push(names);
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn strip_sdk_headers_removes_sdk_only_headers() {
    for strip in [false, true] {
        let (endpoint, seen) = header_recorder().await;
        let yaml = format!(
            "- type: s3\n  id: b0\n  endpoint: {endpoint}\n  bucket: {BUCKET}\n  access_key_id: {AK}\n  \
             secret_access_key: {SK}\n  strip_sdk_headers: {strip}\n  unsigned_payload: {strip}\n  max_attempts: 1\n"
        );
        let b = backend(&yaml).await;
        b.put("k", &BlobMeta::new(), body(b"hello", 5)).await.expect("put");
        b.check().await.expect("check");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        let has = |h: &[(String, String)], name: &str| h.iter().any(|(n, _)| n == name);
        for headers in &seen {
            assert!(has(headers, "authorization"), "{headers:?}");
            if strip {
                for name in SDK_ONLY_HEADERS {
                    assert!(!has(headers, name), "{name} still sent: {headers:?}");
                }
            } else {
                assert!(has(headers, "amz-sdk-invocation-id"), "{headers:?}");
                assert!(has(headers, "amz-sdk-request"), "{headers:?}");
            }
        }
        // The PutObject: checksummed, and its payload hash unsigned only when asked.
        let put = &seen[0];
        assert!(has(put, "x-amz-checksum-crc32"), "{put:?}");
        assert_eq!(has(put, "x-amz-sdk-checksum-algorithm"), !strip, "{put:?}");
        let payload = put
            .iter()
            .find(|(n, _)| n == "x-amz-content-sha256")
            .map(|(_, v)| v.as_str());
        if strip {
            assert_eq!(payload, Some("UNSIGNED-PAYLOAD"));
        } else {
            assert_eq!(payload.map(str::len), Some(64), "{put:?}");
        }
    }
}
