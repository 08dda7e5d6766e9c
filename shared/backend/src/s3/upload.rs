//! `put` without holding the object in memory: one part-sized buffer at a time.
//! Objects that fit in one part are a single PutObject; larger ones a multipart
//! upload that is aborted on any failure, so a failed put leaves nothing visible.

use std::io;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::META_PREFIX;
use super::S3Backend;
use super::errors::remote;
use crate::{BackendError, BlobMeta, ByteStream};

/// The most parts S3 accepts in one multipart upload.
const MAX_PARTS: i32 = 10_000;

/// Cuts a body stream into parts of a fixed size, copying only what straddles a
/// part boundary.
struct PartReader {
    body: ByteStream,
    /// Bytes read past the end of the previous part.
    carry: Option<Bytes>,
    ended: bool,
}

impl PartReader {
    fn new(body: ByteStream) -> PartReader {
        PartReader {
            body,
            carry: None,
            ended: false,
        }
    }

    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if let Some(c) = self.carry.take() {
            return Ok(Some(c));
        }
        while !self.ended {
            match self.body.next().await {
                Some(Ok(c)) if c.is_empty() => {}
                Some(Ok(c)) => return Ok(Some(c)),
                Some(Err(e)) => return Err(e),
                None => self.ended = true,
            }
        }
        Ok(None)
    }

    /// The next part, `size` bytes unless the stream ends first, and whether the
    /// stream has ended with it. Reads one chunk ahead to know that.
    async fn next_part(&mut self, size: usize) -> io::Result<(Bytes, bool)> {
        let mut buf = BytesMut::new();
        let mut whole: Option<Bytes> = None;
        while buf.len() < size {
            let Some(mut chunk) = self.next_chunk().await? else {
                break;
            };
            let room = size - buf.len();
            if chunk.len() > room {
                self.carry = Some(chunk.split_off(room));
            }
            if buf.is_empty() && chunk.len() == size {
                // One chunk makes the whole part: no copy.
                whole = Some(chunk);
                break;
            }
            push(&mut buf, &chunk, size);
        }
        let part = whole.unwrap_or_else(|| buf.freeze());
        if self.carry.is_none() {
            self.carry = self.next_chunk().await?;
        }
        Ok((part, self.carry.is_none()))
    }
}

/// Appends `data`, growing `buf` geometrically but never past `limit`.
fn push(buf: &mut BytesMut, data: &[u8], limit: usize) {
    let need = buf.len() + data.len();
    if need > buf.capacity() {
        let cap = need.max(buf.capacity() * 2).max(64 * 1024).min(limit).max(need);
        let mut grown = BytesMut::with_capacity(cap);
        grown.extend_from_slice(buf);
        *buf = grown;
    }
    buf.extend_from_slice(data);
}

/// Aborts the multipart upload if the put is dropped midway (e.g. the client
/// went away), so no orphaned parts accumulate on the service.
struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl AbortOnDrop {
    async fn abort_now(mut self) {
        if let Some(id) = self.upload_id.take() {
            abort(&self.client, &self.bucket, &self.key, &id).await;
        }
    }

    fn disarm(mut self) {
        self.upload_id = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.upload_id.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(bucket = %self.bucket, key = %self.key, upload_id = %id, "multipart upload left behind");
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        rt.spawn(async move { abort(&client, &bucket, &key, &id).await });
    }
}

async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let r = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(e) = r {
        tracing::warn!(
            bucket, key, upload_id, error = %aws_sdk_s3::error::DisplayErrorContext(&e),
            "cannot abort multipart upload; a bucket lifecycle rule for incomplete uploads will clean it up"
        );
    }
}

type Metadata = Option<std::collections::HashMap<String, String>>;

/// `x-amz-meta-strata-<key>` headers for a blob's catalog facts.
fn user_metadata(meta: &BlobMeta) -> Metadata {
    if meta.is_empty() {
        return None;
    }
    Some(
        meta.iter()
            .map(|(k, v)| (format!("{META_PREFIX}{k}"), crate::meta::encode(v)))
            .collect(),
    )
}

