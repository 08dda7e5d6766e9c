use std::fmt;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    #[error("object key is empty or longer than 1024 bytes")]
    KeyTooLong,
    #[error("invalid id: {0}")]
    InvalidId(String),
}

/// A bucket name that follows the S3 naming rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

impl BucketName {
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if is_valid_bucket_name(&name) {
            Ok(BucketName(name))
        } else {
            Err(NameError::InvalidBucketName(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid_bucket_name(n: &str) -> bool {
    let b = n.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| ok_char(c)) || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    if n.contains("..") || n.contains(".-") || n.contains("-.") {
        return false;
    }
    // Not formatted like an IPv4 address.
    n.parse::<std::net::Ipv4Addr>().is_err()
}

/// An object key: 1 to 1024 bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub const MAX_LEN: usize = 1024;

    pub fn new(key: impl Into<String>) -> Result<Self, NameError> {
        let key = key.into();
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(NameError::KeyTooLong);
        }
        Ok(ObjectKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The opaque id under which an object's bytes are stored on a backend.
/// It is never derived from the user's key, so no key can escape a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId(String);

impl ObjectId {
    pub fn random() -> Self {
        ObjectId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Parses an id made by [`ObjectId::random`]: 32 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.len() == 32 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
            Ok(ObjectId(s.to_owned()))
        } else {
            Err(NameError::InvalidId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The configured id of a storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId(pub String);

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_as_str!(BucketName, ObjectKey, ObjectId, BackendId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.1", "a1b", &"a".repeat(63)] {
            assert!(BucketName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(BucketName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_ids() {
        assert!(ObjectKey::new("").is_err());
        assert!(ObjectKey::new("k".repeat(1024)).is_ok());
        assert!(ObjectKey::new("k".repeat(1025)).is_err());
        let id = ObjectId::random();
        assert_eq!(ObjectId::parse(id.as_str()).unwrap(), id);
        assert!(ObjectId::parse("../../etc/passwd").is_err());
    }
}
