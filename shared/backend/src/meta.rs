//! Encoding of blob metadata values for transports that only carry ASCII
//! (S3 user-metadata headers, the local sidecar's lines).

/// Percent-encodes everything outside printable ASCII, plus `%`, `=` and
/// line breaks.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'%' && b != b'=' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode`]; malformed escapes are kept as they are.
pub fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_text() {
        for v in ["plain", "a=b%c", "line\nbreak", "ünïcødé 日本", " spaced ", ""] {
            let e = encode(v);
            assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)), "{e}");
            assert!(!e.contains('='));
            assert_eq!(decode(&e), v);
        }
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
