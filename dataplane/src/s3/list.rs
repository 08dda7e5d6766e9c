//! ListObjects and ListObjectsV2 over the control plane's `list`: delimiters,
//! continuation tokens and `encoding-type=url`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strata_core::{ListPage, ListQuery};

use super::StrataS3;
use super::meta::{etag, timestamp};
use crate::errors::from_cp;

const MAX_KEYS: i32 = 1000;

/// S3's `encoding-type=url`: every byte but unreserved characters and `/`.
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn max_keys(v: Option<i32>) -> S3Result<u32> {
    match v {
        None => Ok(MAX_KEYS as u32),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative.")),
        Some(n) => Ok(n.min(MAX_KEYS) as u32),
    }
}

fn url_encoding(e: Option<&EncodingType>) -> S3Result<bool> {
    match e.map(EncodingType::as_str) {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

struct Listed {
    contents: ObjectList,
    prefixes: CommonPrefixList,
    page: ListPage,
}

impl StrataS3 {
    async fn list(&self, query: ListQuery, encode: bool) -> S3Result<Listed> {
        let page = if query.max_keys == 0 {
            self.cp.head_bucket(&query.bucket).await.map_err(from_cp)?;
            ListPage::default()
        } else {
            self.cp.list_objects(query).await.map_err(from_cp)?
        };
        let enc = |s: &str| if encode { url_encode(s) } else { s.to_owned() };
        let contents = page
            .objects
            .iter()
            .map(|o| Object {
                key: Some(enc(&o.key)),
                size: Some(o.size as i64),
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(timestamp(o.last_modified_unix_ms)),
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        let prefixes = page
            .common_prefixes
            .iter()
            .map(|p| CommonPrefix { prefix: Some(enc(p)) })
            .collect();
        Ok(Listed {
            contents,
            prefixes,
            page,
        })
    }

    pub(super) async fn op_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let i = req.input;
        let encode = url_encoding(i.encoding_type.as_ref())?;
        let query = ListQuery {
            bucket: i.bucket.clone(),
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone().unwrap_or_default(),
            after: i.marker.clone().unwrap_or_default(),
            max_keys: max_keys(i.max_keys)?,
        };
        let listed = self.list(query, encode).await?;
        let enc = |s: String| if encode { url_encode(&s) } else { s };
        // NextMarker is returned only with a delimiter, as S3 does.
        let next_marker =
            (listed.page.is_truncated && i.delimiter.is_some()).then(|| enc(listed.page.next_after.clone()));
        let out = ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(i.prefix.unwrap_or_default())),
            marker: Some(enc(i.marker.unwrap_or_default())),
            delimiter: i.delimiter.map(enc),
            max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
            is_truncated: Some(listed.page.is_truncated),
            contents: Some(listed.contents),
            common_prefixes: Some(listed.prefixes),
            next_marker,
            encoding_type: i.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub(super) async fn op_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        let encode = url_encoding(i.encoding_type.as_ref())?;
        let after = match &i.continuation_token {
            Some(t) => decode_token(t)?,
            None => i.start_after.clone().unwrap_or_default(),
        };
        let query = ListQuery {
            bucket: i.bucket.clone(),
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone().unwrap_or_default(),
            after,
            max_keys: max_keys(i.max_keys)?,
        };
        let listed = self.list(query, encode).await?;
        let enc = |s: String| if encode { url_encode(&s) } else { s };
        let key_count = (listed.contents.len() + listed.prefixes.len()) as i32;
        let next = listed
            .page
            .is_truncated
            .then(|| B64.encode(listed.page.next_after.as_bytes()));
        let out = ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(i.prefix.unwrap_or_default())),
            delimiter: i.delimiter.map(enc),
            max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            next_continuation_token: next,
            is_truncated: Some(listed.page.is_truncated),
            contents: Some(listed.contents),
            common_prefixes: Some(listed.prefixes),
            start_after: i.start_after.map(enc),
            encoding_type: i.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}

fn decode_token(t: &str) -> S3Result<String> {
    let bytes = B64
        .decode(t)
        .map_err(|_| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?;
    String::from_utf8(bytes).map_err(|_| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_matches_s3() {
        assert_eq!(url_encode("a b/ü%+"), "a%20b/%C3%BC%25%2B");
        assert_eq!(decode_token(&B64.encode("k/ü")).unwrap(), "k/ü");
        assert!(decode_token("!!").is_err());
    }
}
