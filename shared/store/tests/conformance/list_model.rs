//! Listing checked against a naive model, page by page.

use strata_core::{ListPage, ListQuery};
use strata_store::MetaStore;

use crate::support::put;

/// One entry of a listing, in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    Key(String),
    Prefix(String),
}

impl Item {
    pub fn name(&self) -> &str {
        match self {
            Item::Key(k) | Item::Prefix(k) => k,
        }
    }
}

pub fn query(prefix: &str, delimiter: &str, after: &str, max_keys: u32) -> ListQuery {
    ListQuery {
        bucket: "b".into(),
        prefix: prefix.into(),
        delimiter: delimiter.into(),
        after: after.into(),
        max_keys,
    }
}

pub fn items(page: &ListPage) -> Vec<Item> {
    let mut v: Vec<Item> = page.objects.iter().map(|o| Item::Key(o.key.clone())).collect();
    v.extend(page.common_prefixes.iter().cloned().map(Item::Prefix));
    v.sort_by(|a, b| a.name().cmp(b.name()));
    v
}

/// What a listing must return, computed naively over all keys.
fn model(keys: &[&str], prefix: &str, delimiter: &str, after: &str) -> Vec<Item> {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort(); // str order is UTF-8 byte order
    let mut out: Vec<Item> = Vec::new();
    for key in sorted {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let cp = (!delimiter.is_empty())
            .then(|| rest.find(delimiter))
            .flatten()
            .map(|at| &key[..prefix.len() + at + delimiter.len()]);
        let item = match cp {
            Some(cp) => Item::Prefix(cp.to_string()),
            None => Item::Key(key.to_string()),
        };
        if item.name() > after && out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

pub async fn page_all(s: &dyn MetaStore, prefix: &str, delimiter: &str, after: &str, max: u32) -> Vec<Item> {
    let mut all = Vec::new();
    let mut after = after.to_string();
    for _ in 0..10_000 {
        let page = s.list_objects(&query(prefix, delimiter, &after, max)).await.unwrap();
        let got = items(&page);
        assert!(got.len() <= max as usize, "page larger than max_keys");
        if page.is_truncated {
            assert_eq!(got.len(), max as usize, "truncated page not full");
        }
        if let Some(last) = got.last() {
            assert_eq!(page.next_after, last.name());
        }
        all.extend(got);
        if !page.is_truncated {
            return all;
        }
        after = page.next_after;
    }
    panic!("listing did not terminate");
}

const KEYS: &[&str] = &[
    "a/b/c",
    "a/b",
    "a//x",
    "../x",
    " space",
    "ü",
    "%41",
    "a",
    "a/",
    "a/b/",
    "a/b/c/d",
    "b",
    "b/c/d",
    "ab",
    "a_b",
    "a%b",
    "A",
    "ü/x",
    "üb",
    "\u{10FFFF}",
    "\u{10FFFF}/x",
    "z\u{7f}",
    "日本/語",
    "a-b",
    "a--b--c",
    "a--",
    "x/y/",
    "x//",
    "x///z",
];

pub async fn paging_matches_one_page_and_model(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for (i, key) in KEYS.iter().enumerate() {
        put(s, "b", key, &format!("t{i}"), i as u64).await;
    }
    let prefixes = [
        "",
        "a",
        "a/",
        "a/b",
        "a/b/",
        "a//",
        "ü",
        "%",
        "\u{10FFFF}",
        "x/",
        "nothing",
    ];
    let delimiters = ["", "/", "//", "--", "b"];
    let afters = ["", "a/", "a/b", "a//x", "ü", "\u{10FFFF}"];
    for prefix in prefixes {
        for delimiter in delimiters {
            for after in afters {
                let expected = model(KEYS, prefix, delimiter, after);
                let one = page_all(s, prefix, delimiter, after, 1000).await;
                assert_eq!(
                    one, expected,
                    "prefix {prefix:?} delimiter {delimiter:?} after {after:?}"
                );
                let maxes: &[u32] = if after.is_empty() { &[1, 2, 3, 7] } else { &[2] };
                for &max in maxes {
                    let paged = page_all(s, prefix, delimiter, after, max).await;
                    assert_eq!(
                        paged, expected,
                        "prefix {prefix:?} delimiter {delimiter:?} after {after:?} max {max}"
                    );
                }
            }
        }
    }
}
