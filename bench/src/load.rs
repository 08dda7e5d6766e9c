//! The load generator: one workload against one endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use serde::Serialize;

use crate::procstat::{Monitor, ServerUsage};
use crate::stats::{Latency, format_size, parse_size};

/// A workload: what the workers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Put,
    Get,
    Head,
    List,
    Delete,
    /// 70% GET of pre-populated objects, 30% PUT of new ones.
    Mixed,
}

impl Workload {
    pub fn parse(s: &str) -> Result<Workload, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "put" => Workload::Put,
            "get" => Workload::Get,
            "head" => Workload::Head,
            "list" => Workload::List,
            "delete" => Workload::Delete,
            "mixed" => Workload::Mixed,
            o => return Err(format!("unknown operation {o:?} (put, get, head, list, delete, mixed)")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Head => "head",
            Workload::List => "list",
            Workload::Delete => "delete",
            Workload::Mixed => "mixed",
        }
    }
}

/// `put:4KiB` and the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub workload: Workload,
    pub size: u64,
}

impl Spec {
    pub fn parse(s: &str) -> Result<Spec, String> {
        let (w, size) = s
            .split_once(':')
            .ok_or_else(|| format!("workload {s:?}: expected OP:SIZE, e.g. put:4KiB"))?;
        Ok(Spec {
            workload: Workload::parse(w)?,
            size: parse_size(size)?,
        })
    }

    pub fn label(&self) -> String {
        format!("{}:{}", self.workload.name(), format_size(self.size))
    }
}

/// The single S3 operations that are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put = 0,
    Get = 1,
    Head = 2,
    List = 3,
    Delete = 4,
}
const OP_NAMES: [&str; 5] = ["put", "get", "head", "list", "delete"];

/// One endpoint and its credential.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub pids: Vec<u32>,
}

/// How much load.
#[derive(Debug, Clone)]
pub struct Limits {
    pub concurrency: usize,
    pub duration: Option<Duration>,
    pub ops: Option<u64>,
    /// Pre-populated objects for GET/HEAD/mixed/LIST (None: a default by workload).
    pub objects: Option<u64>,
    pub bucket: String,
    /// Keep the written objects (otherwise large ones are deleted after the run).
    pub keep: bool,
}

/// Raw figures for one operation, mergeable across rounds.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    pub ops: u64,
    pub errors: u64,
    pub bytes: u64,
    pub lat_us: Vec<u64>,
}

impl OpStats {
    fn merge(&mut self, o: OpStats) {
        self.ops += o.ops;
        self.errors += o.errors;
        self.bytes += o.bytes;
        self.lat_us.extend(o.lat_us);
    }
}

/// One or more runs of a workload against one target.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub per_op: [OpStats; 5],
    pub elapsed: Duration,
    pub usage: Option<ServerUsage>,
    pub first_error: Option<String>,
}

impl RunStats {
    pub fn merge(&mut self, o: RunStats) {
        for (a, b) in self.per_op.iter_mut().zip(o.per_op) {
            a.merge(b);
        }
        self.elapsed += o.elapsed;
        match (&mut self.usage, o.usage) {
            (Some(a), Some(b)) => a.merge(&b),
            (a @ None, b) => *a = b,
            _ => {}
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    pub fn summary(&self) -> Vec<OpSummary> {
        let secs = self.elapsed.as_secs_f64();
        self.per_op
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ops + s.errors > 0)
            .map(|(i, s)| {
                let mut lat = s.lat_us.clone();
                OpSummary {
                    op: OP_NAMES[i],
                    ops: s.ops,
                    errors: s.errors,
                    bytes: s.bytes,
                    ops_per_s: if secs > 0.0 { s.ops as f64 / secs } else { 0.0 },
                    mb_per_s: if secs > 0.0 { s.bytes as f64 / 1e6 / secs } else { 0.0 },
                    latency_ms: Latency::from_micros(&mut lat),
                }
            })
            .collect()
    }
}

/// Reported figures for one operation. MB is 10^6 bytes.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    pub op: &'static str,
    pub ops: u64,
    pub errors: u64,
    pub bytes: u64,
    pub ops_per_s: f64,
    pub mb_per_s: f64,
    pub latency_ms: Latency,
}

