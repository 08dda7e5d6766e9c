use thiserror::Error;

/// Errors returned by control-plane operations. The data plane maps them to S3
/// errors in one place; the gRPC edge maps them to status codes.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CpError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("bucket already exists")]
    BucketAlreadyOwnedByYou,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part too small")]
    EntityTooSmall,
    #[error("no backend can take this write: {0}")]
    NoCapacity(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// An object's blob is sealed under a master key that is not configured
    /// (the message names the key id). Never served as ciphertext.
    #[error("encryption key unavailable: {0}")]
    KeyUnavailable(String),
    /// A conditional write's `If-Match` or `If-None-Match` did not hold at
    /// its commit.
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
}

impl CpError {
    /// A stable name for the variant, carried across the gRPC edge.
    pub fn code(&self) -> &'static str {
        match self {
            CpError::NoSuchBucket => "NoSuchBucket",
            CpError::NoSuchKey => "NoSuchKey",
            CpError::NoSuchUpload => "NoSuchUpload",
            CpError::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            CpError::BucketNotEmpty => "BucketNotEmpty",
            CpError::InvalidPart(_) => "InvalidPart",
            CpError::InvalidPartOrder => "InvalidPartOrder",
            CpError::EntityTooSmall => "EntityTooSmall",
            CpError::NoCapacity(_) => "NoCapacity",
            CpError::InvalidArgument(_) => "InvalidArgument",
            CpError::Unavailable(_) => "Unavailable",
            CpError::Internal(_) => "Internal",
            CpError::KeyUnavailable(_) => "KeyUnavailable",
            CpError::PreconditionFailed => "PreconditionFailed",
        }
    }

    /// Rebuilds an error from its [`code`](Self::code) and message.
    pub fn from_code(code: &str, msg: String) -> CpError {
        match code {
            "NoSuchBucket" => CpError::NoSuchBucket,
            "NoSuchKey" => CpError::NoSuchKey,
            "NoSuchUpload" => CpError::NoSuchUpload,
            "BucketAlreadyOwnedByYou" => CpError::BucketAlreadyOwnedByYou,
            "BucketNotEmpty" => CpError::BucketNotEmpty,
            "InvalidPart" => CpError::InvalidPart(msg),
            "InvalidPartOrder" => CpError::InvalidPartOrder,
            "EntityTooSmall" => CpError::EntityTooSmall,
            "NoCapacity" => CpError::NoCapacity(msg),
            "InvalidArgument" => CpError::InvalidArgument(msg),
            "Unavailable" => CpError::Unavailable(msg),
            "KeyUnavailable" => CpError::KeyUnavailable(msg),
            "PreconditionFailed" => CpError::PreconditionFailed,
            _ => CpError::Internal(msg),
        }
    }

    /// The detail message, without the variant prefix.
    pub fn detail(&self) -> String {
        match self {
            CpError::InvalidPart(m)
            | CpError::NoCapacity(m)
            | CpError::InvalidArgument(m)
            | CpError::Unavailable(m)
            | CpError::Internal(m)
            | CpError::KeyUnavailable(m) => m.clone(),
            other => other.to_string(),
        }
    }
}

pub type CpResult<T> = Result<T, CpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
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
            CpError::PreconditionFailed,
        ];
        for e in all {
            assert_eq!(CpError::from_code(e.code(), e.detail()), e);
        }
    }
}
