use strata_core::{CpError, ListPage};
use strata_store::MetaStore;

use crate::list_model::{Item, items, page_all, query};
use crate::support::{md5_hex, put};

pub async fn prefix_is_literal_and_case_sensitive(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for (i, key) in ["a%b", "a_b", "aXb", "AB", "ab", "a", "b"].iter().enumerate() {
        put(s, "b", key, &format!("t{i}"), 1).await;
    }
    let keys = |p: ListPage| p.objects.into_iter().map(|o| o.key).collect::<Vec<_>>();
    assert_eq!(keys(s.list_objects(&query("a%", "", "", 100)).await.unwrap()), ["a%b"]);
    assert_eq!(keys(s.list_objects(&query("a_", "", "", 100)).await.unwrap()), ["a_b"]);
    assert_eq!(keys(s.list_objects(&query("A", "", "", 100)).await.unwrap()), ["AB"]);
    assert_eq!(
        keys(s.list_objects(&query("a", "", "", 100)).await.unwrap()),
        ["a", "a%b", "aXb", "a_b", "ab"]
    );
    assert_eq!(
        keys(s.list_objects(&query("c", "", "", 100)).await.unwrap()),
        Vec::<String>::new()
    );
}

pub async fn delimiter_groups_common_prefixes(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    let keys = [
        "photos/2024/jan/a.jpg",
        "photos/2024/feb/b.jpg",
        "photos/2025/c.jpg",
        "photos/readme",
        "top.txt",
    ];
    for key in keys {
        put(s, "b", key, key, 42).await;
    }
    let page = s.list_objects(&query("", "/", "", 100)).await.unwrap();
    assert_eq!(page.common_prefixes, ["photos/"]);
    assert_eq!(page.objects.len(), 1);
    let top = &page.objects[0];
    assert_eq!((top.key.as_str(), top.size), ("top.txt", 42));
    assert_eq!(top.etag, md5_hex(b"top.txt"));
    assert_eq!(top.last_modified_unix_ms, 1_700_000_000_000);
    assert!(!page.is_truncated);
    assert_eq!(page.next_after, "top.txt");

    let page = s.list_objects(&query("photos/", "/", "", 100)).await.unwrap();
    assert_eq!(page.common_prefixes, ["photos/2024/", "photos/2025/"]);
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].key, "photos/readme");

    let page = s.list_objects(&query("photos/2024/", "/", "", 100)).await.unwrap();
    assert_eq!(page.common_prefixes, ["photos/2024/feb/", "photos/2024/jan/"]);
    assert!(page.objects.is_empty());

    // A multi-character delimiter.
    let page = s.list_objects(&query("photos", "/20", "", 100)).await.unwrap();
    assert_eq!(page.common_prefixes, ["photos/20"]);
    assert_eq!(page.objects.len(), 1);
}

pub async fn max_keys_zero_and_missing_bucket(s: &dyn MetaStore) {
    assert_eq!(s.list_objects(&query("", "", "", 10)).await, Err(CpError::NoSuchBucket));
    s.create_bucket("b", "admin", 1).await.unwrap();
    let page = s.list_objects(&query("", "", "", 10)).await.unwrap();
    assert_eq!(page, ListPage::default());
    put(s, "b", "k", "t", 1).await;
    let page = s.list_objects(&query("", "", "", 0)).await.unwrap();
    assert!(page.objects.is_empty() && page.common_prefixes.is_empty());
    assert!(!page.is_truncated);
}

pub async fn after_a_common_prefix_skips_its_keys(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for key in ["a/1", "a/2", "a/3", "a0", "b"] {
        put(s, "b", key, key, 1).await;
    }
    let page = s.list_objects(&query("", "/", "", 1)).await.unwrap();
    assert_eq!(page.common_prefixes, ["a/"]);
    assert!(page.is_truncated);
    assert_eq!(page.next_after, "a/");
    let page = s.list_objects(&query("", "/", "a/", 1)).await.unwrap();
    assert_eq!(page.objects[0].key, "a0");
    assert!(page.is_truncated);
    let page = s.list_objects(&query("", "/", "a0", 1)).await.unwrap();
    assert_eq!(page.objects[0].key, "b");
    assert!(!page.is_truncated);
    // A start-after inside a group: the group's prefix is not after it.
    let page = s.list_objects(&query("", "/", "a/2", 10)).await.unwrap();
    assert!(page.common_prefixes.is_empty());
    assert_eq!(
        page.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["a0", "b"]
    );
    // Without a delimiter the same start-after continues inside the group.
    let page = s.list_objects(&query("", "", "a/2", 10)).await.unwrap();
    assert_eq!(
        page.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["a/3", "a0", "b"]
    );
}

pub async fn large_common_prefix_spans_batches(s: &dyn MetaStore) {
    s.create_bucket("b", "admin", 1).await.unwrap();
    for key in ["a", "c/x", "d"] {
        put(s, "b", key, key, 1).await;
    }
    for i in 0..2500 {
        put(s, "b", &format!("big/{i:05}"), &format!("big{i}"), 1).await;
    }
    let page = s.list_objects(&query("", "/", "", 1000)).await.unwrap();
    assert_eq!(
        items(&page),
        [
            Item::Key("a".into()),
            Item::Prefix("big/".into()),
            Item::Prefix("c/".into()),
            Item::Key("d".into())
        ]
    );
    let paged = page_all(s, "", "/", "", 1).await;
    assert_eq!(paged, items(&page));
    let page = s.list_objects(&query("", "/", "big/", 1000)).await.unwrap();
    assert_eq!(items(&page), [Item::Prefix("c/".into()), Item::Key("d".into())]);

    let page = s.list_objects(&query("big/", "", "", 1000)).await.unwrap();
    assert_eq!(page.objects.len(), 1000);
    assert!(page.is_truncated);
    assert_eq!(page.next_after, "big/00999");
    let all = page_all(s, "big/", "", "", 1000).await;
    assert_eq!(all.len(), 2500);
    assert_eq!(all[2499], Item::Key("big/02499".into()));
    let all = page_all(s, "big/", "/", "", 999).await;
    assert_eq!(all.len(), 2500);
}
