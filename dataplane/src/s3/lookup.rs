//! GetObject and HeadObject share one lookup path: the record is located,
//! its preconditions checked, its SSE-C keys opened with the request's key
//! and the range resolved ([`StrataS3::lookup`]); one macro then describes
//! the object in either response. A GET also streams the bytes (`reader`).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::ObjectRecord;

use super::StrataS3;
use super::meta::Conditions;
use super::object::no_versions;
use super::sse;

/// What GET and HEAD ask for, read from either input (`lookup_of!`).
struct Lookup<'a> {
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
    conditions: Conditions<'a>,
    customer_key: (Option<&'a str>, Option<&'a str>, Option<&'a str>),
    range: Option<&'a Range>,
}

/// The [`Lookup`] of a GetObject or HeadObject input.
macro_rules! lookup_of {
    ($i:expr) => {
        Lookup {
            bucket: &$i.bucket,
            key: &$i.key,
            version_id: $i.version_id.as_deref(),
            conditions: Conditions {
                if_match: $i.if_match.as_ref(),
                if_none_match: $i.if_none_match.as_ref(),
                if_modified_since: $i.if_modified_since.as_ref(),
                if_unmodified_since: $i.if_unmodified_since.as_ref(),
            },
            customer_key: sse::sse_c_headers!($i),
            range: $i.range.as_ref(),
        }
    };
}

/// The object found: its record (SSE-C keys opened) and the bytes asked for.
struct Found {
    rec: ObjectRecord,
    /// `[start, end)` of a Range request; `None` for the whole object.
    range: Option<(u64, u64)>,
}

impl Found {
    /// The bytes served: the range, or the whole object.
    fn span(&self) -> (u64, u64) {
        self.range.unwrap_or((0, self.rec.meta.size))
    }
}

/// Fills the fields GET and HEAD share from what was found, the checksums
/// when asked, and the `response-*` overrides of input `$i`.
macro_rules! describe {
    ($out:ident, $found:expr, $i:expr, $checksums:expr) => {{
        use crate::checksum::Algo;
        let found: &Found = $found;
        let (m, (start, end)) = (&found.rec.meta, found.span());
        $out.content_length = Some((end - start) as i64);
        $out.e_tag = Some(super::meta::etag(&m.etag));
        $out.last_modified = Some(super::meta::timestamp(m.last_modified_unix_ms));
        // S3 reports this type for objects stored without one.
        $out.content_type = Some(m.content_type.clone().unwrap_or_else(|| "binary/octet-stream".into()));
        $out.content_encoding = m.content_encoding.clone();
        $out.content_disposition = m.content_disposition.clone();
        $out.content_language = m.content_language.clone();
        $out.cache_control = m.cache_control.clone();
        $out.expires = m.expires.as_deref().and_then(super::meta::parse_http_date);
        $out.metadata = super::meta::user_metadata(&m.user_metadata);
        $out.accept_ranges = Some("bytes".into());
        $out.parts_count = (m.parts_count > 0).then_some(m.parts_count as i32);
        if $checksums {
            $out.checksum_crc32 = m.checksums.get(Algo::Crc32.name()).cloned();
            $out.checksum_crc32c = m.checksums.get(Algo::Crc32c.name()).cloned();
            $out.checksum_crc64nvme = m.checksums.get(Algo::Crc64Nvme.name()).cloned();
            $out.checksum_sha1 = m.checksums.get(Algo::Sha1.name()).cloned();
            $out.checksum_sha256 = m.checksums.get(Algo::Sha256.name()).cloned();
        }
        $out.server_side_encryption = at_rest(&found.rec);
        if let Some(md5) = sse::customer_md5(&found.rec) {
            $out.sse_customer_algorithm = Some("AES256".into());
            $out.sse_customer_key_md5 = Some(md5.to_owned());
        }
        let i = $i;
        if let Some(v) = &i.response_content_type {
            $out.content_type = Some(v.clone());
        }
        if let Some(v) = &i.response_content_disposition {
            $out.content_disposition = Some(v.clone());
        }
        if let Some(v) = &i.response_content_encoding {
            $out.content_encoding = Some(v.clone());
        }
        if let Some(v) = &i.response_content_language {
            $out.content_language = Some(v.clone());
        }
        if let Some(v) = &i.response_cache_control {
            $out.cache_control = Some(v.clone());
        }
        if let Some(v) = &i.response_expires {
            $out.expires = Some(v.clone());
        }
        if found.range.is_some() {
            $out.content_range = Some(format!("bytes {start}-{}/{}", end.saturating_sub(1), m.size));
        }
    }};
}

/// `AES256` when the object's blobs are sealed under a Strata master key.
fn at_rest(rec: &ObjectRecord) -> Option<ServerSideEncryption> {
    let sealed = rec
        .segments
        .iter()
        .any(|s| s.cipher.as_ref().is_some_and(|c| !c.is_customer()));
    sealed.then(|| ServerSideEncryption::from_static(ServerSideEncryption::AES256))
}

fn byte_range(range: Option<&Range>, size: u64) -> S3Result<Option<(u64, u64)>> {
    match range {
        None => Ok(None),
        Some(r) => match r.check(size) {
            Ok(r) => Ok(Some((r.start, r.end))),
            Err(_) => Err(s3_error!(InvalidRange, "The requested range is not satisfiable")),
        },
    }
}

fn checksum_mode(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == "ENABLED")
}

impl StrataS3 {
    /// The lookup GET and HEAD share: the record, its preconditions (a
    /// failed `If-None-Match` is 304), its SSE-C key, the range.
    async fn lookup(&self, q: Lookup<'_>) -> S3Result<Found> {
        no_versions(q.version_id)?;
        let mut rec = self.locate(q.bucket, q.key).await?;
        q.conditions.check(&rec.meta, true)?;
        let ck = sse::customer_key(q.customer_key)?;
        sse::open_customer(&mut rec, ck.as_deref())?;
        let range = byte_range(q.range, rec.meta.size)?;
        Ok(Found { rec, range })
    }

    pub(super) async fn op_get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let i = &req.input;
        let found = self.lookup(lookup_of!(i)).await?;
        let (start, end) = found.span();
        let body = self.open_range(&found.rec, start, end).await?;
        let mut out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            ..Default::default()
        };
        // A range is not what the stored checksums describe.
        let with_checksums = found.range.is_none() && checksum_mode(i.checksum_mode.as_ref());
        describe!(out, &found, i, with_checksums);
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = &req.input;
        let found = self.lookup(lookup_of!(i)).await?;
        let mut out = HeadObjectOutput::default();
        describe!(out, &found, i, checksum_mode(i.checksum_mode.as_ref()));
        Ok(S3Response::new(out))
    }
}