pub fn client(t: &Target) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            &t.access_key,
            &t.secret_key,
            None,
            None,
            "strata-bench",
        ))
        .region(Region::new(t.region.clone()))
        .endpoint_url(&t.endpoint)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        // The client's own hashing would compete for the CPU with the servers measured:
        // headers are SigV4-signed, payloads are sent UNSIGNED-PAYLOAD without a CRC.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(600))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

pub(crate) async fn ensure_bucket(c: &Client, bucket: &str) -> anyhow::Result<()> {
    if c.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    if let Err(e) = c.create_bucket().bucket(bucket).send().await {
        let e = e.into_service_error();
        if !(e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) {
            c.head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(|_| anyhow::anyhow!("cannot create bucket {bucket}: {e:?}"))?;
        }
    }
    Ok(())
}

fn payload(size: u64) -> Bytes {
    // Not compressible, not all zeros; built once and shared by every request.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(size as usize);
    while (v.len() as u64) < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size as usize);
    Bytes::from(v)
}

pub(crate) fn err_text<E: std::fmt::Debug>(e: &aws_sdk_s3::error::SdkError<E>) -> String {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => {
            format!("HTTP {}: {:?}", s.raw().status().as_u16(), s.err())
        }
        other => format!("{other:?}"),
    }
}

struct Shared {
    client: Client,
    bucket: String,
    prefix: String,
    body: Bytes,
    workload: Workload,
    /// Pre-populated keys: `{prefix}/pre/{i}`.
    pre: u64,
    /// Next operation index (also the key of PUT/DELETE: `{prefix}/obj/{i}`).
    next: AtomicU64,
    /// Stop handing out indexes at this one.
    max_ops: u64,
    deadline: Option<Instant>,
}

impl Shared {
    fn obj(&self, i: u64) -> String {
        format!("{}/obj/{i}", self.prefix)
    }
    fn pre_key(&self, i: u64) -> String {
        format!("{}/pre/{}", self.prefix, i % self.pre.max(1))
    }
}

/// Runs `op` once; returns the bytes moved.
async fn one(s: &Shared, op: Op, i: u64) -> Result<u64, String> {
    let c = &s.client;
    match op {
        Op::Put => {
            let key = if s.workload == Workload::Delete || s.workload == Workload::Put || s.workload == Workload::Mixed
            {
                s.obj(i)
            } else {
                s.pre_key(i)
            };
            c.put_object()
                .bucket(&s.bucket)
                .key(key)
                .content_length(s.body.len() as i64)
                .body(ByteStream::from(s.body.clone()))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| err_text(&e))?;
            Ok(s.body.len() as u64)
        }
        Op::Get => {
            let mut out = c
                .get_object()
                .bucket(&s.bucket)
                .key(s.pre_key(i))
                .send()
                .await
                .map_err(|e| err_text(&e))?;
            let mut n = 0u64;
            while let Some(chunk) = out.body.next().await {
                n += chunk.map_err(|e| format!("reading the body: {e}"))?.len() as u64;
            }
            if n != s.body.len() as u64 {
                return Err(format!("GET returned {n} bytes, expected {}", s.body.len()));
            }
            Ok(n)
        }
        Op::Head => {
            c.head_object()
                .bucket(&s.bucket)
                .key(s.pre_key(i))
                .send()
                .await
                .map_err(|e| err_text(&e))?;
            Ok(0)
        }
        Op::List => {
            let out = c
                .list_objects_v2()
                .bucket(&s.bucket)
                .prefix(format!("{}/pre/", s.prefix))
                .max_keys(1000)
                .send()
                .await
                .map_err(|e| err_text(&e))?;
            let n = out.contents().len() as u64;
            if n != s.pre {
                return Err(format!("LIST returned {n} keys, expected {}", s.pre));
            }
            Ok(0)
        }
        Op::Delete => {
            c.delete_object()
                .bucket(&s.bucket)
                .key(s.obj(i))
                .send()
                .await
                .map_err(|e| err_text(&e))?;
            Ok(0)
        }
    }
}

struct TaskOut {
    per_op: [OpStats; 5],
    first_error: Option<String>,
    /// Indexes of the PUTs to `{prefix}/obj/{i}` attempted.
    puts: Vec<u64>,
}

