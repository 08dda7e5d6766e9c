//! Conditional writes (`If-Match`, `If-None-Match` on PutObject, CopyObject
//! and CompleteMultipartUpload). The condition travels with the commit and is
//! checked in the same transaction that makes the new object current: a
//! check made before the write is a race that every concurrent writer passes.

use crate::{CpError, CpResult, ObjectMeta, Segment, WritePlan};

/// What must hold of a key's current object when a write commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// `If-Match`: one or more ETags (quoted or not, comma-separated), or `*`
    /// for "any current object".
    pub if_match: Option<String>,
    /// `If-None-Match: *`: the key must have no current object.
    pub if_none_match: bool,
}

impl WriteCondition {
    /// No condition: the write always commits.
    pub const NONE: WriteCondition = WriteCondition {
        if_match: None,
        if_none_match: false,
    };

    pub fn is_none(&self) -> bool {
        self.if_match.is_none() && !self.if_none_match
    }

    /// Checks the condition against the current object's ETag (`None`: the
    /// key has no current object). As S3: `If-None-Match: *` over an existing
    /// object and an `If-Match` that names another ETag fail with
    /// `PreconditionFailed`; `If-Match` on a missing key fails with `NoSuchKey`.
    pub fn check(&self, current_etag: Option<&str>) -> CpResult<()> {
        if self.if_none_match && current_etag.is_some() {
            return Err(CpError::PreconditionFailed);
        }
        if let Some(want) = &self.if_match {
            let Some(have) = current_etag else {
                return Err(CpError::NoSuchKey);
            };
            let have = have.trim().trim_matches('"');
            let matched = want.split(',').map(|t| t.trim()).any(|t| {
                let t = t.strip_prefix("W/").unwrap_or(t);
                t == "*" || t.trim_matches('"') == have
            });
            if !matched {
                return Err(CpError::PreconditionFailed);
            }
        }
        Ok(())
    }
}

/// A written object, ready to become current: what `CommitWrite` carries
/// besides the plan it was written under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    pub bucket: String,
    pub key: String,
    pub meta: ObjectMeta,
    pub segments: Vec<Segment>,
    /// Further complete copies of a quorum write, each written under its own
    /// plan; every intent is redeemed in the same transaction, so either all
    /// copies become current or none does.
    pub copies: Vec<(WritePlan, Vec<Segment>)>,
    /// Checked in the commit's transaction.
    pub condition: WriteCondition,
}

impl Commit {
    /// A single-copy, unconditional commit.
    pub fn new(bucket: &str, key: &str, meta: ObjectMeta, segments: Vec<Segment>) -> Commit {
        Commit {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            meta,
            segments,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str) -> WriteCondition {
        WriteCondition {
            if_match: Some(t.into()),
            if_none_match: false,
        }
    }

    #[test]
    fn none_always_holds() {
        assert_eq!(WriteCondition::NONE.check(None), Ok(()));
        assert_eq!(WriteCondition::NONE.check(Some("abc")), Ok(()));
    }

    #[test]
    fn if_none_match_star() {
        let c = WriteCondition {
            if_match: None,
            if_none_match: true,
        };
        assert_eq!(c.check(None), Ok(()));
        assert_eq!(c.check(Some("abc")), Err(CpError::PreconditionFailed));
    }

    #[test]
    fn if_match_compares_etags() {
        assert_eq!(m("\"abc\"").check(Some("abc")), Ok(()));
        assert_eq!(m("abc").check(Some("\"abc\"")), Ok(()));
        assert_eq!(m("\"x\", \"abc\"").check(Some("abc")), Ok(()));
        assert_eq!(m("*").check(Some("abc")), Ok(()));
        assert_eq!(m("\"abd\"").check(Some("abc")), Err(CpError::PreconditionFailed));
        assert_eq!(m("\"abc\"").check(None), Err(CpError::NoSuchKey));
        assert_eq!(m("*").check(None), Err(CpError::NoSuchKey));
    }
}