impl S3Backend {
    pub(super) async fn put_stream(&self, key: &str, meta: &BlobMeta, body: ByteStream) -> Result<u64, BackendError> {
        let object = self.object_key(key)?;
        let metadata = user_metadata(meta);
        let mut reader = PartReader::new(body);
        let (first, ended) = reader.next_part(self.part_size).await.map_err(BackendError::Body)?;
        if ended {
            let n = first.len() as u64;
            self.put_single(&object, metadata, first).await?;
            return Ok(n);
        }
        let mut create = (self.client.create_multipart_upload())
            .bucket(&self.bucket)
            .key(&object)
            .set_metadata(metadata);
        if self.checksums {
            create = create.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        let upload_id = create
            .send()
            .await
            .map_err(|e| remote("CreateMultipartUpload", &e, &self.endpoint, &self.field))?
            .upload_id
            .ok_or_else(|| {
                BackendError::Remote(format!(
                    "CreateMultipartUpload at {} returned no upload id",
                    self.endpoint
                ))
            })?;
        let guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: object.clone(),
            upload_id: Some(upload_id.clone()),
        };
        match self.upload_parts(&object, &upload_id, &mut reader, first).await {
            Ok(n) => {
                guard.disarm();
                Ok(n)
            }
            Err(e) => {
                guard.abort_now().await;
                Err(e)
            }
        }
    }

    async fn put_single(&self, object: &str, metadata: Metadata, data: Bytes) -> Result<(), BackendError> {
        let len = i64::try_from(data.len()).expect("part fits in i64");
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .set_metadata(metadata)
            .content_length(len)
            .body(SdkBody::from(data))
            .customize();
        let req = if self.unsigned_payload {
            req.disable_payload_signing()
        } else {
            req
        };
        req.send()
            .await
            .map_err(|e| remote("PutObject", &e, &self.endpoint, &self.field))?;
        Ok(())
    }

    /// Uploads `first` and the rest of `reader` as parts, then completes the upload.
    async fn upload_parts(
        &self,
        object: &str,
        upload_id: &str,
        reader: &mut PartReader,
        first: Bytes,
    ) -> Result<u64, BackendError> {
        let mut done = Vec::new();
        let mut total = 0u64;
        let (mut part, mut ended) = (first, false);
        for number in 1..=MAX_PARTS {
            total += part.len() as u64;
            done.push(self.upload_part(object, upload_id, number, part).await?);
            if ended {
                let parts = CompletedMultipartUpload::builder().set_parts(Some(done)).build();
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(upload_id)
                    .multipart_upload(parts)
                    .send()
                    .await
                    .map_err(|e| remote("CompleteMultipartUpload", &e, &self.endpoint, &self.field))?;
                return Ok(total);
            }
            (part, ended) = reader.next_part(self.part_size).await.map_err(BackendError::Body)?;
        }
        Err(BackendError::Remote(format!(
            "object is larger than {MAX_PARTS} parts of {} bytes, the most one S3 upload can hold",
            self.part_size
        )))
    }

    async fn upload_part(
        &self,
        object: &str,
        upload_id: &str,
        number: i32,
        data: Bytes,
    ) -> Result<CompletedPart, BackendError> {
        let len = i64::try_from(data.len()).expect("part fits in i64");
        let mut req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(len)
            .body(SdkBody::from(data));
        if self.checksums {
            req = req.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        let req = req.customize();
        let req = if self.unsigned_payload {
            req.disable_payload_signing()
        } else {
            req
        };
        let out = req
            .send()
            .await
            .map_err(|e| remote(&format!("UploadPart {number}"), &e, &self.endpoint, &self.field))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag)
            .set_checksum_crc32(out.checksum_crc32)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn reader(chunks: &[&[u8]]) -> PartReader {
        let items: Vec<io::Result<Bytes>> = chunks.iter().map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        PartReader::new(Box::pin(stream::iter(items)))
    }

    #[tokio::test]
    async fn parts_are_cut_at_the_size_and_the_end_is_seen_early() {
        let mut r = reader(&[b"abc", b"", b"defgh", b"ij"]);
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::from_static(b"abcd"), false));
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::from_static(b"efgh"), false));
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::from_static(b"ij"), true));

        // Ends exactly on a boundary: the last full part already says so.
        let mut r = reader(&[b"abcd", b"efgh"]);
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::from_static(b"abcd"), false));
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::from_static(b"efgh"), true));

        let mut r = reader(&[]);
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::new(), true));

        let mut r = reader(&[b"abcdefghij"]);
        assert_eq!(r.next_part(4).await.unwrap(), (Bytes::from_static(b"abcd"), false));
    }

    #[tokio::test]
    async fn a_failing_stream_is_reported_as_is() {
        let items = vec![Ok(Bytes::from_static(b"ab")), Err(io::Error::other("cut"))];
        let mut r = PartReader::new(Box::pin(stream::iter(items)));
        let e = r.next_part(4).await.unwrap_err();
        assert_eq!(e.to_string(), "cut");
    }

    #[test]
    fn buffer_growth_never_passes_the_limit() {
        let mut b = BytesMut::new();
        for _ in 0..100 {
            push(&mut b, &[7u8; 1000], 100_000);
        }
        assert_eq!(b.len(), 100_000);
        assert!(b.capacity() <= 100_000, "{}", b.capacity());
    }
}
