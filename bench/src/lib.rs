//! `strata bench`: a load generator that signs real SigV4 requests to any S3 endpoint
//! (`run`), an A/B comparison of two endpoints on the same workloads (`compare`), and a
//! measurement of delta compression over a versioned-artifact corpus (`delta`).

mod delta;
mod load;
mod procstat;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

pub use delta::{DeltaArgs, DeltaReport, version_cmp, version_sort};
pub use load::{Limits, OpSummary, RunStats, Spec, Target, Workload};
pub use procstat::ServerUsage;
pub use stats::{Latency, format_size, parse_duration, parse_size, percentile, ratio};

use stats::fmt_ratio;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Run one workload against one S3 endpoint and report ops/s, MB/s and latency.
    Run(Box<RunArgs>),
    /// Run the same workloads against two endpoints, alternating A, B, A, B, and print A/B ratios.
    Compare(Box<CompareArgs>),
    /// Delta compression of a versioned-artifact corpus: stored/logical ratio against a zstd/xdelta3
    /// baseline, PUT/GET MB/s with delta on and off, peak server RSS.
    Delta(Box<DeltaArgs>),
}

/// How much load, shared by `run` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long each run lasts (e.g. 10s, 500ms). Default 10s unless --ops is given.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Operations per run (stops at whichever of --duration and --ops comes first).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Objects written before GET, HEAD, LIST and mixed runs (default: by workload).
    #[arg(long)]
    pub objects: Option<u64>,
    /// Bucket to use; created if missing.
    #[arg(long, default_value = "strata-bench")]
    pub bucket: String,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Keep the objects written (by default each run deletes them after it is measured).
    #[arg(long)]
    pub keep: bool,
}

