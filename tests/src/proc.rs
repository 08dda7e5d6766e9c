//! One `strata` OS process, plus the small network helpers the harness needs.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a process gets to exit after SIGTERM before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The `strata` binary: `$STRATA_BIN`, else `strata` next to this test binary's
/// `deps/` directory (the same target dir), else `<workspace>/target/debug/strata`.
pub fn strata_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("strata")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return p;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/strata")
}

/// `n` distinct ports that were free a moment ago (all listeners held until all are chosen).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

pub fn tcp_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Status code of a plain `GET path` on 127.0.0.1:port; `None` when the connection fails.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Status code and body of a plain (unsigned) `GET path` on 127.0.0.1:port;
/// `None` when the connection or the response fails.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let resp = String::from_utf8(resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A running `strata` child with stdout/stderr captured to files in `logdir`.
pub struct Proc {
    pub name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    exit: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], cwd: &Path, logdir: &Path) -> Proc {
        let bin = strata_bin();
        assert!(
            bin.is_file(),
            "strata binary not found at {} (run `cargo build -p strata` first, or set STRATA_BIN)",
            bin.display()
        );
        let stdout = logdir.join(format!("{name}.stdout.log"));
        let stderr = logdir.join(format!("{name}.stderr.log"));
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout log"))
            .stderr(File::create(&stderr).expect("create stderr log"))
            .env("RUST_BACKTRACE", "1");
        // The child reads only its config file: no STRATA_CONFIG & co. from the test environment.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("STRATA_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Proc {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
            exit: None,
        }
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(s) = self.exited() {
            return s;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(s) = self.exited() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for a killed child");
        self.exit = Some(status);
        status
    }

    /// The last `n` lines of stdout and stderr, labelled.
    pub fn tail(&self, n: usize) -> String {
        let mut out = String::new();
        for (label, path) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            out.push_str(&format!("--- {} {label} ({}) ---\n", self.name, path.display()));
            for l in &lines[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        if let Some(s) = self.exit {
            out.push_str(&format!("--- {} exited: {s} ---\n", self.name));
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