async fn worker(s: Arc<Shared>, fixed: Option<Op>) -> TaskOut {
    let mut out = TaskOut {
        per_op: Default::default(),
        first_error: None,
        puts: Vec::new(),
    };
    loop {
        if s.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= s.max_ops {
            break;
        }
        let op = fixed.unwrap_or_else(|| if rand::random::<f64>() < 0.7 { Op::Get } else { Op::Put });
        if op == Op::Put {
            out.puts.push(i);
        }
        let t0 = Instant::now();
        let r = one(&s, op, i).await;
        let us = t0.elapsed().as_micros() as u64;
        let st = &mut out.per_op[op as usize];
        match r {
            Ok(n) => {
                st.ops += 1;
                st.bytes += n;
                st.lat_us.push(us);
            }
            Err(e) => {
                st.errors += 1;
                out.first_error.get_or_insert(format!("{}: {e}", OP_NAMES[op as usize]));
            }
        }
    }
    out
}

/// Runs `concurrency` workers until the deadline or `max_ops`. Returns the stats, how many
/// indexes were handed out, and the indexes of the PUTs to `{prefix}/obj/{i}`.
async fn phase(s: Arc<Shared>, concurrency: usize, fixed: Option<Op>) -> (RunStats, u64, Vec<u64>) {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(s.clone(), fixed)))
        .collect();
    let mut stats = RunStats::default();
    let mut puts = Vec::new();
    for t in tasks {
        match t.await {
            Ok(o) => {
                puts.extend(o.puts);
                stats.merge(RunStats {
                    per_op: o.per_op,
                    elapsed: Duration::ZERO,
                    usage: None,
                    first_error: o.first_error,
                });
            }
            Err(e) => stats.first_error = Some(format!("worker panicked: {e}")),
        }
    }
    stats.elapsed = t0.elapsed();
    let issued = s.next.load(Ordering::Relaxed).min(s.max_ops);
    (stats, issued, puts)
}

