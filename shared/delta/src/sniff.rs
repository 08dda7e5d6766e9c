//! Content sniffing: what the first bytes of a body say about it.

/// What the first bytes of a body say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// A zip archive (wheel, jar, apk, docx, ...): members are compressed individually, so
    /// unchanged members match the reference byte for byte and delta encoding pays.
    Zip,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    Jpeg,
    Png,
    Gif,
    Webp,
    Mp4,
    Other,
}

impl Sniff {
    /// Compressed as one whole stream (delta and zstd gain nothing): gzip, zstd, xz, bzip2, jpeg,
    /// png, gif, webp, mp4.
    pub fn whole_stream_compressed(self) -> bool {
        !matches!(self, Sniff::Zip | Sniff::Other)
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Sniff::Zip => "zip",
            Sniff::Gzip => "gzip",
            Sniff::Zstd => "zstd",
            Sniff::Xz => "xz",
            Sniff::Bzip2 => "bzip2",
            Sniff::Jpeg => "jpeg",
            Sniff::Png => "png",
            Sniff::Gif => "gif",
            Sniff::Webp => "webp",
            Sniff::Mp4 => "mp4",
            Sniff::Other => "other",
        }
    }
}

/// What the first bytes of a body say about it (12 bytes are enough for every kind).
pub fn sniff(prefix: &[u8]) -> Sniff {
    let p = prefix;
    if p.starts_with(b"PK\x03\x04") || p.starts_with(b"PK\x05\x06") || p.starts_with(b"PK\x07\x08") {
        Sniff::Zip
    } else if p.starts_with(&[0x1f, 0x8b]) {
        Sniff::Gzip
    } else if p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Sniff::Zstd
    } else if p.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Sniff::Xz
    } else if p.len() >= 4 && p.starts_with(b"BZh") && (b'1'..=b'9').contains(&p[3]) {
        Sniff::Bzip2
    } else if p.starts_with(&[0xff, 0xd8, 0xff]) {
        Sniff::Jpeg
    } else if p.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Sniff::Png
    } else if p.starts_with(b"GIF87a") || p.starts_with(b"GIF89a") {
        Sniff::Gif
    } else if p.len() >= 12 && &p[0..4] == b"RIFF" && &p[8..12] == b"WEBP" {
        Sniff::Webp
    } else if p.len() >= 8 && &p[4..8] == b"ftyp" {
        Sniff::Mp4
    } else {
        Sniff::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_cases() {
        assert_eq!(sniff(b"PK\x03\x04\x14\x00\x00\x00"), Sniff::Zip);
        assert_eq!(sniff(b"PK\x05\x06"), Sniff::Zip);
        assert!(!Sniff::Zip.whole_stream_compressed());
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Sniff::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]), Sniff::Zstd);
        assert_eq!(sniff(b"\xfd7zXZ\x00\x00"), Sniff::Xz);
        assert_eq!(sniff(b"BZh91AY&SY"), Sniff::Bzip2);
        assert_eq!(sniff(b"BZhx"), Sniff::Other);
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Sniff::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Sniff::Png);
        assert_eq!(sniff(b"GIF89a"), Sniff::Gif);
        assert_eq!(sniff(b"GIF87a"), Sniff::Gif);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Sniff::Webp);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), Sniff::Other);
        assert_eq!(sniff(b"\0\0\0\x20ftypisom"), Sniff::Mp4);
        assert_eq!(sniff(b""), Sniff::Other);
        assert_eq!(sniff(b"P"), Sniff::Other);
        assert_eq!(sniff(b"hello world"), Sniff::Other);
        assert_eq!(sniff(b"ustar\0"), Sniff::Other);
        for s in [
            Sniff::Gzip,
            Sniff::Zstd,
            Sniff::Xz,
            Sniff::Bzip2,
            Sniff::Jpeg,
            Sniff::Png,
            Sniff::Gif,
            Sniff::Webp,
            Sniff::Mp4,
        ] {
            assert!(s.whole_stream_compressed(), "{}", s.name());
        }
        assert!(!Sniff::Other.whole_stream_compressed());
        assert_eq!(Sniff::Webp.name(), "webp");
    }
}
