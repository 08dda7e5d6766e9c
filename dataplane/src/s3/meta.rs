//! Object metadata between S3 DTOs and catalog records, and the conditional
//! request rules (If-Match and friends).

use std::collections::BTreeMap;

use s3s::dto::{ETag, ETagCondition, Metadata, Timestamp, TimestampFormat};
use s3s::{S3Result, s3_error};
use strata_core::{ObjectKey, ObjectMeta};

pub fn timestamp(ms: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

fn unix_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as i64)
}

pub fn etag(hex: &str) -> ETag {
    ETag::Strong(hex.to_owned())
}

pub fn check_key(key: &str) -> S3Result<()> {
    ObjectKey::new(key)
        .map(|_| ())
        .map_err(|_| s3_error!(KeyTooLongError, "Your key is too long."))
}

pub fn http_date(t: &Timestamp) -> String {
    let mut buf = Vec::new();
    let _ = t.format(TimestampFormat::HttpDate, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// The metadata a client may set when writing an object.
pub struct Headers {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub metadata: Option<Metadata>,
}

impl Headers {
    pub fn into_meta(self) -> ObjectMeta {
        ObjectMeta {
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.as_ref().map(http_date),
            user_metadata: self.metadata.map(|m| m.into_iter().collect()).unwrap_or_default(),
            ..ObjectMeta::default()
        }
    }
}

pub fn user_metadata(m: &BTreeMap<String, String>) -> Option<Metadata> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The preconditions of a GET, HEAD or copy source.
pub struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"') == etag,
    }
}

impl Conditions<'_> {
    /// Applies RFC 9110 precedence as S3 does: If-Match beats
    /// If-Unmodified-Since, and If-None-Match beats If-Modified-Since.
    /// A failed "match" gives 412; a failed "none match" on a read gives 304.
    pub fn check(&self, meta: &ObjectMeta, is_read: bool) -> S3Result<()> {
        let last_modified = meta.last_modified_unix_ms.div_euclid(1000);
        match self.if_match {
            Some(c) if !matches(c, &meta.etag) => return Err(s3_error!(PreconditionFailed)),
            Some(_) => {}
            None => {
                if self.if_unmodified_since.is_some_and(|t| last_modified > unix_secs(t)) {
                    return Err(s3_error!(PreconditionFailed));
                }
            }
        }
        let not_modified = || {
            if is_read {
                s3_error!(NotModified)
            } else {
                s3_error!(PreconditionFailed)
            }
        };
        match self.if_none_match {
            Some(c) if matches(c, &meta.etag) => return Err(not_modified()),
            Some(_) => {}
            None => {
                if self.if_modified_since.is_some_and(|t| last_modified <= unix_secs(t)) {
                    return Err(not_modified());
                }
            }
        }
        Ok(())
    }
}
