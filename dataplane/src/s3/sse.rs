//! Server-side encryption as the client sees it: the SSE-C headers of a
//! request, the rules for an upload's parts, and opening an SSE-C object for
//! a read. Blobs sealed by policy (`encryption:` config) get their data key
//! from the control plane with the plan; SSE-C blobs are sealed under a data
//! key wrapped with the customer's key, which is never stored (the write
//! path's `plan.rs`). Reads of an SSE-C object need the same key again.

use std::sync::Arc;

use s3s::{S3Result, s3_error};
use strata_core::{ObjectRecord, SSE_C_KEY_PREFIX};
use strata_crypto::CustomerKey;

use crate::write::Sealing;

/// `(algorithm, key, key MD5)` of a request's SSE-C headers, as
/// [`customer_key`] and [`sealing`] take them; `copy_source` reads the
/// `x-amz-copy-source-server-side-encryption-customer-*` ones.
macro_rules! sse_c_headers {
    ($i:expr) => {
        (
            $i.sse_customer_algorithm.as_deref(),
            $i.sse_customer_key.as_deref(),
            $i.sse_customer_key_md5.as_deref(),
        )
    };
    (copy_source $i:expr) => {
        (
            $i.copy_source_sse_customer_algorithm.as_deref(),
            $i.copy_source_sse_customer_key.as_deref(),
            $i.copy_source_sse_customer_key_md5.as_deref(),
        )
    };
}
pub(super) use sse_c_headers;

/// Parses the three SSE-C headers of a request into its customer key.
pub fn customer_key(
    (algorithm, key, md5): (Option<&str>, Option<&str>, Option<&str>),
) -> S3Result<Option<Arc<CustomerKey>>> {
    strata_crypto::customer_key(algorithm, key, md5)
        .map(|k| k.map(Arc::new))
        .map_err(crate::errors::from_sse_c)
}

/// The sealing a write request asks for.
pub fn sealing(headers: (Option<&str>, Option<&str>, Option<&str>)) -> S3Result<Sealing> {
    Ok(customer_key(headers)?.map_or(Sealing::Policy, Sealing::Customer))
}

/// Where a multipart upload started with SSE-C keeps its key's MD5: an entry
/// of the upload's checksum map that no client-visible checksum can have.
pub const UPLOAD_KEY_MD5: &str = "sse-c-key-md5";

/// Records on an upload's metadata that its parts must be sealed under the
/// customer key of `sealing`.
pub fn mark_upload(meta: &mut strata_core::ObjectMeta, sealing: &Sealing) {
    if let Sealing::Customer(k) = sealing {
        meta.checksums.insert(UPLOAD_KEY_MD5.into(), k.key_md5().to_owned());
    }
}

/// A part must carry the customer key its upload was started with (and no
/// key when the upload has none), as S3 requires.
pub fn check_part(upload: &strata_core::UploadInfo, sealing: &Sealing) -> S3Result<()> {
    let expected = upload.meta.checksums.get(UPLOAD_KEY_MD5);
    match (expected, sealing) {
        (None, Sealing::Policy) => Ok(()),
        (Some(md5), Sealing::Customer(k)) if md5 == k.key_md5() => Ok(()),
        // Like a GET under another key: the key is not the one the upload was started with.
        (Some(_), Sealing::Customer(_)) => Err(s3_error!(
            AccessDenied,
            "The provided encryption parameters did not match the ones used originally."
        )),
        (Some(_), Sealing::Policy) => Err(s3_error!(
            InvalidRequest,
            "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters."
        )),
        (None, Sealing::Customer(_)) => Err(s3_error!(
            InvalidRequest,
            "The multipart upload initiate did not request encryption; the encryption parameters are not applicable to its parts."
        )),
    }
}

/// The customer key MD5 an SSE-C object was sealed under, if it is one.
pub fn customer_md5(rec: &ObjectRecord) -> Option<&str> {
    rec.segments
        .iter()
        .find_map(|s| s.cipher.as_ref())
        .and_then(|c| c.key_id.strip_prefix(SSE_C_KEY_PREFIX))
}

/// Fills in the data keys of an SSE-C object from the request's key, or
/// returns the error S3 gives: the key is required for an SSE-C object,
/// refused for any other, and must be the one the object was written with.
pub fn open_customer(rec: &mut ObjectRecord, key: Option<&CustomerKey>) -> S3Result<()> {
    let sealed_by_customer = customer_md5(rec).is_some();
    let key = match (sealed_by_customer, key) {
        (false, None) => return Ok(()),
        (false, Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "The encryption parameters are not applicable to this object."
            ));
        }
        (true, None) => {
            return Err(s3_error!(
                InvalidRequest,
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."
            ));
        }
        (true, Some(k)) => k,
    };
    let segments = rec.segments.iter_mut().chain(rec.copies.iter_mut().flatten());
    for seg in segments {
        let Some(c) = seg.cipher.as_mut().filter(|c| c.is_customer()) else {
            continue;
        };
        if c.key_id != strata_crypto::customer_key_id(key) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        let dek = strata_crypto::unwrap_customer(key, &c.wrapped_dek)
            .map_err(|_| s3_error!(AccessDenied, "Access Denied"))?;
        c.dek = dek.as_bytes().to_vec();
    }
    Ok(())
}
