//! Conditional writes: `If-Match` and `If-None-Match` on PutObject,
//! CopyObject and CompleteMultipartUpload. The condition travels with the
//! commit, and the control plane checks it in the transaction that makes the
//! new object current, so of writers that race on one key exactly one wins a
//! create-only (`If-None-Match: *`) write. The write path's early check
//! (`write/plan.rs`) only spares a client that is sure to lose the upload.

use http::HeaderMap;
use s3s::dto::ETagCondition;
use s3s::{S3Result, s3_error};
use strata_core::WriteCondition;

/// The commit condition of a write's `If-Match` and `If-None-Match`. As S3,
/// `If-None-Match` on a write takes only `*`.
pub(super) fn condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<WriteCondition> {
    let if_none_match = match if_none_match {
        None => false,
        Some(ETagCondition::Any) => true,
        Some(ETagCondition::ETag(_)) => {
            return Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented: If-None-Match on a write accepts only *."
            ));
        }
    };
    let if_match = if_match.map(|c| match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(e) => e.value().to_owned(),
    });
    Ok(WriteCondition {
        if_match,
        if_none_match,
    })
}

/// The same, read from raw headers (CopyObject's input has no fields for
/// the destination's conditions).
pub(super) fn condition_from_headers(headers: &HeaderMap) -> S3Result<WriteCondition> {
    let parse = |name: &str| -> S3Result<Option<ETagCondition>> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => ETagCondition::parse_http_header(v.as_bytes())
                .map(Some)
                .map_err(|_| s3_error!(InvalidArgument, "The {name} header is not a valid ETag condition.")),
        }
    };
    condition(parse("if-match")?.as_ref(), parse("if-none-match")?.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    #[test]
    fn if_none_match_takes_only_star() {
        let any = ETagCondition::Any;
        assert!(condition(None, Some(&any)).unwrap().if_none_match);
        let tag = ETagCondition::ETag(ETag::Strong("abc".into()));
        let err = condition(None, Some(&tag)).unwrap_err();
        assert_eq!(err.code().as_str(), "NotImplemented");
        assert_eq!(condition(Some(&tag), None).unwrap().if_match.as_deref(), Some("abc"));
    }

    #[test]
    fn headers_parse() {
        let mut h = HeaderMap::new();
        h.insert("if-none-match", "*".parse().unwrap());
        assert!(condition_from_headers(&h).unwrap().if_none_match);
        let mut h = HeaderMap::new();
        h.insert("if-match", "\"abc\"".parse().unwrap());
        assert_eq!(condition_from_headers(&h).unwrap().if_match.as_deref(), Some("abc"));
        assert!(condition_from_headers(&HeaderMap::new()).unwrap().is_none());
    }
}
