//! Cluster authentication: the planes share a secret and present short-lived
//! HS256 JWTs to each other. Neither the secret nor a token is ever logged.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::{Request, Status};

/// The `iss` claim of every cluster token.
pub const ISSUER: &str = "strata";
/// How long an issued token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// A client re-issues its token once it is older than this.
pub const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(5 * 60);

/// The claims of a cluster token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who issued the token, e.g. `dataplane`.
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Issues and verifies cluster tokens with the shared secret. Cheap to clone.
#[derive(Clone)]
pub struct ClusterAuth {
    keys: Arc<Keys>,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for ClusterAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterAuth(<redacted>)")
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl ClusterAuth {
    /// Builds from the shared `cluster.secret`. The configuration layer is
    /// expected to have enforced its minimum length.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        ClusterAuth {
            keys: Arc::new(Keys {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                validation,
            }),
        }
    }

    /// A fresh token for `subject`, valid for [`TOKEN_TTL`].
    pub fn issue(&self, subject: &str) -> String {
        let iat = now_secs();
        self.sign(&Claims {
            sub: subject.to_string(),
            iat,
            exp: iat + TOKEN_TTL.as_secs(),
            iss: ISSUER.to_string(),
        })
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.keys.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks the signature, expiry (with 30 s leeway) and issuer.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &self.keys.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })
    }

    /// The server interceptor requiring `authorization: Bearer <jwt>`.
    pub fn interceptor(&self) -> AuthInterceptor {
        AuthInterceptor { auth: self.clone() }
    }
}

/// Server interceptor: refuses calls without a valid cluster token with
/// `Unauthenticated`, and puts the verified [`Claims`] in the request extensions.
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    auth: ClusterAuth,
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let token = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(token) = token else {
            tracing::warn!(peer = ?req.remote_addr(), "gRPC call without a cluster token");
            return Err(Status::unauthenticated("missing bearer token"));
        };
        match self.auth.verify(token) {
            Ok(claims) => {
                req.extensions_mut().insert(claims);
                Ok(req)
            }
            Err(e) => {
                tracing::warn!(peer = ?req.remote_addr(), reason = %e, "refused cluster token");
                Err(Status::unauthenticated(e.to_string()))
            }
        }
    }
}

/// Client side: a cached token, re-issued once older than [`TOKEN_RENEW_AFTER`].
#[derive(Clone)]
pub(crate) struct TokenSource {
    auth: ClusterAuth,
    subject: String,
    cached: Arc<Mutex<Option<(Instant, AsciiMetadataValue)>>>,
}

impl TokenSource {
    pub(crate) fn new(auth: ClusterAuth, subject: &str) -> Self {
        TokenSource {
            auth,
            subject: subject.to_string(),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The `authorization` header value to send now.
    pub(crate) fn bearer(&self) -> AsciiMetadataValue {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, value)) = cached.as_ref()
            && at.elapsed() < TOKEN_RENEW_AFTER
        {
            return value.clone();
        }
        let token = self.auth.issue(&self.subject);
        let mut value: AsciiMetadataValue =
            MetadataValue::try_from(format!("Bearer {token}")).expect("a JWT is base64url and dots");
        value.set_sensitive(true);
        *cached = Some((Instant::now(), value.clone()));
        value
    }

    /// Wraps a message with the current token.
    pub(crate) fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.metadata_mut().insert("authorization", self.bearer());
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn claims(exp: u64, iss: &str) -> Claims {
        Claims {
            sub: "dataplane".into(),
            iat: now_secs(),
            exp,
            iss: iss.into(),
        }
    }

    #[test]
    fn issued_token_verifies() {
        let auth = ClusterAuth::new(SECRET);
        let c = auth.verify(&auth.issue("dataplane")).unwrap();
        assert_eq!(c.sub, "dataplane");
        assert_eq!(c.iss, ISSUER);
        assert_eq!(c.exp - c.iat, TOKEN_TTL.as_secs());
    }

    #[test]
    fn expired_token_rejected() {
        let auth = ClusterAuth::new(SECRET);
        let token = auth.sign(&claims(now_secs() - 120, ISSUER));
        assert_eq!(auth.verify(&token), Err(AuthError::Expired));
    }

    #[test]
    fn wrong_secret_rejected() {
        let other = ClusterAuth::new("another secret, also 32 chars long!");
        let token = other.issue("dataplane");
        let err = ClusterAuth::new(SECRET).verify(&token).unwrap_err();
        assert!(matches!(err, AuthError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn wrong_issuer_rejected() {
        let auth = ClusterAuth::new(SECRET);
        let token = auth.sign(&claims(now_secs() + 600, "mallory"));
        assert!(matches!(auth.verify(&token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn garbage_and_unsigned_tokens_rejected() {
        let auth = ClusterAuth::new(SECRET);
        assert!(auth.verify("not.a.jwt").is_err());
        let t = auth.issue("dataplane");
        let (head_body, _sig) = t.rsplit_once('.').unwrap();
        assert!(auth.verify(&format!("{head_body}.")).is_err());
    }

    #[test]
    fn interceptor_requires_bearer() {
        use tonic::service::Interceptor;
        let auth = ClusterAuth::new(SECRET);
        let mut i = auth.interceptor();
        let err = i.call(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let ok = i.call(TokenSource::new(auth, "dp").request(())).unwrap();
        assert_eq!(ok.extensions().get::<Claims>().unwrap().sub, "dp");
    }

    #[test]
    fn token_is_cached_and_debug_redacted() {
        let src = TokenSource::new(ClusterAuth::new(SECRET), "dp");
        assert_eq!(src.bearer(), src.bearer());
        assert_eq!(format!("{:?}", src.auth), "ClusterAuth(<redacted>)");
        assert!(!format!("{:?}", src.bearer()).contains("ey"));
    }
}
