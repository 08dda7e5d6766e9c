//! Single objects: put/get/head round trips, ranges, missing keys, copies.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;
use strata_tests::Strata;

use super::{etag_of, get, put, status_and_code, with_bucket};

both_modes!(
    put_get_metadata_and_content_type,
    get_ranges,
    head_and_get_missing_key,
    copy_object_across_buckets,
);

async fn put_get_metadata_and_content_type(s: &Strata) {
    let c = with_bucket(s, "meta").await;
    let body = b"hello, strata!\n".to_vec();
    let put = c
        .put_object()
        .bucket("meta")
        .key("dir/hello.txt")
        .content_type("text/plain; charset=utf-8")
        .metadata("color", "blue")
        .metadata("owner-name", "Ada Lovelace")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put_object");
    assert_eq!(put.e_tag(), Some(etag_of(&body).as_str()));

    let got = c
        .get_object()
        .bucket("meta")
        .key("dir/hello.txt")
        .send()
        .await
        .expect("get_object");
    assert_eq!(got.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.e_tag(), Some(etag_of(&body).as_str()));
    let meta = got.metadata().expect("user metadata");
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(meta.get("owner-name").map(String::as_str), Some("Ada Lovelace"));
    assert_eq!(meta.len(), 2, "{meta:?}");
    assert_eq!(got.body.collect().await.expect("body").to_vec(), body);

    let head = c
        .head_object()
        .bucket("meta")
        .key("dir/hello.txt")
        .send()
        .await
        .expect("head_object");
    assert_eq!(head.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.e_tag(), Some(etag_of(&body).as_str()));
    assert_eq!(
        head.metadata().and_then(|m| m.get("color")).map(String::as_str),
        Some("blue")
    );
}

async fn get_ranges(s: &Strata) {
    let c = with_bucket(s, "ranges").await;
    let body = b"abcdefghijklmnopqrstuvwxyz".to_vec();
    put(&c, "ranges", "abc", body.clone()).await;

    let r = c
        .get_object()
        .bucket("ranges")
        .key("abc")
        .range("bytes=5-9")
        .send()
        .await;
    let r = r.expect("range 5-9");
    assert_eq!(r.content_range(), Some("bytes 5-9/26"));
    assert_eq!(r.content_length(), Some(5));
    assert_eq!(r.body.collect().await.expect("body").to_vec(), b"fghij");

    let r = c
        .get_object()
        .bucket("ranges")
        .key("abc")
        .range("bytes=-3")
        .send()
        .await;
    let r = r.expect("suffix range -3");
    assert_eq!(r.content_range(), Some("bytes 23-25/26"));
    assert_eq!(r.body.collect().await.expect("body").to_vec(), b"xyz");

    let r = c
        .get_object()
        .bucket("ranges")
        .key("abc")
        .range("bytes=20-")
        .send()
        .await;
    let r = r.expect("open range 20-");
    assert_eq!(r.body.collect().await.expect("body").to_vec(), b"uvwxyz");

    let r = c
        .get_object()
        .bucket("ranges")
        .key("abc")
        .range("bytes=100-200")
        .send()
        .await;
    let (status, code) = status_and_code(r);
    assert_eq!(status, 416, "unsatisfiable range");
    assert_eq!(code, "InvalidRange");
}

async fn head_and_get_missing_key(s: &Strata) {
    let c = with_bucket(s, "missing").await;

    let r = c.head_object().bucket("missing").key("nope").send().await;
    let err = r.expect_err("head of a missing key");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    assert!(err.into_service_error().is_not_found(), "HeadObject NotFound");

    let (status, code) = status_and_code(c.get_object().bucket("missing").key("nope").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchKey"));

    let (status, code) = status_and_code(c.get_object().bucket("no-such-bucket").key("k").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchBucket"));
}

async fn copy_object_across_buckets(s: &Strata) {
    let c = with_bucket(s, "copy-src").await;
    c.create_bucket()
        .bucket("copy-dst")
        .send()
        .await
        .expect("create copy-dst");
    let body = super::pattern(100_000, 7);
    c.put_object()
        .bucket("copy-src")
        .key("a/original.bin")
        .content_type("application/x-test")
        .metadata("k", "v")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put source");

    let out = c
        .copy_object()
        .copy_source("copy-src/a/original.bin")
        .bucket("copy-dst")
        .key("b/copy.bin")
        .send()
        .await
        .expect("copy_object");
    let etag = out.copy_object_result().and_then(|r| r.e_tag()).map(str::to_owned);
    assert_eq!(etag.as_deref(), Some(etag_of(&body).as_str()));

    let got = c
        .get_object()
        .bucket("copy-dst")
        .key("b/copy.bin")
        .send()
        .await
        .expect("get copy");
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.metadata().and_then(|m| m.get("k")).map(String::as_str), Some("v"));
    assert_eq!(got.body.collect().await.expect("body").to_vec(), body);

    // REPLACE takes the metadata from the request; the source stays as it was.
    c.copy_object()
        .copy_source("copy-src/a/original.bin")
        .bucket("copy-dst")
        .key("b/replaced.bin")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .metadata("new", "yes")
        .send()
        .await
        .expect("copy_object REPLACE");
    let head = c
        .head_object()
        .bucket("copy-dst")
        .key("b/replaced.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("text/plain"));
    let meta = head.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("new").map(String::as_str), Some("yes"));
    assert!(!meta.contains_key("k"), "REPLACE kept old metadata: {meta:?}");
    assert_eq!(get(&c, "copy-dst", "b/replaced.bin").await, body);
    assert_eq!(get(&c, "copy-src", "a/original.bin").await, body);
}
