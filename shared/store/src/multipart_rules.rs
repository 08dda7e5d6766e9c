//! Multipart completion rules shared by every store: which parts a
//! CompleteMultipartUpload chooses, and the multipart ETag.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use strata_core::{CpError, CpResult, PartInfo};

/// Every part but the last must hold at least this many bytes.
pub(crate) const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

pub(crate) fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// Checks the client's part list against the stored parts and returns the
/// chosen parts in order.
pub(crate) fn choose_parts<'p>(
    requested: &[(u32, String)],
    stored: &'p BTreeMap<u32, PartInfo>,
) -> CpResult<Vec<&'p PartInfo>> {
    if requested.is_empty() {
        return Err(CpError::InvalidPart("the part list must name at least one part".into()));
    }
    if requested.windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err(CpError::InvalidPartOrder);
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for (number, etag) in requested {
        let part = stored
            .get(number)
            .ok_or_else(|| CpError::InvalidPart(format!("part {number} was not uploaded")))?;
        if !unquote(&part.etag).eq_ignore_ascii_case(unquote(etag)) {
            return Err(CpError::InvalidPart(format!(
                "part {number} has ETag {}, not {}",
                unquote(&part.etag),
                unquote(etag)
            )));
        }
        chosen.push(part);
    }
    let last = chosen.len() - 1;
    if chosen[..last].iter().any(|p| p.size < MIN_PART_SIZE) {
        return Err(CpError::EntityTooSmall);
    }
    Ok(chosen)
}

/// hex(md5(md5(part 1) ‖ … ‖ md5(part N))) + "-N".
pub(crate) fn multipart_etag(parts: &[&PartInfo]) -> CpResult<String> {
    let mut hasher = Md5::new();
    for part in parts {
        let digest = hex::decode(unquote(&part.etag))
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| CpError::Internal(format!("stored ETag of part {} is not an MD5", part.part_number)))?;
        hasher.update(&digest);
    }
    Ok(format!("{}-{}", hex::encode(hasher.finalize()), parts.len()))
}

#[cfg(test)]
mod tests {
    use strata_core::Segment;

    use super::*;

    fn part(n: u32, etag: &str, size: u64) -> PartInfo {
        PartInfo {
            part_number: n,
            etag: etag.into(),
            size,
            last_modified_unix_ms: 0,
            segment: Segment {
                backend_id: "b".into(),
                backend_key: format!("k{n}"),
                length: size,
                ..Default::default()
            },
            checksums: BTreeMap::new(),
        }
    }

    #[test]
    fn etag_of_known_parts() {
        // md5("") and md5("a"): the S3 multipart ETag is md5 of their binary concatenation.
        let a = part(1, "d41d8cd98f00b204e9800998ecf8427e", 0);
        let b = part(2, "\"0CC175B9C0F1B6A831C399E269772661\"", 1);
        let mut concat = hex::decode("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        concat.extend(hex::decode("0cc175b9c0f1b6a831c399e269772661").unwrap());
        let expected = format!("{}-2", hex::encode(Md5::digest(&concat)));
        assert_eq!(multipart_etag(&[&a, &b]).unwrap(), expected);
        assert!(multipart_etag(&[&part(1, "zz", 0)]).is_err());
    }

    #[test]
    fn etag_match_ignores_quotes_and_case() {
        let stored: BTreeMap<u32, PartInfo> = [(1, part(1, "ABCDEF0123456789abcdef0123456789", 1))].into();
        let ok = choose_parts(&[(1, "\"abcdef0123456789ABCDEF0123456789\"".into())], &stored);
        assert!(ok.is_ok());
    }
}
