//! Turning SDK errors into [`BackendError`]s with messages an operator can act on.

use std::error::Error as StdError;
use std::io;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::BackendError;

/// The HTTP status of a failed call, when a response arrived.
pub(super) fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The S3 error code (`NoSuchKey`, ...) of a failed call, when the response had one.
pub(super) fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    e.code()
}

/// The first `io::Error` in the source chain, if any (connection refused, reset, ...).
pub(super) fn io_kind(e: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

/// What went wrong on the way to the service, phrased for the operator; `None`
/// when the service did answer.
pub(super) fn transport<E>(e: &SdkError<E, HttpResponse>, endpoint: &str, field: &str) -> Option<String>
where
    E: StdError + 'static,
{
    match e {
        SdkError::TimeoutError(_) => Some(format!(
            "no answer from {endpoint} in time; check `{field}.endpoint`, or raise `{field}.read_timeout_secs`"
        )),
        SdkError::DispatchFailure(d) => {
            let kind = io_kind(e);
            Some(if kind == Some(io::ErrorKind::ConnectionRefused) {
                format!(
                    "cannot connect to {endpoint}: connection refused; is the service running there? check `{field}.endpoint`"
                )
            } else if d.is_timeout() {
                format!(
                    "cannot connect to {endpoint}: timed out; check `{field}.endpoint` and the network, or raise `{field}.connect_timeout_secs`"
                )
            } else if d.is_user() {
                format!("request to {endpoint} could not be sent: {}", DisplayErrorContext(e))
            } else {
                format!(
                    "cannot reach {endpoint}: {}; check `{field}.endpoint`",
                    DisplayErrorContext(e)
                )
            })
        }
        SdkError::ConstructionFailure(_) => Some(format!(
            "request to {endpoint} could not be built (are the credentials available?): {}",
            DisplayErrorContext(e)
        )),
        _ => None,
    }
}

/// A generic failure of `op` as [`BackendError::Remote`].
pub(super) fn remote<E>(op: &str, e: &SdkError<E, HttpResponse>, endpoint: &str, field: &str) -> BackendError
where
    E: StdError + ProvideErrorMetadata + 'static,
{
    if let Some(m) = transport(e, endpoint, field) {
        return BackendError::Remote(format!("{op}: {m}"));
    }
    let status = status(e).map_or_else(|| "no status".to_owned(), |s| format!("HTTP {s}"));
    let code = code(e).unwrap_or("no error code");
    let msg = e.message().map(|m| format!(": {m}")).unwrap_or_default();
    BackendError::Remote(format!("{op} at {endpoint} failed ({status}, {code}){msg}"))
}
