//! SigV4 identity and bucket scoping, plugged in through s3s's typed seams:
//! [`S3Auth`] resolves secrets, [`S3Access`] decides what a key may reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hmac_sha256::hmac_secret;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};
use strata_core::{ControlPlane, Credential, Scope};

use crate::errors;

const CACHE_TTL: Duration = Duration::from_secs(5);

/// Credentials fetched from the control plane, cached briefly so that SigV4
/// needs no round trip on most requests, and revocation takes effect in seconds.
pub struct Keyring {
    cp: Arc<dyn ControlPlane>,
    cache: Mutex<HashMap<String, (Instant, Option<Credential>)>>,
    /// Keys unknown to us get a secret derived from this, so their requests fail
    /// exactly like a wrong signature and never reveal whether a key exists.
    decoy: [u8; 32],
}

impl Keyring {
    pub fn new(cp: Arc<dyn ControlPlane>) -> Keyring {
        Keyring {
            cp,
            cache: Mutex::new(HashMap::new()),
            decoy: rand::random(),
        }
    }

    pub async fn lookup(&self, access_key: &str) -> S3Result<Option<Credential>> {
        if let Some((at, c)) = self.cache.lock().expect("keyring").get(access_key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(c.clone());
        }
        let found = self.cp.get_credential(access_key).await.map_err(errors::from_cp)?;
        let mut cache = self.cache.lock().expect("keyring");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(access_key.to_owned(), (Instant::now(), found.clone()));
        Ok(found)
    }
}

pub struct Auth(pub Arc<Keyring>);

#[async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.lookup(access_key).await? {
            Some(c) => Ok(SecretKey::from(c.secret_access_key)),
            None => Ok(SecretKey::from(hmac_secret(&self.0.decoy, access_key))),
        }
    }
}

/// The scope a request was authorized under, for handlers that filter output.
#[derive(Clone)]
pub struct Caller(pub Scope);

pub struct Access {
    pub keyring: Arc<Keyring>,
}

#[async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed."));
        };
        check_presign_lifetime(cx)?;
        let Some(cred) = self.keyring.lookup(&creds.access_key).await? else {
            return Err(s3_error!(AccessDenied));
        };
        let scope = cred.scope;
        if let Some(bucket) = bucket_of(cx.s3_path())
            && !scope.allows(bucket)
        {
            return Err(s3_error!(AccessDenied));
        }
        if cx.s3_op().name() == "CreateBucket" && scope != Scope::Unrestricted {
            return Err(s3_error!(AccessDenied, "This key may not create buckets."));
        }
        if let Some(src) = cx.headers().get("x-amz-copy-source") {
            let src = src
                .to_str()
                .map_err(|_| s3_error!(InvalidArgument, "Invalid copy source."))?;
            let decoded = urlencoding::decode(src).map_err(|_| s3_error!(InvalidArgument, "Invalid copy source."))?;
            let src_bucket = decoded.trim_start_matches('/').split('/').next().unwrap_or_default();
            if !scope.allows(src_bucket) {
                return Err(s3_error!(AccessDenied));
            }
        }
        cx.extensions_mut().insert(Caller(scope));
        Ok(())
    }
}

/// S3 caps a presigned URL's lifetime at seven days.
fn check_presign_lifetime(cx: &S3AccessContext<'_>) -> S3Result<()> {
    const WEEK: u64 = 7 * 24 * 3600;
    let expires = cx
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("X-Amz-Expires=")));
    match expires.map(str::parse::<u64>) {
        Some(Ok(secs)) if secs > WEEK => Err(s3_error!(
            AuthorizationQueryParametersError,
            "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
        )),
        _ => Ok(()),
    }
}

fn bucket_of(path: &S3Path) -> Option<&str> {
    match path {
        S3Path::Root => None,
        S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket),
    }
}

/// Requests must be signed for our region and for the `s3` service. Checked
/// before s3s sees the request, which would answer a foreign service with 501.
pub fn check_signing_scope(headers: &http::HeaderMap, uri: &http::Uri, region: &str) -> S3Result<()> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(|v| v.split([',', ' ']).next().unwrap_or_default().to_owned());
    let from_query = || {
        uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("X-Amz-Credential="))
                .and_then(|v| urlencoding::decode(v).ok().map(|s| s.into_owned()))
        })
    };
    let Some(scope) = from_header.or_else(from_query) else {
        return Ok(()); // SigV2 or anonymous: s3s decides.
    };
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 5 {
        return Err(s3_error!(
            AuthorizationHeaderMalformed,
            "The credential scope is malformed."
        ));
    }
    if parts[2] != region {
        return Err(s3_error!(
            AuthorizationHeaderMalformed,
            "The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
            parts[2],
            region
        ));
    }
    if parts[3] != "s3" {
        return Err(s3_error!(
            AuthorizationHeaderMalformed,
            "The authorization header is malformed; the service '{}' is wrong; expecting 's3'",
            parts[3]
        ));
    }
    Ok(())
}

mod hmac_sha256 {
    use sha2::{Digest, Sha256};

    /// A per-process pseudo-secret for an unknown key (not a real credential).
    pub fn hmac_secret(key: &[u8; 32], access_key: &str) -> String {
        let mut h = Sha256::new();
        h.update(key);
        h.update(access_key.as_bytes());
        hex::encode(h.finalize())
    }
}
