//! ListObjectsV2: prefix, delimiter and paging with continuation tokens.

use aws_sdk_s3::Client;
use strata_tests::Strata;

use super::{put, with_bucket};

both_modes!(list_v2_prefix_paging, list_v2_prefix_delimiter_paging);

/// One ListObjectsV2 walk: every page's entries (keys and common prefixes, merged in
/// name order) in page order, after checking each page's size and truncation flags.
async fn walk(c: &Client, bucket: &str, prefix: &str, delimiter: Option<&str>, max_keys: i32) -> Vec<String> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for page_no in 0.. {
        assert!(page_no < 100, "ListObjectsV2 does not end");
        let out = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .max_keys(max_keys)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list_objects_v2 page {page_no}: {e:?}"));
        let mut page: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        page.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        page.sort();
        assert!(
            page.len() <= max_keys as usize,
            "page {page_no} has {} entries",
            page.len()
        );
        assert_eq!(out.key_count(), Some(page.len() as i32), "KeyCount of page {page_no}");
        assert_eq!(out.continuation_token(), token.as_deref(), "echoed ContinuationToken");
        assert_eq!(out.prefix().unwrap_or_default(), prefix, "echoed Prefix");
        all.extend(page);
        if out.is_truncated() == Some(true) {
            let next = out
                .next_continuation_token()
                .expect("NextContinuationToken when truncated");
            token = Some(next.to_owned());
        } else {
            assert_eq!(
                out.next_continuation_token(),
                None,
                "no NextContinuationToken on the last page"
            );
            break;
        }
    }
    all
}

async fn list_v2_prefix_paging(s: &Strata) {
    let c = with_bucket(s, "listing").await;
    let mut expected: Vec<String> = (0..25).map(|i| format!("logs/k{i:02}")).collect();
    // Neighbours that the prefix must exclude.
    for key in expected
        .iter()
        .map(String::as_str)
        .chain(["logs0", "log", "other/x", "a"])
    {
        put(&c, "listing", key, key.as_bytes().to_vec()).await;
    }
    expected.sort();

    let got = walk(&c, "listing", "logs/", None, 7).await;
    assert_eq!(got, expected, "every key exactly once, in order");

    // One page holds everything when max_keys is large enough.
    let got = walk(&c, "listing", "logs/", None, 1000).await;
    assert_eq!(got, expected);

    // No prefix: all 29 keys.
    let all = walk(&c, "listing", "", None, 7).await;
    assert_eq!(all.len(), 29, "{all:?}");
}

async fn list_v2_prefix_delimiter_paging(s: &Strata) {
    let c = with_bucket(s, "delim").await;
    // 25 entries under p/ that interleave in name order: files p/k00, p/k02, ... and
    // "directories" p/k01/, p/k03/, ... (some holding several keys, one nested deeper).
    let mut expected = Vec::new();
    for i in 0..25 {
        if i % 2 == 0 {
            let key = format!("p/k{i:02}");
            put(&c, "delim", &key, b"f".to_vec()).await;
            expected.push(key);
        } else {
            let dir = format!("p/k{i:02}/");
            put(&c, "delim", &format!("{dir}x"), b"x".to_vec()).await;
            if i % 3 == 0 {
                put(&c, "delim", &format!("{dir}y"), b"y".to_vec()).await;
                put(&c, "delim", &format!("{dir}z/deep"), b"z".to_vec()).await;
            }
            expected.push(dir);
        }
    }
    put(&c, "delim", "q/outside", b"o".to_vec()).await;
    put(&c, "delim", "p", b"not under p/".to_vec()).await;
    expected.sort();

    let got = walk(&c, "delim", "p/", Some("/"), 7).await;
    assert_eq!(got, expected, "keys and common prefixes, each exactly once, in order");

    // At the root: the delimiter rolls everything up into p/ and q/, plus the key `p`.
    let root = walk(&c, "delim", "", Some("/"), 1).await;
    assert_eq!(root, ["p", "p/", "q/"]);
}
