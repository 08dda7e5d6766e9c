//! `CpError` ↔ `tonic::Status`. The status code is for generic gRPC tooling;
//! the exact variant travels in the `x-strata-error` metadata entry and its
//! detail in the status message, so the client rebuilds the very same error.

use strata_core::CpError;
use tonic::{Code, Status, metadata::MetadataMap};

/// Metadata key carrying [`CpError::code`].
pub const ERROR_HEADER: &str = "x-strata-error";

pub(crate) fn status_code(e: &CpError) -> Code {
    match e {
        CpError::NoSuchBucket | CpError::NoSuchKey | CpError::NoSuchUpload => Code::NotFound,
        CpError::BucketAlreadyOwnedByYou => Code::AlreadyExists,
        CpError::BucketNotEmpty | CpError::PreconditionFailed => Code::FailedPrecondition,
        CpError::InvalidPart(_) | CpError::InvalidPartOrder | CpError::EntityTooSmall | CpError::InvalidArgument(_) => {
            Code::InvalidArgument
        }
        CpError::NoCapacity(_) => Code::ResourceExhausted,
        CpError::Unavailable(_) => Code::Unavailable,
        CpError::Internal(_) => Code::Internal,
        CpError::KeyUnavailable(_) => Code::FailedPrecondition,
    }
}

/// Server side: the status sent for a control-plane error.
pub(crate) fn to_status(e: &CpError) -> Status {
    if let CpError::Internal(detail) = e {
        tracing::warn!(error = %detail, "control plane call failed");
    }
    let mut md = MetadataMap::new();
    md.insert(ERROR_HEADER, tonic::metadata::MetadataValue::from_static(e.code()));
    Status::with_metadata(status_code(e), e.detail(), md)
}

/// Server side: a request that failed validation.
pub(crate) fn invalid(msg: String) -> Status {
    to_status(&CpError::InvalidArgument(msg))
}

/// Client side: rebuilds the control-plane error from a status.
pub(crate) fn from_status(s: &Status) -> CpError {
    if let Some(code) = s.metadata().get(ERROR_HEADER).and_then(|v| v.to_str().ok()) {
        return CpError::from_code(code, s.message().to_string());
    }
    match s.code() {
        Code::Unauthenticated => CpError::Internal(format!(
            "control plane refused our cluster token (check that both planes share \
             cluster.secret): {}",
            s.message()
        )),
        // Without our header these come from the transport, not the control plane.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            CpError::Unavailable(transport_message(s))
        }
        code => CpError::Internal(format!("control plane returned {code:?}: {}", s.message())),
    }
}

pub(crate) fn transport_message(s: &Status) -> String {
    use std::error::Error as _;
    let mut msg = s.message().to_string();
    let mut src = s.source();
    while let Some(e) = src {
        msg.push_str(": ");
        msg.push_str(&e.to_string());
        src = e.source();
    }
    if msg.is_empty() { format!("{:?}", s.code()) } else { msg }
}

/// Client side: a response the client cannot make sense of.
pub(crate) fn malformed(what: String) -> CpError {
    CpError::Internal(format!("malformed control-plane response: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_round_trips() {
        let all = [
            CpError::NoSuchBucket,
            CpError::NoSuchKey,
            CpError::NoSuchUpload,
            CpError::BucketAlreadyOwnedByYou,
            CpError::BucketNotEmpty,
            CpError::InvalidPart("p".into()),
            CpError::InvalidPartOrder,
            CpError::EntityTooSmall,
            CpError::NoCapacity("full".into()),
            CpError::InvalidArgument("x".into()),
            CpError::Unavailable("down".into()),
            CpError::Internal("boom".into()),
        ];
        for e in all {
            assert_eq!(from_status(&to_status(&e)), e);
        }
        assert_eq!(to_status(&CpError::NoSuchKey).code(), Code::NotFound);
    }

    #[test]
    fn statuses_without_header() {
        assert!(matches!(
            from_status(&Status::unavailable("connection refused")),
            CpError::Unavailable(m) if m.contains("connection refused")
        ));
        assert!(matches!(
            from_status(&Status::unauthenticated("bad token")),
            CpError::Internal(m) if m.contains("refused our cluster token")
        ));
        assert!(matches!(from_status(&Status::not_found("x")), CpError::Internal(_)));
    }
}
