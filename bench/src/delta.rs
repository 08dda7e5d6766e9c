//! `strata bench delta`: delta compression of a versioned-artifact corpus, measured end to end.
//!
//! For each subdirectory of the corpus, in version order (`sort -V`): PUT every version into a
//! delta bucket and into a plain bucket, GET every one back (SHA-256 checked), a few Range GETs,
//! the stored/logical ratio from `GET /status/delta`, and the same corpus compressed with the
//! zstd and xdelta3 CLIs as a baseline.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use clap::Args;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::load::{Target, client, ensure_bucket, err_text};
use crate::procstat::{Monitor, ServerUsage};

pub const PUT_RATIO_TARGET: f64 = 0.5;
pub const GET_RATIO_TARGET: f64 = 0.7;
pub const RSS_TARGET_MIB: f64 = 256.0;

#[derive(Args, Debug)]
pub struct DeltaArgs {
    /// Corpus directory: one subdirectory per artifact (e.g. wheels/, tars/), versions inside.
    #[arg(long)]
    pub corpus: PathBuf,
    /// S3 endpoint of Strata, e.g. http://127.0.0.1:9000 (plain http; also serves /status/delta).
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// The server process whose peak RSS (VmHWM) to report.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Prefix of the delta buckets: each subdirectory goes to `<delta-bucket>-<subdir>`,
    /// which the server's `delta.rules` must turn on.
    #[arg(long, default_value = "strata-delta")]
    pub delta_bucket: String,
    /// The bucket without delta compression (passthrough); keys `<subdir>/<file>`.
    #[arg(long, default_value = "strata-plain")]
    pub plain_bucket: String,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Range GETs per subdirectory and bucket, at random offsets.
    #[arg(long, default_value_t = 8)]
    pub ranges: u32,
    /// Only these subdirectories (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Skip the zstd/xdelta3 baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Wait up to this long for the server's stored bytes to stop changing
    /// (background reference recompression) before reading the ratio.
    #[arg(long, default_value_t = 300)]
    pub settle_secs: u64,
    /// Print markdown tables instead of plain ones.
    #[arg(long)]
    pub markdown: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

// --- version order ---------------------------------------------------------------------------

/// The order of a character in a non-digit run, as in dpkg's `verrevcmp`: `~` first, then the
/// end of the run (and digits), then letters, then everything else.
fn char_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(b'~') => -1,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg/gnulib `verrevcmp`: alternating non-digit runs (by [`char_order`]) and digit runs (by value).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = char_order(a.get(i).copied());
            let bc = char_order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Length of `s` without its file suffix: the longest tail matching `(\.[A-Za-z~][A-Za-z0-9~]*)*$`.
fn without_suffix(s: &[u8]) -> usize {
    let mut end = s.len();
    loop {
        // Find a '.' before `end` such that s[dot+1..end] is [A-Za-z~][A-Za-z0-9~]*.
        let mut k = end;
        while k > 0 && (s[k - 1].is_ascii_alphanumeric() || s[k - 1] == b'~') {
            k -= 1;
        }
        if k == 0 || s[k - 1] != b'.' || k == end || !(s[k].is_ascii_alphabetic() || s[k] == b'~') {
            return end;
        }
        end = k - 1;
    }
}

/// `sort -V` (gnulib `filevercmp`): compare without the file suffixes first, then whole names.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return Ordering::Equal;
    }
    let (pa, pb) = (without_suffix(a), without_suffix(b));
    let r = if pa == pb && a[..pa] == b[..pb] {
        Ordering::Equal
    } else {
        verrevcmp(&a[..pa], &b[..pb])
    };
    r.then_with(|| verrevcmp(a, b)).then_with(|| a.cmp(b))
}

/// Sorts file names in `sort -V` order.
pub fn version_sort(names: &mut [String]) {
    names.sort_by(|a, b| version_cmp(a, b));
}

// --- the baseline ----------------------------------------------------------------------------

