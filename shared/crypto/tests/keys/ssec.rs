use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use strata_crypto::{CryptoError, Dek, SseCError, customer_key, customer_key_id, unwrap_customer, wrap_customer};

fn headers(key: &[u8]) -> (String, String) {
    (STANDARD.encode(key), STANDARD.encode(Md5::digest(key)))
}

#[test]
fn parses_good_headers() {
    assert!(customer_key(None, None, None).unwrap().is_none());
    let (k, m) = headers(&[3u8; 32]);
    let key = customer_key(Some("AES256"), Some(&k), Some(&m)).unwrap().unwrap();
    assert_eq!(key.key_md5(), m);
    assert_eq!(customer_key_id(&key), format!("sse-c:{m}"));
    let dbg = format!("{key:?}");
    assert!(dbg.contains("redacted") && !dbg.contains(&k), "{dbg}");
}

#[test]
fn rejects_each_bad_case() {
    let (k, m) = headers(&[3u8; 32]);
    let ck = |a: Option<&str>, k: Option<&str>, m: Option<&str>| customer_key(a, k, m).map(|_| ()).unwrap_err();
    assert_eq!(ck(Some("AES256"), None, None), SseCError::MissingKey);
    assert_eq!(ck(Some("AES256"), Some(&k), None), SseCError::MissingKey);
    assert_eq!(ck(Some("AES256"), None, Some(&m)), SseCError::MissingKey);
    assert_eq!(ck(None, Some(&k), Some(&m)), SseCError::MissingKey);
    assert_eq!(ck(Some("aws:kms"), Some(&k), Some(&m)), SseCError::BadAlgorithm);
    assert_eq!(ck(Some("aes256"), Some(&k), Some(&m)), SseCError::BadAlgorithm);
    assert_eq!(ck(Some("AES256"), Some("%%%"), Some(&m)), SseCError::BadKey);
    let (k16, m16) = headers(&[3u8; 16]);
    assert_eq!(ck(Some("AES256"), Some(&k16), Some(&m16)), SseCError::BadKey);
    let (_, other_md5) = headers(&[4u8; 32]);
    assert_eq!(ck(Some("AES256"), Some(&k), Some(&other_md5)), SseCError::Md5Mismatch);
    assert_eq!(ck(Some("AES256"), Some(&k), Some("???")), SseCError::Md5Mismatch);
    assert_eq!(
        SseCError::Md5Mismatch.to_string(),
        "The calculated MD5 hash of the key did not match the hash that was provided."
    );
    let e: CryptoError = SseCError::BadKey.into();
    assert!(matches!(e, CryptoError::SseC(SseCError::BadKey)));
}

#[test]
fn customer_wrap_round_trip_and_wrong_key() {
    let parse = |b: u8| {
        let (k, m) = headers(&[b; 32]);
        customer_key(Some("AES256"), Some(&k), Some(&m)).unwrap().unwrap()
    };
    let (a, b) = (parse(1), parse(2));
    let dek = Dek::generate();
    let wrapped = wrap_customer(&a, &dek);
    assert_eq!(wrapped.len(), strata_crypto::WRAPPED_LEN);
    assert_eq!(unwrap_customer(&a, &wrapped).unwrap().as_bytes(), dek.as_bytes());
    assert!(matches!(unwrap_customer(&b, &wrapped), Err(CryptoError::Wrap(_))));
    assert!(matches!(unwrap_customer(&a, &wrapped[1..]), Err(CryptoError::Wrap(_))));
    // A master key with the same bytes cannot unwrap it (different associated data), nor vice versa.
    let mk = strata_crypto::MasterKey::new("k", [1; 32]);
    assert!(strata_crypto::unwrap(&mk, &wrapped).is_err());
    assert!(unwrap_customer(&a, &strata_crypto::wrap(&mk, &dek)).is_err());
}
