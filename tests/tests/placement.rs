//! Placement over several local-disk backends with quotas, against a real
//! `strata` process: `pack` fills backends in configuration order and refuses
//! with 507 InsufficientStorage once all are full; `spread` balances them.
//!
//! Needs the binary: `cargo build -p strata` (or `STRATA_BIN=/path/to/strata`).

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use strata_tests::Strata;

const OBJECT: usize = 100_000;
const QUOTA: u64 = 300_000;

/// Three local backends `disk-1..3` under the deployment's directory, each with a 300 000-byte quota.
fn start(strategy: &str) -> Strata {
    Strata::start_all_with(|dir| {
        let mut y = String::from("backends:\n");
        for i in 1..=3 {
            y.push_str(&format!(
                "  - {{type: local, id: disk-{i}, path: \"{}\", limits: {{quota_bytes: {QUOTA}}}}}\n",
                backend_dir(dir, i).display()
            ));
        }
        y.push_str(&format!("placement:\n  routing_strategy: {strategy}\n"));
        y
    })
}

fn backend_dir(root: &Path, i: usize) -> PathBuf {
    root.join(format!("disk-{i}"))
}

/// Blobs stored under backend `i`'s `objects/` directory (not their `.meta`
/// sidecars of catalog facts).
fn files_on(s: &Strata, i: usize) -> usize {
    fn count(dir: &Path) -> usize {
        let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
        rd.map(|e| e.expect("dir entry"))
            .map(|e| {
                let ty = e.file_type().expect("file type");
                if ty.is_dir() {
                    count(&e.path())
                } else {
                    usize::from(ty.is_file() && e.path().extension().is_none_or(|x| x != "meta"))
                }
            })
            .sum()
    }
    count(&backend_dir(s.dir(), i).join("objects"))
}

fn counts(s: &Strata) -> [usize; 3] {
    [files_on(s, 1), files_on(s, 2), files_on(s, 3)]
}

fn client(s: &Strata) -> Client {
    s.client()
}

fn body(seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..OBJECT)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn put(c: &Client, key: &str, data: Vec<u8>) -> Result<(), (u16, String)> {
    match c
        .put_object()
        .bucket("placed")
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let status = e
                .raw_response()
                .map(|r| r.status().as_u16())
                .unwrap_or_else(|| panic!("no HTTP response: {e:?}"));
            Err((status, e.code().unwrap_or_default().to_owned()))
        }
    }
}

async fn get(c: &Client, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket("placed")
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get_object {key}: {e:?}"));
    out.body.collect().await.expect("read the body").to_vec()
}

#[tokio::test]
async fn pack_fills_backends_in_order_then_refuses_with_507() {
    let s = start("pack");
    let c = client(&s);
    c.create_bucket().bucket("placed").send().await.expect("create_bucket");
    let expected = [
        [1, 0, 0],
        [2, 0, 0],
        [3, 0, 0],
        [3, 1, 0],
        [3, 2, 0],
        [3, 3, 0],
        [3, 3, 1],
        [3, 3, 2],
        [3, 3, 3],
    ];
    for (i, want) in expected.iter().enumerate() {
        put(&c, &format!("obj-{i}"), body(i as u8))
            .await
            .unwrap_or_else(|e| panic!("put {i}: {e:?}\n{}", s.logs(20)));
        assert_eq!(counts(&s), *want, "after put {i}");
    }
    // Every backend is full: the 10th object is refused before its body is stored.
    let refused = put(&c, "obj-9", body(9)).await;
    assert_eq!(refused, Err((507, "InsufficientStorage".to_owned())));
    assert_eq!(counts(&s), [3, 3, 3]);
    for i in 0..9 {
        assert!(
            get(&c, &format!("obj-{i}")).await == body(i as u8),
            "obj-{i} reads back"
        );
    }
}

#[tokio::test]
async fn spread_balances_backends() {
    let s = start("spread");
    let c = client(&s);
    c.create_bucket().bucket("placed").send().await.expect("create_bucket");
    for i in 0..6 {
        put(&c, &format!("obj-{i}"), body(i as u8))
            .await
            .unwrap_or_else(|e| panic!("put {i}: {e:?}"));
    }
    assert_eq!(counts(&s), [2, 2, 2]);
    for i in 0..6 {
        assert!(
            get(&c, &format!("obj-{i}")).await == body(i as u8),
            "obj-{i} reads back"
        );
    }
}