/// zstd/xdelta3 CLIs over the same versions: the first version compressed (`zstd -19 --long=27`)
/// or raw, every later one an `xdelta3 -e -9` delta against the first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Baseline {
    pub first_zstd_bytes: u64,
    pub first_raw_bytes: u64,
    pub delta_bytes: Vec<u64>,
    pub logical_bytes: u64,
    /// (first_zstd_bytes + sum of deltas) / logical_bytes.
    pub ratio: f64,
    /// (first_raw_bytes + sum of deltas) / logical_bytes.
    pub raw_ref_ratio: f64,
    pub seconds: f64,
}

impl Baseline {
    /// The ratios from the sizes: `sizes` are the versions' sizes, the first one the reference.
    pub fn compute(first_zstd_bytes: u64, delta_bytes: Vec<u64>, sizes: &[u64], seconds: f64) -> Baseline {
        let logical: u64 = sizes.iter().sum();
        let first_raw = sizes.first().copied().unwrap_or(0);
        let deltas: u64 = delta_bytes.iter().sum();
        let r = |stored: u64| {
            if logical == 0 {
                1.0
            } else {
                stored as f64 / logical as f64
            }
        };
        Baseline {
            first_zstd_bytes,
            first_raw_bytes: first_raw,
            ratio: r(first_zstd_bytes + deltas),
            raw_ref_ratio: r(first_raw + deltas),
            delta_bytes,
            logical_bytes: logical,
            seconds,
        }
    }
}

/// Bytes a command writes to stdout (failing loudly when it fails).
fn stdout_len(cmd: &mut Command) -> anyhow::Result<u64> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {desc} (are zstd and xdelta3 on PATH? scripts/install-deps.sh)"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = out.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    let o = child.wait_with_output()?;
    if !o.status.success() {
        bail!(
            "{desc} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(n)
}

fn baseline(files: &[PathBuf], sizes: &[u64]) -> anyhow::Result<Baseline> {
    let t = Instant::now();
    let first = &files[0];
    let z = stdout_len(Command::new("zstd").args(["-19", "--long=27", "-q", "-c"]).arg(first))?;
    let mut deltas = Vec::new();
    for f in &files[1..] {
        deltas.push(stdout_len(
            Command::new("xdelta3").args(["-e", "-9", "-c", "-s"]).arg(first).arg(f),
        )?);
    }
    Ok(Baseline::compute(z, deltas, sizes, t.elapsed().as_secs_f64()))
}

// --- /status/delta ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeltaStatusBucket {
    pub bucket: String,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    #[serde(default)]
    pub ratio: f64,
    #[serde(default)]
    pub decisions: BTreeMap<String, u64>,
    #[serde(default)]
    pub references: u64,
}

#[derive(Debug, Deserialize)]
struct DeltaStatus {
    buckets: Vec<DeltaStatusBucket>,
}

/// `host:port` of an `http://host:port[/...]` endpoint.
fn host_port(endpoint: &str) -> anyhow::Result<String> {
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--endpoint {endpoint}: only plain http:// is supported"))?;
    let hp = rest.split('/').next().unwrap_or("");
    Ok(if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:80")
    })
}

/// The body of an HTTP/1.1 response (Content-Length, chunked or until close); errors unless 200.
fn response_body(raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{status}: {}", String::from_utf8_lossy(body).trim());
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| anyhow::anyhow!("truncated chunked body"))?;
            let size_txt = String::from_utf8_lossy(&rest[..eol]).to_string();
            let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size {size_txt:?}"))?;
            rest = &rest[eol + 2..];
            if size == 0 {
                return Ok(out);
            }
            if rest.len() < size {
                bail!("truncated chunked body");
            }
            out.extend_from_slice(&rest[..size]);
            rest = rest.get(size + 2..).unwrap_or(&[]);
        }
    }
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() < n {
            bail!("truncated body: {} of {n} bytes", body.len());
        }
        return Ok(body[..n].to_vec());
    }
    Ok(body.to_vec())
}

