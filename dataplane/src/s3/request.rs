//! What an upload request (PutObject, UploadPart) declares about its body:
//! the Content-MD5, `x-amz-checksum-*` and trailer checksums and the decoded
//! length it is checked against, parsed into the write path's
//! [`Body`](crate::write::Body); and the checksum fields of the response.

use http::HeaderMap;
use s3s::TrailingHeaders;
use s3s::{S3Result, s3_error};

use crate::checksum::{Algo, decode_content_md5};
use crate::pipeline::Expect;

/// The checksum fields every upload input carries.
pub struct DeclaredChecksums<'a> {
    pub crc32: Option<&'a String>,
    pub crc32c: Option<&'a String>,
    pub crc64nvme: Option<&'a String>,
    pub sha1: Option<&'a String>,
    pub sha256: Option<&'a String>,
}

/// Builds what the body will be checked against from the request.
pub fn expectations(
    content_md5: Option<&String>,
    declared: DeclaredChecksums<'_>,
    headers: &HeaderMap,
    trailers: Option<TrailingHeaders>,
) -> S3Result<Expect> {
    let md5 = match content_md5 {
        None => None,
        Some(v) => Some(decode_content_md5(v).ok_or_else(|| s3_error!(InvalidDigest))?),
    };
    let given = [
        (Algo::Crc32, declared.crc32),
        (Algo::Crc32c, declared.crc32c),
        (Algo::Crc64Nvme, declared.crc64nvme),
        (Algo::Sha1, declared.sha1),
        (Algo::Sha256, declared.sha256),
    ];
    let mut checksum = None;
    for (algo, v) in given {
        if let Some(v) = v {
            if checksum.is_some() {
                return Err(s3_error!(InvalidRequest, "Expecting a single x-amz-checksum- header."));
            }
            checksum = Some((algo, v.clone()));
        }
    }
    let trailer_algo = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("x-amz-checksum-"))
        .map(|name| Algo::parse(name).ok_or_else(|| s3_error!(InvalidRequest, "Unsupported trailer checksum.")))
        .transpose()?;
    let trailer = match (checksum.is_some(), trailer_algo, trailers) {
        (false, Some(algo), Some(t)) => Some((algo, t)),
        (false, Some(_), None) => {
            return Err(s3_error!(
                InvalidRequest,
                "x-amz-trailer requires an aws-chunked body with trailers."
            ));
        }
        _ => None,
    };
    let length = headers
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok(Expect {
        md5,
        checksum,
        trailer,
        length,
    })
}

/// The body of a PutObject or UploadPart input `$i` as a
/// [`Body`](crate::write::Body), with what its request declared about it.
macro_rules! client_body {
    ($i:ident, $headers:expr, $trailers:expr) => {{
        let declared = super::request::DeclaredChecksums {
            crc32: $i.checksum_crc32.as_ref(),
            crc32c: $i.checksum_crc32c.as_ref(),
            crc64nvme: $i.checksum_crc64nvme.as_ref(),
            sha1: $i.checksum_sha1.as_ref(),
            sha256: $i.checksum_sha256.as_ref(),
        };
        let expect = super::request::expectations($i.content_md5.as_ref(), declared, $headers, $trailers)?;
        let size_hint = $i.content_length.and_then(|l| u64::try_from(l).ok());
        crate::write::Body::client($i.body, expect, size_hint)
    }};
}
pub(super) use client_body;

/// Sets the `checksum_*` field of output `$out` that a verified body's
/// checksum (`Option<(Algo, String)>`) names.
macro_rules! checksum_fields {
    ($out:ident, $checksum:expr) => {{
        use crate::checksum::Algo;
        match $checksum {
            Some((Algo::Crc32, v)) => $out.checksum_crc32 = Some(v),
            Some((Algo::Crc32c, v)) => $out.checksum_crc32c = Some(v),
            Some((Algo::Crc64Nvme, v)) => $out.checksum_crc64nvme = Some(v),
            Some((Algo::Sha1, v)) => $out.checksum_sha1 = Some(v),
            Some((Algo::Sha256, v)) => $out.checksum_sha256 = Some(v),
            None => {}
        }
    }};
}
pub(super) use checksum_fields;
