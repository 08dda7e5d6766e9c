//! Copy ordering and mid-stream failover of reads, on in-process fake backends.

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use futures::TryStreamExt;
use strata_backend::{BackendError, BlobHead, BlobMeta};
use strata_core::ObjectMeta;
use strata_core::config::{BackendConfig, BackendLimits, BreakerConfig};

use super::*;

/// Serves `data` for every key in 4-byte chunks; fails to open when `down`,
/// or mid-stream after `fail_after` bytes.
struct Fake {
    id: String,
    data: Bytes,
    down: bool,
    fail_after: Option<u64>,
    gets: AtomicU32,
}

fn fake(id: &str, data: &[u8], down: bool, fail_after: Option<u64>) -> Arc<Fake> {
    Arc::new(Fake {
        id: id.into(),
        data: Bytes::copy_from_slice(data),
        down,
        fail_after,
        gets: AtomicU32::new(0),
    })
}

#[async_trait]
impl Backend for Fake {
    fn id(&self) -> &str {
        &self.id
    }
    async fn put(&self, _: &str, _: &BlobMeta, _: ByteStream) -> Result<u64, BackendError> {
        Err(BackendError::Remote("read-only".into()))
    }
    async fn get(&self, _key: &str, offset: u64, len: u64) -> Result<ByteStream, BackendError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if self.down {
            return Err(BackendError::Io(std::io::Error::other("connection refused")));
        }
        let body = self.data.slice(offset as usize..(offset + len) as usize);
        let limit = self.fail_after.map(|n| n.saturating_sub(offset));
        let mut items: Vec<std::io::Result<Bytes>> = Vec::new();
        let mut sent = 0u64;
        for chunk in body.chunks(4) {
            if limit.is_some_and(|l| sent >= l) {
                items.push(Err(std::io::Error::other("reset by peer")));
                break;
            }
            sent += chunk.len() as u64;
            items.push(Ok(Bytes::copy_from_slice(chunk)));
        }
        Ok(Box::pin(futures::stream::iter(items)))
    }
    async fn head(&self, _: &str) -> Result<BlobHead, BackendError> {
        if self.down {
            return Err(BackendError::Io(std::io::Error::other("connection refused")));
        }
        Err(BackendError::NotFound)
    }
    async fn delete(&self, _: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

fn seg(backend: &str, key: &str, length: u64) -> Segment {
    Segment {
        backend_id: backend.into(),
        backend_key: key.into(),
        length,
        ..Default::default()
    }
}

fn rec(segments: Vec<Segment>, copies: Vec<Vec<Segment>>) -> ObjectRecord {
    ObjectRecord {
        bucket: "b".into(),
        key: "k".into(),
        object_id: "o".into(),
        meta: ObjectMeta {
            size: segments.iter().map(|s| s.length).sum(),
            ..Default::default()
        },
        segments,
        copies,
    }
}

fn guard(fakes: &[Arc<Fake>], egress_limits: &[(&str, u64)]) -> Arc<Guard> {
    let backends: Backends = fakes.iter().map(|f| f.clone() as Arc<dyn Backend>).collect();
    let configs: Vec<BackendConfig> = egress_limits
        .iter()
        .map(|(id, l)| BackendConfig::Local {
            encryption: None,
            id: (*id).into(),
            path: "/nonexistent".into(),
            limits: BackendLimits {
                egress_byte_limit: Some(*l),
                ..BackendLimits::default()
            },
        })
        .collect();
    let cfg = BreakerConfig {
        failure_threshold: 1,
        open_secs: 3600,
    };
    Arc::new(Guard::new(&backends, &configs, &cfg))
}

async fn read_all(rec: &ObjectRecord, g: &Arc<Guard>, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let list = sources(rec, &g.backends(), Some(g)).expect("sources");
    let chunks: Vec<Bytes> = stream_sources(list, start, end, Some(g.clone()), None)
        .try_collect()
        .await?;
    Ok(chunks.concat())
}

const DATA: &[u8] = b"0123456789abcdefghijklmnopqrstuv";

#[tokio::test]
async fn open_breakers_go_last_and_exhausted_egress_is_skipped() {
    let (a, b, c) = (
        fake("a", DATA, false, None),
        fake("b", DATA, false, None),
        fake("c", DATA, false, None),
    );
    let g = guard(&[a.clone(), b.clone(), c.clone()], &[("c", 0)]);
    // Trip b's breaker (threshold 1) with a failure; a 404 on a never trips.
    let _ = g.backends().get("a").unwrap().head("x").await;
    assert_eq!(g.state("a"), BreakerState::Closed, "a 404 is not a failure");
    let down = fake("b", DATA, true, None);
    let g2 = guard(&[a.clone(), down.clone(), c.clone()], &[("c", 0)]);
    let _ = g2.backends().get("b").unwrap().head("x").await;
    assert_eq!(g2.state("b"), BreakerState::Open);

    let r = rec(
        vec![seg("b", "kb", 32)],
        vec![vec![seg("c", "kc", 32)], vec![seg("a", "ka", 32)]],
    );
    let order: Vec<String> = sources(&r, &g2.backends(), Some(&g2))
        .unwrap()
        .iter()
        .map(Source::backend_ids)
        .collect();
    assert_eq!(order, ["a", "b"], "closed first, open last, egress-exhausted c skipped");

    let only_c = rec(vec![seg("c", "kc", 32)], vec![]);
    assert_eq!(
        sources(&only_c, &g2.backends(), Some(&g2)).err(),
        Some(NoSource::Egress(vec!["c".into()]))
    );
    assert_eq!(b.gets.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn mid_stream_failure_resumes_on_the_next_copy() {
    // The primary is split in two segments on `a`, which breaks after 13 bytes;
    // the copy on `b` is one segment. The reader resumes at byte 13 on `b`.
    let a = fake("a", DATA, false, Some(13));
    let b = fake("b", DATA, false, None);
    let g = guard(&[a.clone(), b.clone()], &[]);
    let r = rec(
        vec![seg("a", "k1", 20), seg("a", "k2", 12)],
        vec![vec![seg("b", "k", 32)]],
    );
    assert_eq!(read_all(&r, &g, 0, 32).await.unwrap(), DATA);
    assert_eq!(
        g.state("a"),
        BreakerState::Open,
        "the mid-stream error counts as a failure"
    );
    // A range read fails over too, and opening errors fail over.
    let down = fake("a", DATA, true, None);
    let g = guard(&[down, b.clone()], &[]);
    assert_eq!(read_all(&r, &g, 5, 27).await.unwrap(), &DATA[5..27]);
}

#[tokio::test]
async fn no_copy_left_fails_the_stream_instead_of_truncating() {
    let a = fake("a", DATA, false, Some(8));
    let b = fake("b", DATA, false, Some(16));
    let g = guard(&[a, b], &[]);
    let r = rec(vec![seg("a", "k", 32)], vec![vec![seg("b", "k", 32)]]);
    let list = sources(&r, &g.backends(), Some(&g)).unwrap();
    let mut s = stream_sources(list, 0, 32, Some(g.clone()), None);
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(item) = s.next().await {
        match item {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the stream must fail");
    assert_eq!(got, &DATA[..16], "bytes before the failure are exact, none repeated");
}

#[test]
fn pieces_follow_segment_boundaries() {
    let a = fake("a", DATA, false, None);
    let src = Source {
        parts: vec![
            (seg("a", "s0", 10), a.clone() as Arc<dyn Backend>),
            (seg("a", "s1", 10), a.clone()),
            (seg("a", "s2", 5), a),
        ],
    };
    assert_eq!(src.piece_at(5, 22), Some((0, 5, 5)));
    assert_eq!(src.piece_at(10, 22), Some((1, 0, 10)));
    assert_eq!(src.piece_at(20, 22), Some((2, 0, 2)));
    assert_eq!(src.piece_at(25, 25), None);
}