/// The bucket's `/status/delta` row once its stored bytes have been the same
/// for a minute of polls five seconds apart (a level-19 re-encode of one large
/// delta can take most of that), or `wait` has passed.
fn settled_status(endpoint: &str, bucket: &str, wait: Duration) -> anyhow::Result<Option<DeltaStatusBucket>> {
    let until = std::time::Instant::now() + wait;
    let (mut last, mut same) = (None, 0);
    loop {
        let row = delta_status(endpoint)?.into_iter().find(|b| b.bucket == bucket);
        let stored = row.as_ref().map(|r| r.stored_bytes);
        same = if stored == last { same + 1 } else { 0 };
        last = stored;
        if same >= 12 || std::time::Instant::now() >= until {
            return Ok(row);
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// `GET /status/delta` (unsigned).
pub fn delta_status(endpoint: &str) -> anyhow::Result<Vec<DeltaStatusBucket>> {
    let hp = host_port(endpoint)?;
    let mut s = std::net::TcpStream::connect(&hp).with_context(|| format!("connecting to {hp}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET /status/delta HTTP/1.1\r\nHost: {hp}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let body = response_body(&raw).context("GET /status/delta")?;
    let st: DeltaStatus = serde_json::from_slice(&body)
        .with_context(|| format!("GET /status/delta: {}", String::from_utf8_lossy(&body)))?;
    Ok(st.buckets)
}

// --- S3 --------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Throughput {
    pub objects: u64,
    pub bytes: u64,
    /// Sum of the requests' wall times (one request at a time).
    pub seconds: f64,
    pub mb_per_s: f64,
}

impl Throughput {
    fn add(&mut self, bytes: u64, d: Duration) {
        self.objects += 1;
        self.bytes += bytes;
        self.seconds += d.as_secs_f64();
        self.mb_per_s = if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            0.0
        };
    }
}

/// One bucket's PUT and GET of every version.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transfer {
    pub bucket: String,
    pub put: Throughput,
    pub get: Throughput,
    pub range_gets: u32,
}

struct Version {
    name: String,
    path: PathBuf,
    size: u64,
    sha256: [u8; 32],
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn read_body(mut out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> anyhow::Result<Vec<u8>> {
    let mut v = Vec::with_capacity(out.content_length.unwrap_or(0).max(0) as usize);
    while let Some(chunk) = out.body.next().await {
        v.extend_from_slice(&chunk.context("reading the body")?);
    }
    Ok(v)
}

async fn bucket_is_empty(c: &Client, bucket: &str) -> anyhow::Result<bool> {
    let r = c
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("listing {bucket}: {}", err_text(&e)))?;
    Ok(r.key_count.unwrap_or(0) == 0 && r.contents.is_none_or(|c| c.is_empty()))
}

async fn transfer(
    c: &Client,
    bucket: &str,
    subdir: &str,
    versions: &[Version],
    ranges: u32,
) -> anyhow::Result<Transfer> {
    ensure_bucket(c, bucket).await?;
    let mut t = Transfer {
        bucket: bucket.to_string(),
        ..Default::default()
    };
    let key = |v: &Version| format!("{subdir}/{}", v.name);
    for v in versions {
        let body = Bytes::from(std::fs::read(&v.path).with_context(|| format!("reading {}", v.path.display()))?);
        let start = Instant::now();
        c.put_object()
            .bucket(bucket)
            .key(key(v))
            .content_length(body.len() as i64)
            .body(ByteStream::from(body.clone()))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PUT {bucket}/{}: {}", key(v), err_text(&e)))?;
        t.put.add(body.len() as u64, start.elapsed());
    }
    for v in versions {
        let start = Instant::now();
        let out = c
            .get_object()
            .bucket(bucket)
            .key(key(v))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GET {bucket}/{}: {}", key(v), err_text(&e)))?;
        let body = read_body(out)
            .await
            .with_context(|| format!("GET {bucket}/{}", key(v)))?;
        t.get.add(body.len() as u64, start.elapsed());
        let got = sha256(&body);
        if body.len() as u64 != v.size || got != v.sha256 {
            bail!(
                "GET {bucket}/{} returned {} bytes with SHA-256 {}, but {} has {} bytes with SHA-256 {}",
                key(v),
                body.len(),
                hex(&got),
                v.path.display(),
                v.size,
                hex(&v.sha256)
            );
        }
    }
    let mut rng = rand::rng();
    for _ in 0..ranges {
        let v = &versions[rng.random_range(0..versions.len())];
        if v.size == 0 {
            continue;
        }
        let file = std::fs::read(&v.path)?;
        let first = rng.random_range(0..v.size);
        let len = rng.random_range(1..=(1u64 << 20)).min(v.size - first);
        let last = first + len - 1;
        let out = c
            .get_object()
            .bucket(bucket)
            .key(key(v))
            .range(format!("bytes={first}-{last}"))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GET {bucket}/{} bytes={first}-{last}: {}", key(v), err_text(&e)))?;
        let body = read_body(out).await?;
        if body[..] != file[first as usize..=last as usize] {
            bail!(
                "GET {bucket}/{} bytes={first}-{last} returned {} bytes that differ from {}",
                key(v),
                body.len(),
                v.path.display()
            );
        }
        t.range_gets += 1;
    }
    Ok(t)
}

// --- the report ------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct SubdirReport {
    pub name: String,
    pub versions: Vec<String>,
    pub logical_bytes: u64,
    /// The delta bucket's row of `/status/delta` (None if the server did not list it).
    pub strata: Option<DeltaStatusBucket>,
    pub baseline: Option<Baseline>,
    pub delta: Transfer,
    pub plain: Transfer,
    pub put_ratio: Option<f64>,
    pub get_ratio: Option<f64>,
    /// The server's RSS while this subdirectory ran (VmRSS sampled every 100 ms; VmHWM at its end).
    pub server: Option<ServerUsage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeltaReport {
    pub endpoint: String,
    pub corpus: String,
    pub subdirs: Vec<SubdirReport>,
    pub server: Option<ServerUsage>,
    /// VmHWM of the server at the end (MiB): its peak RSS since it started.
    pub peak_rss_mib: Option<f64>,
}

fn mb(b: u64) -> String {
    format!("{:.2}", b as f64 / 1e6)
}

fn f2(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2}"))
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

/// Rows of `metric | value | target | met` for one subdirectory.
pub fn subdir_rows(s: &SubdirReport, peak_rss_mib: Option<f64>) -> Vec<[String; 4]> {
    let row = |a: &str, b: String, c: &str, d: &str| [a.to_string(), b, c.to_string(), d.to_string()];
    let mut rows = vec![
        row("versions", s.versions.len().to_string(), "", ""),
        row("logical MB", mb(s.logical_bytes), "", ""),
    ];
    match &s.strata {
        Some(st) => {
            let ratio = (st.logical_bytes > 0).then(|| st.stored_bytes as f64 / st.logical_bytes as f64);
            rows.push(row("Strata stored MB", mb(st.stored_bytes), "", ""));
            rows.push(row("Strata stored/logical", f2(ratio), "", ""));
            let d = |k: &str| st.decisions.get(k).copied().unwrap_or(0);
            rows.push(row(
                "decisions (reference/delta/passthrough)",
                format!("{}/{}/{}", d("reference"), d("delta"), d("passthrough")),
                "",
                "",
            ));
            rows.push(row("references", st.references.to_string(), "", ""));
        }
        None => rows.push(row("Strata stored/logical", "not in /status/delta".into(), "", "")),
    }
    match &s.baseline {
        Some(b) => {
            rows.push(row(
                "baseline zstd -19 + xdelta3 -9",
                format!(
                    "{:.2} ({} MB, {:.1} s)",
                    b.ratio,
                    mb(b.first_zstd_bytes + b.delta_bytes.iter().sum::<u64>()),
                    b.seconds
                ),
                "",
                "",
            ));
            rows.push(row(
                "baseline raw reference + xdelta3 -9",
                format!("{:.2}", b.raw_ref_ratio),
                "",
                "",
            ));
        }
        None => rows.push(row("baseline", "not measured".into(), "", "")),
    }
    rows.push(row("delta PUT MB/s", format!("{:.1}", s.delta.put.mb_per_s), "", ""));
    rows.push(row(
        "passthrough PUT MB/s",
        format!("{:.1}", s.plain.put.mb_per_s),
        "",
        "",
    ));
    rows.push(row(
        "PUT delta/passthrough",
        f2(s.put_ratio),
        ">= 0.5",
        met(s.put_ratio.map(|r| r >= PUT_RATIO_TARGET)),
    ));
    rows.push(row("delta GET MB/s", format!("{:.1}", s.delta.get.mb_per_s), "", ""));
    rows.push(row(
        "passthrough GET MB/s",
        format!("{:.1}", s.plain.get.mb_per_s),
        "",
        "",
    ));
    rows.push(row(
        "GET delta/passthrough",
        f2(s.get_ratio),
        ">= 0.7",
        met(s.get_ratio.map(|r| r >= GET_RATIO_TARGET)),
    ));
    rows.push(row(
        "range GETs checked (delta + plain)",
        format!("{} + {}", s.delta.range_gets, s.plain.range_gets),
        "",
        "",
    ));
    if let Some(u) = &s.server {
        rows.push(row(
            "server peak RSS MiB during this subdir (sampled)",
            format!("{:.0}", u.peak_rss_mib),
            "",
            "",
        ));
    }
    rows.push(row(
        "server peak RSS MiB (VmHWM since start)",
        peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
        "< 256",
        met(peak_rss_mib.map(|m| m < RSS_TARGET_MIB)),
    ));
    rows
}

fn table(head: [&str; 4], rows: &[[String; 4]], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str(&format!("| {} |\n|---|---:|---|---|\n", head.join(" | ")));
        for r in rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
    } else {
        let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
        for r in rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |cells: Vec<&str>| {
            let s: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 1 {
                        format!("{c:>w$}", w = w[i])
                    } else {
                        format!("{c:<w$}", w = w[i])
                    }
                })
                .collect();
            format!("{}\n", s.join("  ").trim_end())
        };
        out.push_str(&line(head.to_vec()));
        for r in rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
    }
    out
}

