//! A throwaway PostgreSQL cluster for the tests, shared by every test process
//! of this binary (nextest runs one process per test).
//!
//! The cluster lives in `$TMPDIR/strata-store-pg-<uid>/`. A process that needs
//! it takes an exclusive `flock` on `lock`, starts the cluster if it is not
//! running (`initdb` + `pg_ctl start` on a free 127.0.0.1 port, as a non-root
//! user when run as root), then holds a *shared* lock until it exits (the
//! kernel drops it with the process, even on a panic or a kill). A watchdog
//! process started with the cluster polls for the exclusive lock; once no test
//! process has held the shared lock for a few seconds, it stops the postmaster
//! and deletes the data directory. Each test then gets its own database.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running cluster, as seen by this process.
pub struct Cluster {
    pub port: u16,
    /// Held (shared) for the life of the process.
    _lock: File,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// `true` when the PostgreSQL tests are to be skipped (`STRATA_SKIP_PG=1`).
pub fn skipped() -> bool {
    std::env::var("STRATA_SKIP_PG").is_ok_and(|v| v == "1")
}

/// The shared cluster, started when needed. Panics with a clear message when
/// PostgreSQL is not installed.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| start().unwrap_or_else(|e| panic!("cannot start the test PostgreSQL: {e}")))
}

/// A connection URL for database `db` of the shared cluster.
pub fn url(db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{db}", cluster().port)
}

fn base_dir() -> PathBuf {
    // SAFETY-free way to get the uid: the owner of /proc/self.
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    std::env::temp_dir().join(format!("strata-store-pg-{}", uid.unwrap_or(0)))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// The user the server runs as when we are root (initdb refuses root).
const PG_USER: &str = "nobody";

/// A command that runs `program` as the cluster's user.
fn as_pg_user(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_USER, "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

fn running_port(base: &Path) -> Option<u16> {
    let port: u16 = std::fs::read_to_string(base.join("port")).ok()?.trim().parse().ok()?;
    (base.join("data/postmaster.pid").exists() && port_open(port)).then_some(port)
}

fn start() -> Result<Cluster, String> {
    if Command::new("initdb").arg("--version").output().is_err() {
        return Err(
            "`initdb` is not on PATH: install PostgreSQL 15 (initdb, pg_ctl, postgres), \
                    or set STRATA_SKIP_PG=1 to skip the PostgreSQL tests"
                .into(),
        );
    }
    let base = base_dir();
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let lock_path = base.join("lock");
    loop {
        let lock = File::create(&lock_path).map_err(|e| format!("open {}: {e}", lock_path.display()))?;
        lock.lock().map_err(|e| format!("lock: {e}"))?;
        if running_port(&base).is_none() {
            boot(&base)?;
        }
        // Downgrade to shared; the watchdog may win the gap, so check again.
        lock.unlock().map_err(|e| format!("unlock: {e}"))?;
        lock.lock_shared().map_err(|e| format!("lock: {e}"))?;
        if let Some(port) = running_port(&base) {
            return Ok(Cluster { port, _lock: lock });
        }
    }
}

/// initdb, start and watchdog. Called with the exclusive lock held.
fn boot(base: &Path) -> Result<(), String> {
    let data = base.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(base.join("port"));
    std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg(format!("{PG_USER}:")).arg(base).arg(&data);
                c
            },
            "chown",
        )?;
    }
    let mut initdb = as_pg_user("initdb");
    initdb.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    run(initdb, "initdb")?;
    let port = free_port()?;
    let mut pg_ctl = as_pg_user("pg_ctl");
    pg_ctl
        .arg("-D")
        .arg(&data)
        .arg("-o")
        .arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            data.display()
        ))
        .arg("-l")
        .arg(data.join("log"))
        .args(["-w", "start"]);
    pg_ctl.stdout(Stdio::null());
    run(pg_ctl, "pg_ctl start")?;
    std::fs::write(base.join("port"), port.to_string()).map_err(|e| format!("write port: {e}"))?;
    spawn_watchdog(base, &data)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !port_open(port) {
        if Instant::now() > deadline {
            return Err(format!("postgres did not listen on {port}; see {}/log", data.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Stops the cluster once no test process has held the lock for ~3 s.
fn spawn_watchdog(base: &Path, data: &Path) -> Result<(), String> {
    let stop = if is_root() {
        format!(
            "runuser -u {PG_USER} -- pg_ctl -D '{}' -m immediate stop",
            data.display()
        )
    } else {
        format!("pg_ctl -D '{}' -m immediate stop", data.display())
    };
    let script = format!(
        "idle=0; while sleep 0.5; do \
           if flock -n -x -E 75 '{lock}' true; then idle=$((idle+1)); else idle=0; fi; \
           if [ $idle -ge 6 ]; then \
             flock -n -x -E 75 '{lock}' sh -c \"{stop} >/dev/null 2>&1; rm -rf '{data}' '{base}/port'\" && exit 0; \
             idle=0; \
           fi; \
         done",
        lock = base.join("lock").display(),
        data = data.display(),
        base = base.display(),
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn watchdog: {e}"))?;
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("free port: {e}"))
}

/// A fresh, empty database on the shared cluster; returns its URL.
pub async fn fresh_database() -> String {
    let admin = url("postgres");
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL at {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    url(&name)
}
