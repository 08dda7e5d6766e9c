//! Multipart uploads.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};
use strata_tests::Strata;

use super::{get, hex, pattern, status_and_code, with_bucket};

both_modes!(multipart_two_parts, multipart_abort);

const MIB: usize = 1024 * 1024;

async fn multipart_two_parts(s: &Strata) {
    let c = with_bucket(s, "mpu").await;
    let parts = [pattern(5 * MIB, 11), pattern(MIB, 12)];

    let created = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big/object.bin")
        .content_type("application/octet-stream")
        .metadata("kind", "multipart")
        .send()
        .await
        .expect("create_multipart_upload");
    let upload_id = created.upload_id().expect("UploadId").to_owned();

    let mut completed = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = c
            .upload_part()
            .bucket("mpu")
            .key("big/object.bin")
            .upload_id(&upload_id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload_part {n}: {e:?}"));
        let etag = out.e_tag().expect("part ETag").to_owned();
        assert_eq!(etag, format!("\"{}\"", hex(&Md5::digest(data))), "part {n} ETag");
        // As in the SDK's own examples: part number and ETag only (the SDK still sends its
        // default CRC32 with each part).
        completed.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }

    let listed = c
        .list_parts()
        .bucket("mpu")
        .key("big/object.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .expect("list_parts");
    let sizes: Vec<Option<i64>> = listed.parts().iter().map(|p| p.size()).collect();
    assert_eq!(sizes, [Some(5 * MIB as i64), Some(MIB as i64)]);

    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big/object.bin")
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .expect("complete_multipart_upload");
    let etag = done.e_tag().expect("ETag").to_owned();
    assert!(etag.ends_with("-2\""), "multipart ETag {etag}");
    let mut md5s = Vec::new();
    for p in &parts {
        md5s.extend_from_slice(&Md5::digest(p));
    }
    assert_eq!(etag, format!("\"{}-2\"", hex(&Md5::digest(&md5s))));

    let head = c
        .head_object()
        .bucket("mpu")
        .key("big/object.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(6 * MIB as i64));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_type(), Some("application/octet-stream"));
    assert_eq!(
        head.metadata().and_then(|m| m.get("kind")).map(String::as_str),
        Some("multipart")
    );

    let got = get(&c, "mpu", "big/object.bin").await;
    assert_eq!(got.len(), 6 * MIB);
    assert!(got == [&parts[0][..], &parts[1][..]].concat(), "bytes read back differ");

    // A range across the part boundary.
    let r = c
        .get_object()
        .bucket("mpu")
        .key("big/object.bin")
        .range(format!("bytes={}-{}", 5 * MIB - 3, 5 * MIB + 2))
        .send()
        .await
        .expect("range across parts");
    let bytes = r.body.collect().await.expect("body").to_vec();
    assert_eq!(bytes, [&parts[0][5 * MIB - 3..], &parts[1][..3]].concat());

    let uploads = c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "completed upload still listed");
}

async fn multipart_abort(s: &Strata) {
    let c = with_bucket(s, "mpu-abort").await;
    let created = c
        .create_multipart_upload()
        .bucket("mpu-abort")
        .key("k")
        .send()
        .await
        .expect("create_multipart_upload");
    let upload_id = created.upload_id().expect("UploadId").to_owned();
    c.upload_part()
        .bucket("mpu-abort")
        .key("k")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(pattern(1000, 3)))
        .send()
        .await
        .expect("upload_part");

    let uploads = c
        .list_multipart_uploads()
        .bucket("mpu-abort")
        .send()
        .await
        .expect("list uploads");
    let ids: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.upload_id()).collect();
    assert_eq!(ids, [upload_id.as_str()]);

    c.abort_multipart_upload()
        .bucket("mpu-abort")
        .key("k")
        .upload_id(&upload_id)
        .send()
        .await
        .expect("abort_multipart_upload");
    let uploads = c
        .list_multipart_uploads()
        .bucket("mpu-abort")
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "aborted upload still listed");

    let (status, code) = status_and_code(c.get_object().bucket("mpu-abort").key("k").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchKey"));
    c.delete_bucket()
        .bucket("mpu-abort")
        .send()
        .await
        .expect("bucket empty after the abort");
}