/// The report as one table per subdirectory.
pub fn render(r: &DeltaReport, markdown: bool) -> String {
    let mut out = String::new();
    for s in &r.subdirs {
        let title = format!(
            "{} ({} versions, {} .. {}; delta bucket {}, plain bucket {})",
            s.name,
            s.versions.len(),
            s.versions.first().map_or("", |v| v.as_str()),
            s.versions.last().map_or("", |v| v.as_str()),
            s.delta.bucket,
            s.plain.bucket
        );
        if markdown {
            out.push_str(&format!("### {title}\n\n"));
        } else {
            out.push_str(&format!("== {title}\n"));
        }
        out.push_str(&table(
            ["metric", "value", "target", "met"],
            &subdir_rows(s, r.peak_rss_mib),
            markdown,
        ));
        out.push('\n');
    }
    out
}

/// A bucket name for a subdirectory: lower case, `[a-z0-9-]` only.
pub fn bucket_for(prefix: &str, subdir: &str) -> String {
    let s: String = subdir
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{}", s.trim_matches('-'))
}

fn subdirs(corpus: &Path, only: &[String]) -> anyhow::Result<Vec<(String, Vec<PathBuf>)>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(corpus).with_context(|| format!("--corpus {}", corpus.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type()?.is_dir() && !name.starts_with('.') && (only.is_empty() || only.contains(&name)) {
            names.push(name);
        }
    }
    version_sort(&mut names);
    let mut out = Vec::new();
    for d in names {
        let mut files = Vec::new();
        for e in std::fs::read_dir(corpus.join(&d))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if e.file_type()?.is_file() && !name.starts_with('.') {
                files.push(name);
            }
        }
        version_sort(&mut files);
        if files.is_empty() {
            eprintln!("skipping {d}/: no files");
            continue;
        }
        let dir = corpus.join(&d);
        out.push((d, files.into_iter().map(|f| dir.join(f)).collect()));
    }
    if out.is_empty() {
        bail!("--corpus {}: no subdirectory with files", corpus.display());
    }
    Ok(out)
}

