//! Conversions between the wire messages in [`crate::pb`] (and
//! [`crate::admin_pb`], in `admin.rs`) and the core records; the usage
//! report's are in `usage.rs`.
//!
//! Core → wire is infallible. Wire → core checks what the wire format cannot
//! express (required sub-messages, `-1` size hints) and returns a message that
//! the server turns into `InvalidArgument` and the client into `Internal`.

use strata_core as core;

use crate::pb;

mod admin;
mod usage;

pub(crate) use admin::*;
pub(crate) use usage::*;

/// A wire message that failed validation: what is wrong with it.
pub(crate) type Invalid = String;

fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Requires a non-empty string field.
pub(crate) fn required(field: &str, value: String) -> Result<String, Invalid> {
    if value.is_empty() {
        Err(format!("{field} must not be empty"))
    } else {
        Ok(value)
    }
}

pub(crate) fn present<T>(field: &str, value: Option<T>) -> Result<T, Invalid> {
    value.ok_or_else(|| format!("{field} is missing"))
}

/// `None` is sent as -1; larger sizes than `i64::MAX` saturate.
pub(crate) fn size_hint_to_pb(hint: Option<u64>) -> i64 {
    hint.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

pub(crate) fn size_hint_from_pb(hint: i64) -> Result<Option<u64>, Invalid> {
    match hint {
        -1 => Ok(None),
        n => u64::try_from(n)
            .map(Some)
            .map_err(|_| format!("size_hint must be -1 or non-negative, got {n}")),
    }
}

pub(crate) fn meta_to_pb(m: core::ObjectMeta) -> pb::ObjectMeta {
    pb::ObjectMeta {
        size: m.size,
        etag: m.etag,
        content_type: m.content_type.unwrap_or_default(),
        content_encoding: m.content_encoding.unwrap_or_default(),
        content_disposition: m.content_disposition.unwrap_or_default(),
        content_language: m.content_language.unwrap_or_default(),
        cache_control: m.cache_control.unwrap_or_default(),
        expires: m.expires.unwrap_or_default(),
        user_metadata: m.user_metadata.into_iter().collect(),
        checksums: m.checksums.into_iter().collect(),
        parts_count: m.parts_count,
        last_modified_unix_ms: m.last_modified_unix_ms,
    }
}

pub(crate) fn meta_from_pb(m: Option<pb::ObjectMeta>) -> Result<core::ObjectMeta, Invalid> {
    let m = present("meta", m)?;
    Ok(core::ObjectMeta {
        size: m.size,
        etag: m.etag,
        content_type: opt(m.content_type),
        content_encoding: opt(m.content_encoding),
        content_disposition: opt(m.content_disposition),
        content_language: opt(m.content_language),
        cache_control: opt(m.cache_control),
        expires: opt(m.expires),
        user_metadata: m.user_metadata.into_iter().collect(),
        checksums: m.checksums.into_iter().collect(),
        parts_count: m.parts_count,
        last_modified_unix_ms: m.last_modified_unix_ms,
    })
}

pub(crate) fn blob_key_to_pb(k: core::BlobKey) -> pb::BlobKey {
    pb::BlobKey {
        key_id: k.key_id,
        wrapped_dek: k.wrapped_dek,
        dek: k.dek,
        context: k.context,
    }
}

pub(crate) fn blob_key_from_pb(k: pb::BlobKey) -> Result<core::BlobKey, Invalid> {
    Ok(core::BlobKey {
        key_id: required("blob_key.key_id", k.key_id)?,
        wrapped_dek: k.wrapped_dek,
        dek: k.dek,
        context: k.context,
    })
}

pub(crate) fn encoding_to_pb(e: core::Encoding) -> pb::Encoding {
    match e {
        core::Encoding::Zstd { encoded_len } => pb::Encoding {
            kind: "zstd".into(),
            encoded_len,
            ref_id: String::new(),
        },
        core::Encoding::Delta { encoded_len, ref_id } => pb::Encoding {
            kind: "delta".into(),
            encoded_len,
            ref_id,
        },
    }
}

pub(crate) fn encoding_from_pb(e: pb::Encoding) -> Result<core::Encoding, Invalid> {
    match e.kind.as_str() {
        "zstd" => Ok(core::Encoding::Zstd {
            encoded_len: e.encoded_len,
        }),
        "delta" => Ok(core::Encoding::Delta {
            encoded_len: e.encoded_len,
            ref_id: required("encoding.ref_id", e.ref_id)?,
        }),
        _ => Err("encoding.kind must be zstd or delta".into()),
    }
}

pub(crate) fn delta_ref_to_pb(r: core::DeltaRef) -> pb::DeltaRef {
    pb::DeltaRef {
        ref_id: r.ref_id,
        size: r.size,
        sha256: r.sha256,
    }
}

pub(crate) fn delta_ref_from_pb(r: pb::DeltaRef) -> core::DeltaRef {
    core::DeltaRef {
        ref_id: r.ref_id,
        size: r.size,
        sha256: r.sha256,
    }
}

pub(crate) fn delta_plan_to_pb(d: core::DeltaPlan) -> pb::DeltaPlan {
    pb::DeltaPlan {
        space: d.space,
        reference: d.reference.map(delta_ref_to_pb),
        max_delta_permille: d.max_delta_permille,
    }
}

pub(crate) fn delta_plan_from_pb(d: pb::DeltaPlan) -> core::DeltaPlan {
    core::DeltaPlan {
        space: d.space,
        reference: d.reference.map(delta_ref_from_pb),
        max_delta_permille: d.max_delta_permille,
    }
}

pub(crate) fn decision_to_pb(d: core::DeltaDecision) -> pb::DeltaDecision {
    pb::DeltaDecision {
        decision: d.decision,
        reason: d.reason,
        ref_id: d.ref_id.unwrap_or_default(),
        logical_bytes: d.logical_bytes,
        stored_bytes: d.stored_bytes,
    }
}

pub(crate) fn decision_from_pb(d: pb::DeltaDecision) -> core::DeltaDecision {
    core::DeltaDecision {
        decision: d.decision,
        reason: d.reason,
        ref_id: opt(d.ref_id),
        logical_bytes: d.logical_bytes,
        stored_bytes: d.stored_bytes,
    }
}

pub(crate) fn segment_to_pb(s: core::Segment) -> pb::Segment {
    pb::Segment {
        backend_id: s.backend_id,
        backend_key: s.backend_key,
        length: s.length,
        sha256: s.sha256.unwrap_or_default(),
        cipher: s.cipher.map(blob_key_to_pb),
        encoding: s.encoding.map(encoding_to_pb),
    }
}

pub(crate) fn segment_from_pb(s: pb::Segment) -> Result<core::Segment, Invalid> {
    Ok(core::Segment {
        backend_id: required("segment.backend_id", s.backend_id)?,
        backend_key: required("segment.backend_key", s.backend_key)?,
        length: s.length,
        sha256: opt(s.sha256),
        cipher: s.cipher.map(blob_key_from_pb).transpose()?,
        encoding: s.encoding.map(encoding_from_pb).transpose()?,
    })
}

pub(crate) fn segments_from_pb(v: Vec<pb::Segment>) -> Result<Vec<core::Segment>, Invalid> {
    v.into_iter().map(segment_from_pb).collect()
}

pub(crate) fn plan_to_pb(p: core::WritePlan) -> pb::WritePlan {
    pb::WritePlan {
        intent_id: p.intent_id,
        object_id: p.object_id,
        backend_id: p.backend_id,
        backend_key: p.backend_key,
        cipher: p.cipher.map(blob_key_to_pb),
        delta: p.delta.map(delta_plan_to_pb),
        term: p.term,
    }
}

pub(crate) fn plan_from_pb(p: Option<pb::WritePlan>) -> Result<core::WritePlan, Invalid> {
    let p = present("plan", p)?;
    Ok(core::WritePlan {
        intent_id: required("plan.intent_id", p.intent_id)?,
        object_id: p.object_id,
        backend_id: p.backend_id,
        backend_key: p.backend_key,
        cipher: p.cipher.map(blob_key_from_pb).transpose()?,
        delta: p.delta.map(delta_plan_from_pb),
        term: p.term,
    })
}

/// One further copy of a quorum write, for `CommitWriteRequest.copies`.
pub(crate) fn copy_commit_to_pb((plan, segments): (core::WritePlan, Vec<core::Segment>)) -> pb::CopyCommit {
    pb::CopyCommit {
        plan: Some(plan_to_pb(plan)),
        segments: segments.into_iter().map(segment_to_pb).collect(),
    }
}

pub(crate) fn copy_commit_from_pb(c: pb::CopyCommit) -> Result<(core::WritePlan, Vec<core::Segment>), Invalid> {
    Ok((plan_from_pb(c.plan)?, segments_from_pb(c.segments)?))
}

pub(crate) fn condition_to_pb(c: &core::WriteCondition) -> Option<pb::WriteCondition> {
    (!c.is_none()).then(|| pb::WriteCondition {
        if_match: c.if_match.clone(),
        if_none_match: c.if_none_match,
    })
}

/// An absent condition is no condition.
pub(crate) fn condition_from_pb(c: Option<pb::WriteCondition>) -> core::WriteCondition {
    c.map(|c| core::WriteCondition {
        if_match: c.if_match,
        if_none_match: c.if_none_match,
    })
    .unwrap_or_default()
}

pub(crate) fn record_to_pb(r: core::ObjectRecord) -> pb::ObjectRecord {
    pb::ObjectRecord {
        bucket: r.bucket,
        key: r.key,
        object_id: r.object_id,
        meta: Some(meta_to_pb(r.meta)),
        segments: r.segments.into_iter().map(segment_to_pb).collect(),
        copies: (r.copies.into_iter())
            .map(|c| pb::Copy {
                segments: c.into_iter().map(segment_to_pb).collect(),
            })
            .collect(),
    }
}

pub(crate) fn record_from_pb(r: Option<pb::ObjectRecord>) -> Result<core::ObjectRecord, Invalid> {
    let r = present("record", r)?;
    Ok(core::ObjectRecord {
        bucket: r.bucket,
        key: r.key,
        object_id: r.object_id,
        meta: meta_from_pb(r.meta)?,
        segments: segments_from_pb(r.segments)?,
        copies: (r.copies.into_iter())
            .map(|c| segments_from_pb(c.segments))
            .collect::<Result<_, _>>()?,
    })
}

pub(crate) fn obsolete_to_pb(items: Vec<core::CleanupItem>) -> pb::Obsolete {
    pb::Obsolete {
        items: items
            .into_iter()
            .map(|c| pb::CleanupItem {
                id: c.id,
                backend_id: c.backend_id,
                backend_key: c.backend_key,
            })
            .collect(),
    }
}

/// A missing `Obsolete` means nothing to clean up.
pub(crate) fn obsolete_from_pb(o: Option<pb::Obsolete>) -> Vec<core::CleanupItem> {
    o.map(|o| o.items)
        .unwrap_or_default()
        .into_iter()
        .map(|c| core::CleanupItem {
            id: c.id,
            backend_id: c.backend_id,
            backend_key: c.backend_key,
        })
        .collect()
}

pub(crate) fn bucket_to_pb(b: core::BucketInfo) -> pb::BucketInfo {
    pb::BucketInfo {
        name: b.name,
        created_unix_ms: b.created_unix_ms,
    }
}

pub(crate) fn bucket_from_pb(b: pb::BucketInfo) -> core::BucketInfo {
    core::BucketInfo {
        name: b.name,
        created_unix_ms: b.created_unix_ms,
    }
}

pub(crate) fn credential_to_pb(c: Option<core::Credential>) -> pb::GetCredentialResponse {
    let Some(c) = c else {
        return pb::GetCredentialResponse::default();
    };
    let (unrestricted, buckets) = match c.scope {
        core::Scope::Unrestricted => (true, Vec::new()),
        core::Scope::Buckets(b) => (false, b),
    };
    pb::GetCredentialResponse {
        found: true,
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        unrestricted,
        buckets,
    }
}

pub(crate) fn credential_from_pb(c: pb::GetCredentialResponse) -> Option<core::Credential> {
    if !c.found {
        return None;
    }
    Some(core::Credential {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        scope: if c.unrestricted {
            core::Scope::Unrestricted
        } else {
            core::Scope::Buckets(c.buckets)
        },
    })
}

pub(crate) fn list_page_to_pb(p: core::ListPage) -> pb::ListObjectsResponse {
    pb::ListObjectsResponse {
        objects: p
            .objects
            .into_iter()
            .map(|e| pb::ListEntry {
                key: e.key,
                size: e.size,
                etag: e.etag,
                last_modified_unix_ms: e.last_modified_unix_ms,
            })
            .collect(),
        common_prefixes: p.common_prefixes,
        is_truncated: p.is_truncated,
        next_after: p.next_after,
    }
}

pub(crate) fn list_page_from_pb(p: pb::ListObjectsResponse) -> core::ListPage {
    core::ListPage {
        objects: p
            .objects
            .into_iter()
            .map(|e| core::ListEntry {
                key: e.key,
                size: e.size,
                etag: e.etag,
                last_modified_unix_ms: e.last_modified_unix_ms,
            })
            .collect(),
        common_prefixes: p.common_prefixes,
        is_truncated: p.is_truncated,
        next_after: p.next_after,
    }
}

pub(crate) fn upload_to_pb(u: core::UploadInfo) -> pb::UploadInfo {
    pb::UploadInfo {
        upload_id: u.upload_id,
        bucket: u.bucket,
        key: u.key,
        meta: Some(meta_to_pb(u.meta)),
        initiated_unix_ms: u.initiated_unix_ms,
    }
}

pub(crate) fn upload_from_pb(u: Option<pb::UploadInfo>) -> Result<core::UploadInfo, Invalid> {
    let u = present("upload", u)?;
    Ok(core::UploadInfo {
        upload_id: u.upload_id,
        bucket: u.bucket,
        key: u.key,
        meta: meta_from_pb(u.meta)?,
        initiated_unix_ms: u.initiated_unix_ms,
    })
}

pub(crate) fn part_to_pb(p: core::PartInfo) -> pb::PartInfo {
    pb::PartInfo {
        part_number: p.part_number,
        etag: p.etag,
        size: p.size,
        last_modified_unix_ms: p.last_modified_unix_ms,
        segment: Some(segment_to_pb(p.segment)),
        checksums: p.checksums.into_iter().collect(),
    }
}

pub(crate) fn part_from_pb(p: Option<pb::PartInfo>) -> Result<core::PartInfo, Invalid> {
    let p = present("part", p)?;
    Ok(core::PartInfo {
        part_number: p.part_number,
        etag: p.etag,
        size: p.size,
        last_modified_unix_ms: p.last_modified_unix_ms,
        segment: segment_from_pb(present("part.segment", p.segment)?)?,
        checksums: p.checksums.into_iter().collect(),
    })
}

pub(crate) fn monthly_to_pb(u: core::MonthlyUsage) -> pb::MonthlyUsage {
    pb::MonthlyUsage {
        backend_id: u.backend_id,
        month: u.month,
        requests: u.requests,
        egress_bytes: u.egress_bytes,
        ingress_bytes: u.ingress_bytes,
        requests_exhausted: u.requests_exhausted,
        egress_exhausted: u.egress_exhausted,
        ingress_exhausted: u.ingress_exhausted,
    }
}

pub(crate) fn monthly_from_pb(u: pb::MonthlyUsage) -> core::MonthlyUsage {
    core::MonthlyUsage {
        backend_id: u.backend_id,
        month: u.month,
        requests: u.requests,
        egress_bytes: u.egress_bytes,
        ingress_bytes: u.ingress_bytes,
        requests_exhausted: u.requests_exhausted,
        egress_exhausted: u.egress_exhausted,
        ingress_exhausted: u.ingress_exhausted,
    }
}