impl LoadArgs {
    fn limits(&self) -> Limits {
        let duration = match (self.duration, self.ops) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        Limits {
            concurrency: self.concurrency.max(1),
            duration,
            ops: self.ops,
            objects: self.objects,
            bucket: self.bucket.clone(),
            keep: self.keep,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 (path-style, plain http).
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// put, get, head, list, delete or mixed (70% GET / 30% PUT).
    #[arg(long, value_parser = Workload::parse)]
    pub op: Workload,
    /// Object size: 4KiB, 1MiB, 64MiB, ...
    #[arg(long, value_parser = parse_size, default_value = "4KiB")]
    pub size: u64,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Server process(es) whose peak RSS and CPU seconds to report (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Endpoint A (typically Strata).
    #[arg(long)]
    pub a: String,
    /// Endpoint B (typically the backend reached directly).
    #[arg(long)]
    pub b: String,
    /// Labels in the output.
    #[arg(long, default_value = "A")]
    pub a_name: String,
    #[arg(long, default_value = "B")]
    pub b_name: String,
    /// Credential for both endpoints unless --a-/--b- ones are given.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long)]
    pub a_access_key: Option<String>,
    #[arg(long)]
    pub a_secret_key: Option<String>,
    #[arg(long)]
    pub b_access_key: Option<String>,
    #[arg(long)]
    pub b_secret_key: Option<String>,
    /// Server process(es) of A to watch (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub a_pid: Vec<u32>,
    /// Server process(es) of B to watch (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub b_pid: Vec<u32>,
    /// Comma-separated OP:SIZE list, e.g. put:4KiB,get:4KiB,mixed:1MiB.
    #[arg(long, value_delimiter = ',', value_parser = Spec::parse, default_value = "put:4KiB,get:4KiB")]
    pub workloads: Vec<Spec>,
    /// Runs per endpoint and workload (A, B, A, B, ...).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print a markdown table instead of a plain one.
    #[arg(long)]
    pub markdown: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
}

/// The report of `strata bench run`.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub endpoint: String,
    pub bucket: String,
    pub workload: String,
    pub size: String,
    pub size_bytes: u64,
    pub concurrency: usize,
    pub rounds: u32,
    pub elapsed_s: f64,
    pub results: Vec<OpSummary>,
    pub errors: u64,
    pub server: Option<ServerUsage>,
    pub first_error: Option<String>,
}

impl RunReport {
    fn new(t: &Target, spec: Spec, limits: &Limits, rounds: u32, st: &RunStats) -> RunReport {
        let results = st.summary();
        RunReport {
            endpoint: t.endpoint.clone(),
            bucket: limits.bucket.clone(),
            workload: spec.workload.name().into(),
            size: format_size(spec.size),
            size_bytes: spec.size,
            concurrency: limits.concurrency,
            rounds,
            elapsed_s: st.elapsed.as_secs_f64(),
            errors: results.iter().map(|r| r.errors).sum(),
            results,
            server: st.usage.clone(),
            first_error: st.first_error.clone(),
        }
    }
}

/// A/B ratios for one operation of one workload. Latency ratios above 1 mean A is slower.
#[derive(Debug, Serialize)]
pub struct Ratios {
    pub op: &'static str,
    pub ops_per_s: Option<f64>,
    pub mb_per_s: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// A p99 minus B p99, in milliseconds.
    pub p99_diff_ms: f64,
}

pub fn ratios(a: &[OpSummary], b: &[OpSummary]) -> Vec<Ratios> {
    a.iter()
        .filter_map(|x| {
            let y = b.iter().find(|y| y.op == x.op)?;
            Some(Ratios {
                op: x.op,
                ops_per_s: ratio(x.ops_per_s, y.ops_per_s),
                mb_per_s: ratio(x.mb_per_s, y.mb_per_s),
                p50: ratio(x.latency_ms.p50, y.latency_ms.p50),
                p99: ratio(x.latency_ms.p99, y.latency_ms.p99),
                p99_diff_ms: x.latency_ms.p99 - y.latency_ms.p99,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct CompareEntry {
    pub workload: String,
    pub a: RunReport,
    pub b: RunReport,
    pub ratios: Vec<Ratios>,
}

#[derive(Debug, Serialize)]
pub struct CompareReport {
    pub a_name: String,
    pub b_name: String,
    pub a: String,
    pub b: String,
    pub rounds: u32,
    pub concurrency: usize,
    pub duration_s: Option<f64>,
    pub ops: Option<u64>,
    pub workloads: Vec<CompareEntry>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Entry point of `strata bench`.
pub fn main(args: BenchArgs) -> ExitCode {
    let result = match args.command {
        BenchCommand::Run(a) => cmd_run(*a),
        BenchCommand::Compare(a) => cmd_compare(*a),
        BenchCommand::Delta(a) => delta::cmd_delta(*a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let target = Target {
        name: "endpoint".into(),
        endpoint: a.endpoint.clone(),
        access_key: a.access_key.clone(),
        secret_key: a.secret_key.clone(),
        region: a.load.region.clone(),
        pids: a.pid.clone(),
    };
    let spec = Spec {
        workload: a.op,
        size: a.size,
    };
    let limits = a.load.limits();
    let st = runtime()?.block_on(load::run(&target, spec, &limits))?;
    let report = RunReport::new(&target, spec, &limits, 1, &st);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_run(&report);
    }
    if let Some(e) = &report.first_error {
        eprintln!("first error: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_run(r: &RunReport) {
    println!(
        "{} {} against {} (concurrency {}, {:.2}s)",
        r.workload, r.size, r.endpoint, r.concurrency, r.elapsed_s
    );
    println!(
        "{:<7} {:>9} {:>7} {:>11} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "op", "ops", "errors", "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for o in &r.results {
        let l = o.latency_ms;
        println!(
            "{:<7} {:>9} {:>7} {:>11.1} {:>10.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            o.op, o.ops, o.errors, o.ops_per_s, o.mb_per_s, l.p50, l.p90, l.p99, l.max
        );
    }
    if let Some(u) = &r.server {
        println!(
            "server pid(s) {:?}: peak RSS during the run {:.1} MiB (VmHWM since start {:.1} MiB), CPU {:.2}s",
            u.pids, u.peak_rss_mib, u.vm_hwm_mib, u.cpu_seconds
        );
    }
}

fn cmd_compare(a: CompareArgs) -> anyhow::Result<ExitCode> {
    let cred = |specific: &Option<String>, shared: &Option<String>, what: &str| {
        specific
            .clone()
            .or_else(|| shared.clone())
            .ok_or_else(|| anyhow::anyhow!("missing {what} (or --access-key/--secret-key for both)"))
    };
    let ta = Target {
        name: a.a_name.clone(),
        endpoint: a.a.clone(),
        access_key: cred(&a.a_access_key, &a.access_key, "--a-access-key")?,
        secret_key: cred(&a.a_secret_key, &a.secret_key, "--a-secret-key")?,
        region: a.load.region.clone(),
        pids: a.a_pid.clone(),
    };
    let tb = Target {
        name: a.b_name.clone(),
        endpoint: a.b.clone(),
        access_key: cred(&a.b_access_key, &a.access_key, "--b-access-key")?,
        secret_key: cred(&a.b_secret_key, &a.secret_key, "--b-secret-key")?,
        region: a.load.region.clone(),
        pids: a.b_pid.clone(),
    };
    let limits = a.load.limits();
    let rounds = a.rounds.max(1);
    let rt = runtime()?;
    let mut entries = Vec::new();
    for &spec in &a.workloads {
        let (mut sa, mut sb) = (RunStats::default(), RunStats::default());
        for round in 1..=rounds {
            for (t, acc) in [(&ta, &mut sa), (&tb, &mut sb)] {
                if !a.json {
                    eprintln!("[{} round {round}/{rounds}] {} ...", spec.label(), t.name);
                }
                acc.merge(rt.block_on(load::run(t, spec, &limits))?);
            }
        }
        let ra = RunReport::new(&ta, spec, &limits, rounds, &sa);
        let rb = RunReport::new(&tb, spec, &limits, rounds, &sb);
        let ratios = ratios(&ra.results, &rb.results);
        entries.push(CompareEntry {
            workload: spec.label(),
            a: ra,
            b: rb,
            ratios,
        });
    }
    let report = CompareReport {
        a_name: a.a_name,
        b_name: a.b_name,
        a: a.a,
        b: a.b,
        rounds,
        concurrency: limits.concurrency,
        duration_s: limits.duration.map(|d| d.as_secs_f64()),
        ops: limits.ops,
        workloads: entries,
    };
    if let Some(p) = &a.json_out {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("--json-out {}: {e}", p.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", compare_table(&report, a.markdown));
    }
    Ok(ExitCode::SUCCESS)
}

fn usage_cells(u: &Option<ServerUsage>) -> (String, String) {
    u.as_ref().map_or(("-".into(), "-".into()), |u| {
        (format!("{:.0}", u.peak_rss_mib), format!("{:.1}", u.cpu_seconds))
    })
}

/// The comparison as a plain or markdown table.
pub fn compare_table(r: &CompareReport, markdown: bool) -> String {
    let (an, bn) = (&r.a_name, &r.b_name);
    let head: Vec<String> = vec![
        "workload".into(),
        "op".into(),
        format!("{an} ops/s"),
        format!("{bn} ops/s"),
        "ops/s A/B".into(),
        format!("{an} MB/s"),
        format!("{bn} MB/s"),
        "MB/s A/B".into(),
        format!("{an} p50 ms"),
        format!("{bn} p50 ms"),
        "p50 A/B".into(),
        format!("{an} p99 ms"),
        format!("{bn} p99 ms"),
        "p99 A/B".into(),
        "errors A/B".into(),
        format!("{an} peak RSS MiB"),
        format!("{an} CPU s"),
        format!("{bn} peak RSS MiB"),
        format!("{bn} CPU s"),
    ];
    let mut rows = Vec::new();
    for e in &r.workloads {
        let (ra, ca) = usage_cells(&e.a.server);
        let (rb, cb) = usage_cells(&e.b.server);
        for x in &e.a.results {
            let Some(y) = e.b.results.iter().find(|y| y.op == x.op) else {
                continue;
            };
            let q = ratios(std::slice::from_ref(x), std::slice::from_ref(y));
            let q = &q[0];
            rows.push(vec![
                e.workload.clone(),
                x.op.to_string(),
                format!("{:.1}", x.ops_per_s),
                format!("{:.1}", y.ops_per_s),
                fmt_ratio(q.ops_per_s),
                format!("{:.2}", x.mb_per_s),
                format!("{:.2}", y.mb_per_s),
                fmt_ratio(q.mb_per_s),
                format!("{:.2}", x.latency_ms.p50),
                format!("{:.2}", y.latency_ms.p50),
                fmt_ratio(q.p50),
                format!("{:.2}", x.latency_ms.p99),
                format!("{:.2}", y.latency_ms.p99),
                fmt_ratio(q.p99),
                format!("{}/{}", x.errors, y.errors),
                ra.clone(),
                ca.clone(),
                rb.clone(),
                cb.clone(),
            ]);
        }
    }
    let mut out = String::new();
    if markdown {
        out.push_str(&format!("| {} |\n", head.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
        for row in rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    } else {
        let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |cells: &[String]| -> String {
            let s: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:>w$}", w = w[i]))
                .collect();
            format!("{}\n", s.join("  "))
        };
        out.push_str(&format!(
            "A = {an} ({}), B = {bn} ({}), {} round(s) each\n",
            r.a, r.b, r.rounds
        ));
        out.push_str(&line(&head));
        for row in rows {
            out.push_str(&line(&row));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &'static str, ops_s: f64, mb_s: f64, p50: f64, p99: f64) -> OpSummary {
        OpSummary {
            op: name,
            ops: 10,
            errors: 0,
            bytes: 0,
            ops_per_s: ops_s,
            mb_per_s: mb_s,
            latency_ms: Latency {
                p50,
                p90: p50,
                p99,
                max: p99,
            },
        }
    }

    #[test]
    fn ratio_math() {
        let a = [op("get", 800.0, 80.0, 2.0, 9.0), op("put", 100.0, 0.0, 4.0, 10.0)];
        let b = [op("put", 200.0, 0.0, 2.0, 5.0), op("get", 1000.0, 100.0, 1.0, 6.0)];
        let r = ratios(&a, &b);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].op, "get");
        assert_eq!(r[0].ops_per_s, Some(0.8));
        assert_eq!(r[0].mb_per_s, Some(0.8));
        assert_eq!(r[0].p50, Some(2.0));
        assert_eq!(r[0].p99, Some(1.5));
        assert_eq!(r[0].p99_diff_ms, 3.0);
        assert_eq!(r[1].op, "put");
        assert_eq!(r[1].ops_per_s, Some(0.5));
        assert_eq!(r[1].mb_per_s, None);
        // An op only one side has is left out.
        assert!(ratios(&a[..1], &b[..1]).is_empty());
    }

    #[test]
    fn cli_parses() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(subcommand)]
            c: BenchCommand,
        }
        let t = T::try_parse_from([
            "t",
            "compare",
            "--a",
            "http://a",
            "--b",
            "http://b",
            "--access-key",
            "k",
            "--secret-key",
            "s",
            "--workloads",
            "put:4KiB,get:64MiB,mixed:1MiB",
            "--rounds",
            "2",
            "--ops",
            "5",
            "--a-pid",
            "1,2",
        ])
        .unwrap();
        let BenchCommand::Compare(c) = t.c else { panic!() };
        assert_eq!(c.workloads.len(), 3);
        assert_eq!(
            c.workloads[1],
            Spec {
                workload: Workload::Get,
                size: 64 << 20
            }
        );
        assert_eq!(c.a_pid, vec![1, 2]);
        assert_eq!(c.load.limits().duration, None);
        assert_eq!(c.load.limits().ops, Some(5));
        let t = T::try_parse_from([
            "t",
            "run",
            "--endpoint",
            "http://a",
            "--access-key",
            "k",
            "--secret-key",
            "s",
            "--op",
            "mixed",
            "--size",
            "1MiB",
        ])
        .unwrap();
        let BenchCommand::Run(r) = t.c else { panic!() };
        assert_eq!(r.op, Workload::Mixed);
        assert_eq!(r.size, 1 << 20);
        assert_eq!(r.load.limits().duration, Some(Duration::from_secs(10)));
    }
}