fn vm_hwm_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = text
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

pub fn cmd_delta(a: DeltaArgs) -> anyhow::Result<ExitCode> {
    let target = Target {
        name: "strata".into(),
        endpoint: a.endpoint.clone(),
        access_key: a.access_key.clone(),
        secret_key: a.secret_key.clone(),
        region: a.region.clone(),
        pids: a.server_pid.into_iter().collect(),
    };
    let dirs = subdirs(&a.corpus, &a.only)?;
    let rt = crate::runtime()?;
    let c = rt.block_on(async { client(&target) });
    let start_monitor = || match a.server_pid {
        Some(p) => Monitor::start(&[p]).map(Some),
        None => Ok(None),
    };
    let monitor = start_monitor()?;
    let mut reports = Vec::new();
    for (name, files) in &dirs {
        let sub_monitor = start_monitor()?;
        let mut versions = Vec::new();
        for f in files {
            let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            versions.push(Version {
                name: f.file_name().unwrap_or_default().to_string_lossy().to_string(),
                path: f.clone(),
                size: data.len() as u64,
                sha256: sha256(&data),
            });
        }
        let logical: u64 = versions.iter().map(|v| v.size).sum();
        let delta_bucket = bucket_for(&a.delta_bucket, name);
        eprintln!(
            "== {name}: {} versions, {} MB; delta bucket {delta_bucket}, plain bucket {}",
            versions.len(),
            mb(logical),
            a.plain_bucket
        );
        let (delta, plain) = rt.block_on(async {
            ensure_bucket(&c, &delta_bucket).await?;
            if !bucket_is_empty(&c, &delta_bucket).await? {
                bail!(
                    "bucket {delta_bucket} is not empty: its stored/logical ratio would include other objects \
                     (use a fresh server or another --delta-bucket)"
                );
            }
            eprintln!("   delta PUT/GET ...");
            let d = transfer(&c, &delta_bucket, name, &versions, a.ranges).await?;
            eprintln!("   plain PUT/GET ...");
            let p = transfer(&c, &a.plain_bucket, name, &versions, a.ranges).await?;
            anyhow::Ok((d, p))
        })?;
        let sub_usage = sub_monitor.map(Monitor::finish);
        let baseline = if a.no_baseline {
            None
        } else {
            eprintln!("   baseline (zstd -19 --long=27, xdelta3 -9) ...");
            let sizes: Vec<u64> = versions.iter().map(|v| v.size).collect();
            Some(baseline(files, &sizes)?)
        };
        // The server recompresses references in the background (delta-compact):
        // the stored size is read once it has stopped changing.
        let strata = settled_status(&a.endpoint, &delta_bucket, Duration::from_secs(a.settle_secs))?;
        if strata.is_none() {
            eprintln!(
                "warning: /status/delta does not list {delta_bucket} (is delta on for it in the server's config?)"
            );
        }
        reports.push(SubdirReport {
            name: name.clone(),
            versions: versions.iter().map(|v| v.name.clone()).collect(),
            logical_bytes: logical,
            strata,
            baseline,
            put_ratio: crate::ratio(delta.put.mb_per_s, plain.put.mb_per_s),
            get_ratio: crate::ratio(delta.get.mb_per_s, plain.get.mb_per_s),
            delta,
            plain,
            server: sub_usage,
        });
    }
    let server = monitor.map(Monitor::finish);
    let report = DeltaReport {
        endpoint: a.endpoint.clone(),
        corpus: a.corpus.display().to_string(),
        subdirs: reports,
        peak_rss_mib: a.server_pid.and_then(vm_hwm_mib),
        server,
    };
    if let Some(p) = &a.json_out {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("--json-out {}: {e}", p.display()))?;
    }
    print!("{}", render(&report, a.markdown));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        version_sort(&mut v);
        v
    }

    #[test]
    fn version_order_like_sort_v() {
        assert_eq!(
            sorted(&[
                "b-1.35.10.whl",
                "b-1.35.9.whl",
                "b-1.35.0.whl",
                "b-1.4.whl",
                "b-1.35.1.whl"
            ]),
            [
                "b-1.4.whl",
                "b-1.35.0.whl",
                "b-1.35.1.whl",
                "b-1.35.9.whl",
                "b-1.35.10.whl"
            ]
        );
        // The suffix is set aside: 5.0 comes before 5.0.1 (plain natural order would not).
        assert_eq!(
            sorted(&[
                "django-5.0.1.tar",
                "django-5.0.tar",
                "django-5.0.10.tar",
                "django-5.0.2.tar"
            ]),
            [
                "django-5.0.tar",
                "django-5.0.1.tar",
                "django-5.0.2.tar",
                "django-5.0.10.tar"
            ]
        );
        // `~` before the end, letters before other characters, leading zeros ignored.
        assert_eq!(
            sorted(&["1.0", "1.0~rc1", "1.0a", "1.0+x"]),
            ["1.0~rc1", "1.0", "1.0a", "1.0+x"]
        );
        assert_eq!(version_cmp("v007", "v7"), Ordering::Less); // equal as versions; byte order decides, as sort -V
        assert_eq!(version_cmp("v08", "v7"), Ordering::Greater);
        assert_eq!(version_cmp("a", "a"), Ordering::Equal);
        assert_eq!(
            sorted(&["tars", "wheels", "a10", "a9"]),
            ["a9", "a10", "tars", "wheels"]
        );
        assert_eq!(without_suffix(b"x-1.2.tar.gz"), 5);
        assert_eq!(without_suffix(b"x-1.2"), 5); // ".2" is no suffix
        assert_eq!(without_suffix(b"noext"), 5);
    }

    #[test]
    fn baseline_arithmetic() {
        let b = Baseline::compute(250, vec![50, 100], &[1000, 1000, 1000], 1.5);
        assert_eq!(b.logical_bytes, 3000);
        assert_eq!(b.first_raw_bytes, 1000);
        assert!((b.ratio - 400.0 / 3000.0).abs() < 1e-12);
        assert!((b.raw_ref_ratio - 1150.0 / 3000.0).abs() < 1e-12);
        let one = Baseline::compute(10, vec![], &[100], 0.0);
        assert!((one.ratio - 0.1).abs() < 1e-12);
        assert!((one.raw_ref_ratio - 1.0).abs() < 1e-12);
        assert_eq!(Baseline::compute(0, vec![], &[], 0.0).ratio, 1.0);
    }

    #[test]
    fn http_bodies() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\n{}xx";
        assert_eq!(response_body(r).unwrap(), b"{}xx");
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(response_body(r).unwrap(), b"{\"a\":1}");
        let e = response_body(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\n\r\n{\"e\":\"x\"}");
        assert!(e.unwrap_err().to_string().contains("503"));
        assert_eq!(host_port("http://127.0.0.1:9000/").unwrap(), "127.0.0.1:9000");
        assert_eq!(host_port("http://localhost").unwrap(), "localhost:80");
        assert!(host_port("https://x").is_err());
        let st: DeltaStatus = serde_json::from_str(
            r#"{"buckets":[{"bucket":"d-wheels","logical_bytes":100,"stored_bytes":20,"ratio":0.2,
                "decisions":{"reference":1,"delta":7,"passthrough":0},"references":1}]}"#,
        )
        .unwrap();
        assert_eq!(st.buckets[0].decisions["delta"], 7);
    }

    fn tp(mb_s: f64) -> Throughput {
        Throughput {
            objects: 2,
            bytes: 2_000_000,
            seconds: 2.0 / mb_s,
            mb_per_s: mb_s,
        }
    }

    #[test]
    fn report_formatting() {
        let s = SubdirReport {
            name: "wheels".into(),
            versions: vec!["w-1.whl".into(), "w-2.whl".into()],
            logical_bytes: 25_000_000,
            strata: Some(DeltaStatusBucket {
                bucket: "strata-delta-wheels".into(),
                logical_bytes: 25_000_000,
                stored_bytes: 5_000_000,
                ratio: 0.2,
                decisions: [("reference".to_string(), 1), ("delta".to_string(), 1)].into(),
                references: 1,
            }),
            baseline: Some(Baseline::compute(
                2_000_000,
                vec![500_000],
                &[12_500_000, 12_500_000],
                3.0,
            )),
            delta: Transfer {
                bucket: "strata-delta-wheels".into(),
                put: tp(40.0),
                get: tp(150.0),
                range_gets: 8,
            },
            plain: Transfer {
                bucket: "strata-plain".into(),
                put: tp(100.0),
                get: tp(200.0),
                range_gets: 8,
            },
            put_ratio: Some(0.4),
            get_ratio: Some(0.75),
            server: Some(ServerUsage {
                pids: vec![1],
                peak_rss_mib: 99.6,
                vm_hwm_mib: 120.4,
                cpu_seconds: 1.0,
            }),
        };
        let r = DeltaReport {
            endpoint: "http://x".into(),
            corpus: "/c".into(),
            subdirs: vec![s],
            server: None,
            peak_rss_mib: Some(120.4),
        };
        let md = render(&r, true);
        assert!(md.starts_with("### wheels (2 versions, w-1.whl .. w-2.whl;"), "{md}");
        assert!(
            md.contains("| metric | value | target | met |\n|---|---:|---|---|\n"),
            "{md}"
        );
        assert!(md.contains("| Strata stored MB | 5.00 |  |  |"), "{md}");
        assert!(md.contains("| Strata stored/logical | 0.20 |  |  |"), "{md}");
        assert!(
            md.contains("| decisions (reference/delta/passthrough) | 1/1/0 |  |  |"),
            "{md}"
        );
        assert!(
            md.contains("| baseline zstd -19 + xdelta3 -9 | 0.10 (2.50 MB, 3.0 s) |  |  |"),
            "{md}"
        );
        assert!(
            md.contains("| baseline raw reference + xdelta3 -9 | 0.52 |  |  |"),
            "{md}"
        );
        assert!(md.contains("| PUT delta/passthrough | 0.40 | >= 0.5 | no |"), "{md}");
        assert!(md.contains("| GET delta/passthrough | 0.75 | >= 0.7 | yes |"), "{md}");
        assert!(
            md.contains("| server peak RSS MiB during this subdir (sampled) | 100 |  |  |"),
            "{md}"
        );
        assert!(
            md.contains("| server peak RSS MiB (VmHWM since start) | 120 | < 256 | yes |"),
            "{md}"
        );
        let plain = render(&r, false);
        assert!(plain.starts_with("== wheels"), "{plain}");
        assert!(plain.contains("PUT delta/passthrough"), "{plain}");
        assert!(!plain.contains('|'), "{plain}");
        assert_eq!(bucket_for("strata-delta", "Wheels_x/"), "strata-delta-wheels-x");
    }
}
