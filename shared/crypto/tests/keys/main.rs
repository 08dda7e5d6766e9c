//! DEK wrapping, keyrings, key sources and SSE-C header parsing.

mod ssec;

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strata_crypto::{CryptoError, Dek, KeySource, Keyring, Kms, MasterKey, WRAPPED_LEN, load_key, unwrap, wrap};

fn mk(id: &str, byte: u8) -> MasterKey {
    MasterKey::new(id, [byte; 32])
}

#[test]
fn wrap_round_trip_and_failures() {
    let kek = mk("k1", 1);
    let dek = Dek::generate();
    let wrapped = wrap(&kek, &dek);
    assert_eq!(wrapped.len(), WRAPPED_LEN);
    assert_ne!(wrap(&kek, &dek), wrapped, "nonces are random");
    assert_eq!(unwrap(&kek, &wrapped).unwrap().as_bytes(), dek.as_bytes());

    assert!(matches!(unwrap(&mk("k1", 2), &wrapped), Err(CryptoError::Wrap(m)) if m.contains("'k1'")));
    // Same bytes under another id: the id is bound in.
    assert!(matches!(unwrap(&mk("k2", 1), &wrapped), Err(CryptoError::Wrap(_))));
    let mut t = wrapped.clone();
    t[20] ^= 1;
    assert!(matches!(unwrap(&kek, &t), Err(CryptoError::Wrap(_))));
    assert!(matches!(unwrap(&kek, &wrapped[..59]), Err(CryptoError::Wrap(m)) if m.contains("59 bytes")));
    assert!(matches!(unwrap(&kek, &[]), Err(CryptoError::Wrap(_))));
}

#[test]
fn dek_constructors_and_redaction() {
    let d = Dek::from_bytes([7; 32]);
    assert_eq!(Dek::from_slice(&[7; 32]).unwrap().as_bytes(), d.as_bytes());
    assert!(matches!(Dek::from_slice(&[7; 31]), Err(CryptoError::BadKey(_))));
    assert_eq!(format!("{d:?}"), "Dek(<redacted>)");
    assert_ne!(Dek::generate().as_bytes(), Dek::generate().as_bytes());
    let dbg = format!("{:?}", MasterKey::new("k9", [0xab; 32]));
    assert!(
        dbg.contains("k9") && dbg.contains("redacted") && !dbg.contains("171"),
        "{dbg}"
    );
}

#[tokio::test]
async fn keyring_wraps_with_primary_and_unwraps_with_any() {
    let old = Keyring::new(mk("old", 1), vec![]).unwrap();
    let dek = Dek::generate();
    let (id, wrapped_old) = old.wrap(&dek).await.unwrap();
    assert_eq!(id, "old");

    let ring = Keyring::new(mk("new", 2), vec![mk("old", 1), mk("a", 3)]).unwrap();
    assert_eq!(ring.primary_key_id(), "new");
    assert_eq!(ring.key_ids(), ["new", "a", "old"]);
    assert!(ring.has_key("old") && !ring.has_key("gone"));
    assert_eq!(
        ring.unwrap("old", &wrapped_old).await.unwrap().as_bytes(),
        dek.as_bytes()
    );
    let (id, wrapped) = ring.wrap(&dek).await.unwrap();
    assert_eq!(id, "new");
    assert_eq!(ring.unwrap("new", &wrapped).await.unwrap().as_bytes(), dek.as_bytes());
    assert!(matches!(ring.unwrap("old", &wrapped).await, Err(CryptoError::Wrap(_))));

    let err = ring.unwrap("gone", &wrapped).await.unwrap_err();
    assert!(matches!(&err, CryptoError::UnknownKey(id) if id == "gone"));
    let msg = err.to_string();
    assert!(
        msg.contains("'gone'") && msg.contains("encryption.previous_keys"),
        "{msg}"
    );

    let dup = Keyring::new(mk("x", 1), vec![mk("y", 2), mk("x", 3)]).unwrap_err();
    assert!(dup.to_string().contains("'x'"), "{dup}");
    for bad in ["", "sse-c", "sse-c:abc"] {
        assert!(
            matches!(Keyring::new(mk(bad, 1), vec![]), Err(CryptoError::BadKey(_))),
            "{bad:?}"
        );
        assert!(load_key(bad, &KeySource::Base64(STANDARD.encode([1u8; 32]))).is_err());
    }
    // Usable as a trait object.
    let kms: std::sync::Arc<dyn Kms> = std::sync::Arc::new(ring);
    assert!(kms.has_key("a"));
}

#[test]
fn load_key_from_base64() {
    let raw = [5u8; 32];
    let text = format!("  {}\n", STANDARD.encode(raw));
    let k = load_key("k1", &KeySource::Base64(text)).unwrap();
    assert_eq!(k.id(), "k1");
    let dek = Dek::generate();
    assert!(unwrap(&MasterKey::new("k1", raw), &wrap(&k, &dek)).is_ok());

    let err = load_key("k1", &KeySource::Base64(STANDARD.encode([5u8; 31])))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'k1'") && err.contains("31 bytes") && err.contains("exactly 32"),
        "{err}"
    );
    let err = load_key("k1", &KeySource::Base64("not base64!".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'k1'") && err.contains("not valid base64"), "{err}");
    assert!(load_key("k1", &KeySource::Base64(String::new())).is_err());
}

#[test]
fn load_key_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.key");
    std::fs::write(&good, [9u8; 32]).unwrap();
    let k = load_key("k1", &KeySource::File(good)).unwrap();
    let dek = Dek::generate();
    assert!(unwrap(&MasterKey::new("k1", [9; 32]), &wrap(&k, &dek)).is_ok());

    let short = dir.path().join("short.key");
    std::fs::write(&short, [9u8; 31]).unwrap();
    let err = load_key("k1", &KeySource::File(short.clone())).unwrap_err().to_string();
    let p = short.display();
    assert_eq!(
        err,
        format!(
            "encryption key 'k1': file {p} holds 31 bytes; it must hold exactly 32 raw bytes \
             (e.g. `head -c 32 /dev/urandom > {p}`)"
        )
    );

    let b64 = dir.path().join("b64.key");
    let mut f = std::fs::File::create(&b64).unwrap();
    writeln!(f, "{}", STANDARD.encode([1u8; 32])).unwrap();
    let err = load_key("k1", &KeySource::File(b64)).unwrap_err().to_string();
    assert!(err.contains("45 bytes") && err.contains("base64"), "{err}");

    let err = load_key("k2", &KeySource::File(dir.path().join("missing")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'k2'") && err.contains("cannot read"), "{err}");
}
