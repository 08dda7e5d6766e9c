//! Black-box harness: runs a real `strata` binary on free loopback ports with a
//! generated YAML config in a temporary directory, and stops it with SIGTERM on drop.
//!
//! The binary is not built by this crate (`CARGO_BIN_EXE_*` does not cross packages):
//! run `cargo build -p strata` first, or point `STRATA_BIN` at one.

mod client;
mod proc;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use proc::{Proc, http_get, http_get_status, tcp_open};
pub use proc::{free_ports, strata_bin};

/// The one credential every deployment is configured with (unrestricted).
pub const ACCESS_KEY: &str = "AKTEST01";
pub const SECRET_KEY: &str = "testsecret0123456";
pub const REGION: &str = "us-east-1";

/// How long a deployment gets to answer `GET /ready` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const CLUSTER_SECRET: &str = "strata-tests-cluster-secret-0123456789abcdef";

/// How a deployment is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `serve --role all` process.
    All,
    /// `serve --role controlplane` plus `serve --role dataplane` talking gRPC.
    Split,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::All => "all",
            Mode::Split => "split",
        })
    }
}

/// A running Strata deployment. Dropping it SIGTERMs its processes (data plane first).
pub struct Strata {
    mode: Mode,
    s3_port: u16,
    /// In stop order: the process serving S3 first, then the control plane.
    procs: Vec<Proc>,
    // Declared last: removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl Strata {
    pub fn start(mode: Mode) -> Strata {
        match mode {
            Mode::All => Strata::start_all(),
            Mode::Split => Strata::start_split(),
        }
    }

    /// One process with every role.
    pub fn start_all() -> Strata {
        Strata::start_all_with(|_| String::new())
    }

    /// One process with every role, with more top-level YAML (e.g. `backends:`,
    /// `placement:`) appended to the generated config. `extra_yaml` gets the
    /// deployment's temporary directory, to place backend directories under it.
    pub fn start_all_with(extra_yaml: impl FnOnce(&Path) -> String) -> Strata {
        let dir = temp_dir();
        let [s3_port] = ports::<1>();
        let yaml = format!(
            "{}server:\n  listen: 127.0.0.1:{s3_port}\n  region: {REGION}\n  shutdown_grace_secs: 5\n{}{}",
            data_dir_yaml(dir.path()),
            credentials_yaml(),
            extra_yaml(dir.path())
        );
        let config = write_config(dir.path(), "strata.yaml", &yaml);
        let mut s = Strata {
            mode: Mode::All,
            s3_port,
            procs: Vec::new(),
            dir,
        };
        s.spawn("all", &config);
        s.wait_ready();
        s
    }

    /// A control plane and a data plane sharing `data_dir`, connected over gRPC.
    pub fn start_split() -> Strata {
        let dir = temp_dir();
        let [s3_port, grpc_port] = ports::<2>();
        let cp_yaml = format!(
            "{}control_plane:\n  listen: 127.0.0.1:{grpc_port}\ncluster:\n  secret: \"{CLUSTER_SECRET}\"\n{}",
            data_dir_yaml(dir.path()),
            credentials_yaml()
        );
        let dp_yaml = format!(
            "{}server:\n  listen: 127.0.0.1:{s3_port}\n  region: {REGION}\n  shutdown_grace_secs: 5\n\
             control_plane:\n  url: http://127.0.0.1:{grpc_port}\ncluster:\n  secret: \"{CLUSTER_SECRET}\"\n",
            data_dir_yaml(dir.path()),
        );
        let cp_config = write_config(dir.path(), "controlplane.yaml", &cp_yaml);
        let dp_config = write_config(dir.path(), "dataplane.yaml", &dp_yaml);
        let mut s = Strata {
            mode: Mode::Split,
            s3_port,
            procs: Vec::new(),
            dir,
        };
        s.spawn("controlplane", &cp_config);
        s.wait_for(
            || tcp_open(grpc_port),
            "the control plane gRPC port to accept connections",
        );
        s.spawn("dataplane", &dp_config);
        // Stop order: data plane first.
        s.procs.reverse();
        s.wait_ready();
        s
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn port(&self) -> u16 {
        self.s3_port
    }

    /// Status and body of an unsigned `GET path` on the S3 port (e.g.
    /// `/status`, `/metrics`); panics when the request fails.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.s3_port, path).unwrap_or_else(|| panic!("GET {path} failed\n{}", self.logs(40)))
    }

    /// The temporary directory holding configs, logs and `data/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `n` log lines of every process.
    pub fn logs(&self, n: usize) -> String {
        self.procs.iter().map(|p| p.tail(n)).collect()
    }

    /// SIGTERMs every process (data plane first) and returns each one's exit status.
    pub fn stop(&mut self) -> Vec<(String, ExitStatus)> {
        self.procs.iter_mut().map(|p| (p.name.clone(), p.stop())).collect()
    }

    fn spawn(&mut self, role: &str, config: &Path) {
        let config = config.to_str().expect("utf-8 temp path");
        let args = ["serve", "--role", role, "--config", config];
        let p = Proc::spawn(role, &args, self.dir.path(), self.dir.path());
        self.procs.push(p);
    }

    fn wait_ready(&mut self) {
        let port = self.s3_port;
        self.wait_for(|| http_get_status(port, "/ready") == Some(200), "GET /ready == 200");
    }

    /// Polls `pred` until true; panics with the logs if a process exits or time runs out.
    fn wait_for(&mut self, mut pred: impl FnMut() -> bool, what: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if pred() {
                return;
            }
            let died = self
                .procs
                .iter_mut()
                .find_map(|p| p.exited().map(|s| (p.name.clone(), s)));
            if let Some((name, status)) = died {
                panic!("{name} exited ({status}) while waiting for {what}\n{}", self.logs(60));
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {READY_TIMEOUT:?} waiting for {what}\n{}",
                    self.logs(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("strata ({} mode) logs:\n{}", self.mode, self.logs(40));
        }
        self.stop();
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-tests-")
        .tempdir()
        .expect("create a temp dir")
}

fn ports<const N: usize>() -> [u16; N] {
    free_ports(N).try_into().expect("N ports")
}

fn data_dir_yaml(root: &Path) -> String {
    let data: PathBuf = root.join("data");
    format!("data_dir: \"{}\"\n", data.display())
}

fn credentials_yaml() -> String {
    format!("credentials:\n  - {{access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}, unrestricted: true}}\n")
}

fn write_config(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write the config file");
    path
}
