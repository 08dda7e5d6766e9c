//! The one place where domain errors become S3 errors. Messages never carry
//! internal detail; that goes to the log.

use s3s::{S3Error, S3ErrorCode, s3_error};
use strata_backend::BackendError;
use strata_core::CpError;

use crate::pipeline::{BodyError, body_error};

pub fn from_cp(e: CpError) -> S3Error {
    match e {
        CpError::NoSuchBucket => s3_error!(NoSuchBucket),
        CpError::NoSuchKey => s3_error!(NoSuchKey),
        CpError::NoSuchUpload => s3_error!(NoSuchUpload),
        CpError::BucketAlreadyOwnedByYou => s3_error!(BucketAlreadyOwnedByYou),
        CpError::BucketNotEmpty => s3_error!(BucketNotEmpty),
        CpError::InvalidPart(m) => S3Error::with_message(S3ErrorCode::InvalidPart, m),
        CpError::InvalidPartOrder => s3_error!(InvalidPartOrder),
        CpError::EntityTooSmall => s3_error!(EntityTooSmall),
        CpError::PreconditionFailed => s3_error!(PreconditionFailed),
        CpError::InvalidArgument(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        CpError::NoCapacity(m) => {
            tracing::warn!(reason = %m, "write refused: no backend can take it");
            S3Error::with_message(
                S3ErrorCode::Custom("InsufficientStorage".into()),
                "No storage backend can accept this object now.",
            )
            .with_status(http::StatusCode::INSUFFICIENT_STORAGE)
        }
        CpError::Unavailable(m) => {
            tracing::error!(error = %m, "control plane unavailable");
            s3_error!(SlowDown, "Please reduce your request rate.")
        }
        CpError::Internal(m) => {
            tracing::error!(error = %m, "control plane error");
            s3_error!(InternalError)
        }
        CpError::KeyUnavailable(m) => {
            tracing::error!(error = %m, "object sealed under a key this cluster does not have");
            // The key id is an operator's name, not a secret; it says what to restore.
            S3Error::with_message(
                S3ErrorCode::InternalError,
                format!("The object cannot be decrypted: {m}."),
            )
        }
    }
}

/// Maps a failed upload to the client's fault or ours.
pub fn from_upload(e: BackendError) -> S3Error {
    match e {
        BackendError::Body(io) => match body_error(&io) {
            Some(BodyError::BadDigest) => s3_error!(BadDigest),
            Some(BodyError::ChecksumMismatch(algo)) => S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {algo} you specified did not match the calculated checksum."),
            ),
            Some(BodyError::MissingTrailer(h)) => {
                S3Error::with_message(S3ErrorCode::InvalidRequest, format!("The trailer {h} is missing."))
            }
            Some(BodyError::Incomplete { .. }) => s3_error!(IncompleteBody),
            Some(BodyError::Client(inner)) => client_body_error(inner.as_ref()),
            None => {
                tracing::warn!(error = %io, "upload body failed");
                s3_error!(IncompleteBody)
            }
        },
        other => from_backend(other),
    }
}

fn client_body_error(e: &(dyn std::error::Error + 'static)) -> S3Error {
    if let Some(s3) = e.downcast_ref::<S3Error>() {
        let mut out = S3Error::new(s3.code().clone());
        if let Some(m) = s3.message() {
            out.set_message(m.to_owned());
        }
        return out;
    }
    // s3s does not export its body error types; their Display names the variant.
    let text = e.to_string();
    if text.contains("AwsChunkedStreamError") {
        return if text.contains("SignatureMismatch") {
            s3_error!(SignatureDoesNotMatch)
        } else if text.contains("Incomplete") || text.contains("Underlying") {
            s3_error!(IncompleteBody)
        } else {
            s3_error!(InvalidRequest, "The aws-chunked body is malformed.")
        };
    }
    if text.contains("UploadStreamError") {
        return if text.contains("Sha256Mismatch") {
            S3Error::with_message(
                S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
            .with_status(http::StatusCode::BAD_REQUEST)
        } else {
            s3_error!(IncompleteBody)
        };
    }
    tracing::debug!(error = %text, "client body stream failed");
    s3_error!(IncompleteBody)
}

pub fn from_backend(e: BackendError) -> S3Error {
    tracing::error!(error = %e, "backend error");
    s3_error!(InternalError)
}

/// The S3 error for bad SSE-C request headers.
pub fn from_sse_c(e: strata_crypto::SseCError) -> S3Error {
    use strata_crypto::SseCError;
    match e {
        SseCError::BadAlgorithm => S3Error::with_message(
            S3ErrorCode::Custom("InvalidEncryptionAlgorithmError".into()),
            "The encryption request you specified is not valid. The valid value is AES256.",
        )
        .with_status(http::StatusCode::BAD_REQUEST),
        SseCError::Md5Mismatch => s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ),
        SseCError::MissingKey => s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide the customer key and its MD5."
        ),
        SseCError::BadKey => s3_error!(
            InvalidArgument,
            "The secret key was invalid for the specified algorithm."
        ),
    }
}

trait WithStatus {
    fn with_status(self, s: http::StatusCode) -> Self;
}

impl WithStatus for S3Error {
    fn with_status(mut self, s: http::StatusCode) -> Self {
        self.set_status_code(s);
        self
    }
}

/// Every copy of an object is on a backend whose monthly egress limit is used up.
pub fn egress_exhausted(backends: &[String]) -> S3Error {
    tracing::warn!(backends = %backends.join(","), "read refused: monthly egress_byte_limit used up");
    S3Error::with_message(
        S3ErrorCode::SlowDown,
        "The monthly egress limit (egress_byte_limit) of every backend holding this object is used up.",
    )
    .with_status(http::StatusCode::SERVICE_UNAVAILABLE)
}