/// Writes `n` objects `{prefix}/pre/{i}` with `concurrency` workers.
async fn populate(
    c: &Client,
    bucket: &str,
    prefix: &str,
    body: &Bytes,
    n: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let s = Arc::new(Shared {
        client: c.clone(),
        bucket: bucket.into(),
        prefix: prefix.into(),
        body: body.clone(),
        workload: Workload::Get,
        pre: n,
        next: AtomicU64::new(0),
        max_ops: n,
        deadline: None,
    });
    let (st, _, _) = phase(s, concurrency, Some(Op::Put)).await;
    let put = &st.per_op[Op::Put as usize];
    if put.errors > 0 {
        anyhow::bail!(
            "pre-populating {n} objects: {} failed; first error: {}",
            put.errors,
            st.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// Deletes `keys` with `concurrency` workers; errors are ignored.
async fn cleanup(c: &Client, bucket: &str, keys: Vec<String>, concurrency: usize) {
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (c, keys, next, bucket) = (c.clone(), keys.clone(), next.clone(), bucket.to_string());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(k) = keys.get(i) else { break };
                    let _ = c.delete_object().bucket(&bucket).key(k).send().await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

fn default_objects(spec: Spec, concurrency: usize) -> u64 {
    match spec.workload {
        Workload::List => 100,
        _ if spec.size >= 16 << 20 => concurrency.max(1) as u64,
        _ => (concurrency as u64 * 4).clamp(16, 256),
    }
}

/// One run of `spec` against `target`: pre-populates what it needs, measures, cleans up.
pub async fn run(target: &Target, spec: Spec, limits: &Limits) -> anyhow::Result<RunStats> {
    let c = client(target);
    ensure_bucket(&c, &limits.bucket)
        .await
        .with_context(|| format!("{} ({})", target.name, target.endpoint))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let prefix = format!("bench-{nanos:x}-{:04x}", rand::random::<u16>());
    let body = payload(spec.size);
    let conc = limits.concurrency.max(1);
    let pre = match spec.workload {
        Workload::Get | Workload::Head | Workload::List | Workload::Mixed => {
            let n = limits.objects.unwrap_or_else(|| default_objects(spec, conc));
            populate(&c, &limits.bucket, &prefix, &body, n, conc).await?;
            n
        }
        Workload::Put | Workload::Delete => 0,
    };
    let deadline = || limits.duration.map(|d| Instant::now() + d);
    let mk = |max_ops: u64, deadline: Option<Instant>| {
        Arc::new(Shared {
            client: c.clone(),
            bucket: limits.bucket.clone(),
            prefix: prefix.clone(),
            body: body.clone(),
            workload: spec.workload,
            pre,
            next: AtomicU64::new(0),
            max_ops,
            deadline,
        })
    };
    let max_ops = limits.ops.unwrap_or(u64::MAX);
    // DELETE needs objects to delete: write them first (as many as a PUT run of the same limits).
    let mut written = 0;
    if spec.workload == Workload::Delete {
        let s = mk(max_ops, deadline());
        let (st, issued, _) = phase(s, conc, Some(Op::Put)).await;
        let put = &st.per_op[Op::Put as usize];
        if put.errors > 0 {
            anyhow::bail!(
                "writing objects to delete: {} failed; first error: {}",
                put.errors,
                st.first_error.unwrap_or_default()
            );
        }
        written = issued;
    }
    let fixed = match spec.workload {
        Workload::Put => Some(Op::Put),
        Workload::Get => Some(Op::Get),
        Workload::Head => Some(Op::Head),
        Workload::List => Some(Op::List),
        Workload::Delete => Some(Op::Delete),
        Workload::Mixed => None,
    };
    let cap = if spec.workload == Workload::Delete {
        written
    } else {
        max_ops
    };
    let monitor = if target.pids.is_empty() {
        None
    } else {
        Some(Monitor::start(&target.pids)?)
    };
    let (mut stats, issued, puts) = phase(mk(cap, deadline()), conc, fixed).await;
    stats.usage = monitor.map(Monitor::finish);
    // Leave the bucket as it was, so that one run does not slow the next (a LIST that walks
    // the bucket, a directory with thousands of entries): delete everything written.
    if !limits.keep {
        let obj = |i: u64| format!("{prefix}/obj/{i}");
        let keys: Vec<String> = if spec.workload == Workload::Delete {
            (issued..written).map(obj).collect()
        } else {
            puts.into_iter()
                .map(obj)
                .chain((0..pre).map(|i| format!("{prefix}/pre/{i}")))
                .collect()
        };
        cleanup(&c, &limits.bucket, keys, conc).await;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            Spec::parse("put:4KiB"),
            Ok(Spec {
                workload: Workload::Put,
                size: 4096
            })
        );
        assert_eq!(Spec::parse("MIXED:1MiB").unwrap().workload, Workload::Mixed);
        assert_eq!(Spec::parse("get:64MiB").unwrap().label(), "get:64MiB");
        assert!(Spec::parse("put").is_err());
        assert!(Spec::parse("copy:4KiB").is_err());
    }

    #[test]
    fn payload_is_shared_and_sized() {
        let p = payload(4099);
        assert_eq!(p.len(), 4099);
        let q = p.clone();
        assert_eq!(p.as_ptr(), q.as_ptr());
        assert!(p.iter().any(|&b| b != p[0]));
    }

    #[test]
    fn merge_and_summary() {
        let mut a = RunStats::default();
        a.per_op[Op::Get as usize] = OpStats {
            ops: 2,
            errors: 0,
            bytes: 2_000_000,
            lat_us: vec![1000, 3000],
        };
        a.elapsed = Duration::from_secs(1);
        let mut b = RunStats::default();
        b.per_op[Op::Get as usize] = OpStats {
            ops: 2,
            errors: 1,
            bytes: 2_000_000,
            lat_us: vec![2000, 4000],
        };
        b.elapsed = Duration::from_secs(1);
        a.merge(b);
        let s = a.summary();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].op, "get");
        assert_eq!(s[0].ops, 4);
        assert_eq!(s[0].errors, 1);
        assert_eq!(s[0].ops_per_s, 2.0);
        assert_eq!(s[0].mb_per_s, 2.0);
        assert_eq!(s[0].latency_ms.p50, 2.0);
        assert_eq!(s[0].latency_ms.max, 4.0);
    }
}
