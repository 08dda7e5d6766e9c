"""Process harness and client helpers for the Strata end-to-end tests.

Everything here treats `strata` as a black box: it is started as a real
subprocess with a generated YAML config on ephemeral ports, probed over HTTP,
and stopped with SIGTERM (the exit code is checked).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STRATA_BIN = os.environ.get("STRATA_BIN", str(REPO / "target" / "debug" / "strata"))
REGION = "us-east-1"
# STRATA_E2E_ENDPOINT: run the suites' `server` tests against an already running deployment (for
# example one data plane of a cluster; see test_cluster.py) instead of starting one per module.
EXTERNAL_ENDPOINT = os.environ.get("STRATA_E2E_ENDPOINT", "").rstrip("/")
MODES = ["external"] if EXTERNAL_ENDPOINT else [
    m.strip() for m in os.environ.get("STRATA_E2E_MODES", "all,split,s3").split(",") if m.strip()]
START_TIMEOUT = float(os.environ.get("STRATA_E2E_START_TIMEOUT", "60"))
STOP_TIMEOUT = float(os.environ.get("STRATA_E2E_STOP_TIMEOUT", "30"))


@dataclass(frozen=True)
class Creds:
    access_key: str
    secret_key: str


ADMIN = Creds("AKADMIN01", "adminsecret01234")
SCOPED = Creds("AKSCOPED01", "scopedsecret0123")
# The third-party S3 server behind Strata in mode "s3".
BACKING = Creds("AKBACKING01", "backingsecret0123")
BACKING_BUCKET = "strata-backing"
SCOPED_BUCKET = "scoped-a"

# Every live deployment (anything with .name and .tail()), so that a failing test can show
# the server logs.
LIVE: list = []
# Lines shown in pytest's terminal summary (e.g. PEAK_RSS_MIB figures from test_memory.py).
SUMMARY: list[str] = []


# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------

def free_ports(n: int = 1) -> list[int]:
    """Ports the kernel hands out for port 0; all sockets held until all are chosen."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def unique_bucket(tag: str = "t") -> str:
    tag = "".join(c for c in tag.lower() if c.isalnum() or c == "-")[:30].strip("-") or "t"
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 5.0, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Plain GET; returns (status, lower-cased headers, body); status 0 on connection error."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
    except (OSError, urllib.error.URLError):
        return 0, {}, b""


# ---- checksums (independent pure-python implementations) -------------------

def _reflected_table(poly: int) -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_T = _reflected_table(0x82F63B78)
_CRC64NVME_T = _reflected_table(0x9A6C9329AC4BC9B5)


def crc32c(data: bytes) -> int:
    try:
        from awscrt import checksums  # fast path when available
        return checksums.crc32c(data)
    except ImportError:
        pass
    crc = 0xFFFFFFFF
    t = _CRC32C_T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc64nvme(data: bytes) -> int:
    try:
        from awscrt import checksums
        if hasattr(checksums, "crc64nvme"):
            return checksums.crc64nvme(data)
    except ImportError:
        pass
    crc = 0xFFFFFFFFFFFFFFFF
    t = _CRC64NVME_T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def checksum_b64(algorithm: str, data: bytes) -> str:
    a = algorithm.upper()
    if a == "CRC32":
        raw = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif a == "CRC32C":
        raw = crc32c(data).to_bytes(4, "big")
    elif a == "CRC64NVME":
        raw = crc64nvme(data).to_bytes(8, "big")
    elif a == "SHA1":
        raw = hashlib.sha1(data).digest()
    elif a == "SHA256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(algorithm)
    return base64.b64encode(raw).decode()


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

class StrataProc:
    """One `strata` OS process with stdout/stderr captured to files."""

    def __init__(self, name: str, args: list[str], cwd: Path, logdir: Path, env: dict | None = None,
                 program: str | None = None):
        self.name = name
        self.program = program
        self.args = args
        self.cwd = Path(cwd)
        self.logdir = Path(logdir)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.created_at = time.monotonic()
        self.starts = 0
        self.returncode: int | None = None

    @property
    def stdout_path(self) -> Path:
        return self.logdir / f"{self.name}.{self.starts}.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.logdir / f"{self.name}.{self.starts}.stderr.log"

    def start(self) -> None:
        if self.program is None and not os.path.exists(STRATA_BIN):
            raise RuntimeError(f"strata binary not found at {STRATA_BIN} (build with `cargo build -p strata`)")
        self.starts += 1
        self.logdir.mkdir(parents=True, exist_ok=True)
        env = dict(self.env if self.env is not None else os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [self.program or STRATA_BIN, *self.args],
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        finally:
            out.close()
            err.close()
        self.returncode = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stdout_text(self) -> str:
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 40) -> str:
        out = []
        for label, text in (("stdout", self.stdout_text()), ("stderr", self.stderr_text())):
            lines = text.splitlines()[-n:]
            out.append(f"--- {self.name} {label} (last {len(lines)} lines, {self.stdout_path.parent}) ---")
            out.extend(lines)
        if self.proc is not None and self.proc.poll() is not None:
            out.append(f"--- {self.name} exited with {self.proc.returncode} ---")
        return "\n".join(out)

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait; SIGKILL (and return -9) if it does not exit in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self.returncode = -9
                return -9
        self.returncode = self.proc.returncode
        return self.returncode

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def vm_hwm_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("VmHWM not found")


def wait_until(pred, timeout: float, interval: float = 0.1, procs: list[StrataProc] = (), what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited while waiting for {what}\n{p.tail(80)}")
        if time.monotonic() > deadline:
            tails = "\n".join(p.tail(80) for p in procs)
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}\n{tails}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# deployments
# ---------------------------------------------------------------------------

def render_config(
    *,
    data_dir: Path,
    s3_port: int,
    grpc_port: int,
    secret: str = "${STRATA_CLUSTER_SECRET}",
    domain: str | None = None,
    credentials: tuple[tuple[Creds, list[str] | None], ...] = ((ADMIN, None), (SCOPED, [SCOPED_BUCKET])),
    log_level: str = "info",
    s3_backend: str | None = None,
    extra_yaml: str = "",
) -> str:
    lines = [
        f"data_dir: {data_dir}",
        "server:",
        f"  listen: 127.0.0.1:{s3_port}",
        f"  region: {REGION}",
    ]
    if domain:
        lines.append(f"  domain: {domain}")
    lines += [
        "  clock_skew_secs: 900",
        "control_plane:",
        f"  listen: 127.0.0.1:{grpc_port}",
        f"  url: http://127.0.0.1:{grpc_port}",
        "cluster:",
        f'  secret: "{secret}"',
        "backends:",
        s3_backend or f"  - {{type: local, id: local, path: {data_dir / 'objects'}}}",
        "credentials:",
    ]
    for creds, buckets in credentials:
        if buckets is None:
            lines.append(
                f"  - {{access_key_id: {creds.access_key}, secret_access_key: {creds.secret_key}, unrestricted: true}}"
            )
        else:
            bl = ", ".join(buckets)
            lines.append(
                f"  - {{access_key_id: {creds.access_key}, secret_access_key: {creds.secret_key}, buckets: [{bl}]}}"
            )
    lines.append(f"logging: {{format: json, level: {log_level}}}")
    return "\n".join(lines) + "\n" + extra_yaml


def child_env(extra: dict | None = None) -> dict:
    # No STRATA_* (the tests pass config explicitly) and no AWS_* (e.g. AWS_CA_BUNDLE breaks rclone,
    # AWS_PROFILE would redirect the CLI); client helpers set the AWS_* they need.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATA_", "AWS_"))}
    env.update(extra or {})
    return env


class External:
    """A deployment this suite did not start (`STRATA_E2E_ENDPOINT`): only its S3 endpoint."""

    mode = "external"

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.hostport = endpoint.split("://", 1)[-1]
        self.name = f"external@{self.hostport}"
        self.procs: list = []

    def tail(self, n: int = 40) -> str:
        return f"(external deployment at {self.endpoint}: its logs are its owner's)"

    def stop_and_check(self, cleanup_data: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return f"External({self.endpoint})"


class Strata:
    """A Strata deployment: mode 'all' (one process) or 'split' (controlplane + dataplane)."""

    def __init__(self, mode: str, root: Path, *, domain: str | None = None,
                 dataplane_secret: str | None = None, name: str | None = None,
                 backends_yaml: str | None = None, extra_yaml: str = ""):
        """`backends_yaml`: the list items under `backends:` (e.g. from `multi.S3sFs.yaml`),
        replacing the default local disk; `extra_yaml`: top-level sections appended to the
        config (e.g. `placement:`, `resilience:`)."""
        assert mode in ("all", "split", "s3"), mode
        self.mode = mode
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.name = name or f"{mode}@{self.root.name}"
        self.created_at = time.monotonic()
        self.data_dir = self.root / "data"
        self.logdir = self.root / "logs"
        self.s3_port, self.grpc_port = free_ports(2)
        self.cluster_secret = uuid.uuid4().hex + uuid.uuid4().hex  # 64 chars
        self.domain = domain
        self.config_path = self.root / "strata.yaml"
        env = child_env({"STRATA_CLUSTER_SECRET": self.cluster_secret})
        # Mode "s3": one process, like "all", but the objects live in a third-party
        # S3 server (s3s-fs) that Strata reaches as an S3 backend.
        self.backing: StrataProc | None = None
        s3_backend = None
        if mode == "s3":
            (fs_port,) = free_ports(1)
            fs_root = self.root / "s3s-fs"
            fs_root.mkdir(parents=True, exist_ok=True)
            self.backing_endpoint = f"http://127.0.0.1:{fs_port}"
            self.backing = StrataProc(
                "s3s-fs",
                ["--host", "127.0.0.1", "--port", str(fs_port), "--access-key", BACKING.access_key,
                 "--secret-key", BACKING.secret_key, str(fs_root)],
                self.root, self.logdir, env, program=shutil.which("s3s-fs") or "s3s-fs")
            s3_backend = (f"  - {{type: s3, id: fs1, endpoint: '{self.backing_endpoint}', bucket: {BACKING_BUCKET}, "
                          f"prefix: 'strata/', access_key_id: {BACKING.access_key}, "
                          f"secret_access_key: {BACKING.secret_key}}}")
        if backends_yaml is not None:
            s3_backend = backends_yaml.rstrip("\n")
        self.config_path.write_text(
            render_config(data_dir=self.data_dir, s3_port=self.s3_port, grpc_port=self.grpc_port, domain=domain,
                          s3_backend=s3_backend, extra_yaml=extra_yaml)
        )
        self.procs: list[StrataProc] = []
        if mode in ("all", "s3"):
            self.main = StrataProc("strata-all", ["serve", "--role", "all", "--config", str(self.config_path)],
                                   self.root, self.logdir, env)
            self.procs = [self.main]
            self.control = None
        else:
            self.control = StrataProc("strata-controlplane",
                                      ["serve", "--role", "controlplane", "--config", str(self.config_path)],
                                      self.root, self.logdir, env)
            dp_config = self.config_path
            if dataplane_secret is not None:
                dp_config = self.root / "strata-dataplane.yaml"
                dp_config.write_text(
                    render_config(data_dir=self.data_dir, s3_port=self.s3_port, grpc_port=self.grpc_port,
                                  domain=domain, secret=dataplane_secret, s3_backend=s3_backend,
                                  extra_yaml=extra_yaml)
                )
            self.main = StrataProc("strata-dataplane",
                                   ["serve", "--role", "dataplane", "--config", str(dp_config)],
                                   self.root, self.logdir, env)
            self.procs = [self.control, self.main]

    # ---- endpoints ------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    # ---- lifecycle -------------------------------------------------------
    def start(self, wait_ready: bool = True) -> "Strata":
        if self not in LIVE:
            LIVE.append(self)
        if self.backing is not None and (self.backing.proc is None or self.backing.proc.poll() is not None):
            self.backing.start()
            port = int(self.backing_endpoint.rsplit(":", 1)[1])
            wait_until(lambda: tcp_open(port), START_TIMEOUT, procs=[self.backing], what="s3s-fs port")
            boto3_client(self.backing_endpoint, BACKING).create_bucket(Bucket=BACKING_BUCKET)
        if self.control is not None:
            self.control.start()
            wait_until(lambda: tcp_open(self.grpc_port), START_TIMEOUT, procs=[self.control],
                       what=f"control plane gRPC port {self.grpc_port}")
        self.main.start()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_until(lambda: http_get(f"{self.endpoint}/ready", timeout=2)[0] == 200, timeout,
                   procs=self.procs, what=f"{self.endpoint}/ready == 200")

    def stop(self) -> dict[str, int]:
        """SIGTERM the dataplane/all process first, then the control plane. Returns exit codes."""
        codes = {}
        for p in [self.main] + ([self.control] if self.control else []):
            codes[p.name] = p.stop()
        return codes

    def stop_backing(self) -> None:
        if self.backing is not None:
            self.backing.stop()

    def stop_and_check(self, cleanup_data: bool = True) -> None:
        tails = "\n".join(p.tail(60) for p in self.procs)
        codes = self.stop()
        self.stop_backing()
        if self in LIVE:
            LIVE.remove(self)
        if cleanup_data and all(c == 0 for c in codes.values()):
            shutil.rmtree(self.data_dir, ignore_errors=True)
        bad = {k: v for k, v in codes.items() if v != 0}
        assert not bad, f"strata did not exit 0 on SIGTERM: {bad}\n{tails}"

    def restart(self) -> None:
        codes = self.stop()
        bad = {k: v for k, v in codes.items() if v != 0}
        assert not bad, f"strata did not exit 0 on SIGTERM during restart: {bad}\n" + "\n".join(
            p.tail(60) for p in self.procs)
        self.start()

    def tail(self, n: int = 40) -> str:
        return "\n".join(p.tail(n) for p in self.procs)

    def __repr__(self) -> str:
        return f"Strata({self.mode}, {self.endpoint})"


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

def boto3_client(endpoint: str, creds: Creds = ADMIN, *, addressing_style: str = "path", **config_kw):
    """A boto3 S3 client with default checksum behaviour (request_checksum_calculation untouched)."""
    import boto3
    from botocore.config import Config

    kw = {
        "s3": {"addressing_style": addressing_style},
        "retries": {"mode": "standard", "max_attempts": 1},
        "connect_timeout": 10,
        "read_timeout": 300,
    }
    kw.update(config_kw)
    cfg = Config(**kw)
    session = boto3.session.Session(
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint, config=cfg)


def force_trailer_checksums(client) -> None:
    """Make botocore send flexible checksums the way it does over TLS: an aws-chunked body
    (Transfer-Encoding: chunked, x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER) with the
    checksum in a trailer. Over plain http botocore would otherwise put the checksum in a header."""

    def handler(params, **_kw):
        ck = params.get("context", {}).get("checksum", {})
        alg = ck.get("request_algorithm")
        if isinstance(alg, dict) and alg.get("in") == "header":
            alg["in"] = "trailer"

    for op in ("PutObject", "UploadPart"):
        client.meta.events.register(f"before-call.s3.{op}", handler)


def client_error(excinfo) -> tuple[int, str]:
    """(http status, error code) of a botocore ClientError."""
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r.get("Error", {}).get("Code", "")


def aws_cli_base() -> list[str]:
    try:
        import awscli  # noqa: F401
        return [sys.executable, "-m", "awscli"]
    except ImportError:
        exe = shutil.which("aws")
        if not exe:
            raise RuntimeError("aws CLI not installed (scripts/install-deps.sh)")
        return [exe]


def aws_env(creds: Creds = ADMIN, config_file: str | None = None) -> dict:
    env = child_env({
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": config_file or "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "1",
    })
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return env


def run(cmd: list[str], *, env: dict | None = None, check: bool = True, timeout: float = 900,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    cp = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(
            f"command failed ({cp.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout:\n{cp.stdout[-4000:]}\nstderr:\n{cp.stderr[-4000:]}"
        )
    return cp


def aws(server: Strata, *args: str, creds: Creds = ADMIN, check: bool = True, config_file: str | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess:
    return run([*aws_cli_base(), "--endpoint-url", server.endpoint, *args],
               env=aws_env(creds, config_file), check=check, timeout=timeout)


def rclone_env(server: Strata, creds: Creds, config_path: Path) -> dict:
    config_path.touch()
    return child_env({
        "RCLONE_CONFIG": str(config_path),
        "RCLONE_CONFIG_STRATA_TYPE": "s3",
        "RCLONE_CONFIG_STRATA_PROVIDER": "Other",
        "RCLONE_CONFIG_STRATA_ENDPOINT": server.endpoint,
        "RCLONE_CONFIG_STRATA_ACCESS_KEY_ID": creds.access_key,
        "RCLONE_CONFIG_STRATA_SECRET_ACCESS_KEY": creds.secret_key,
        "RCLONE_CONFIG_STRATA_REGION": REGION,
        "RCLONE_CONFIG_STRATA_FORCE_PATH_STYLE": "true",
    })


def s3cmd_args(server: Strata, creds: Creds = ADMIN) -> list[str]:
    return [
        "s3cmd", "-c", "/dev/null",
        f"--host={server.hostport}",
        f"--host-bucket={server.hostport}",
        "--no-ssl",
        f"--access_key={creds.access_key}",
        f"--secret_key={creds.secret_key}",
        f"--region={REGION}",
    ]


def write_pattern_file(path: Path, size: int) -> str:
    """Write `size` bytes quickly: a 1 MiB random block, each MiB stamped with its index.
    Returns the sha256 hex digest."""
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    written = 0
    i = 0
    with open(path, "wb") as f:
        while written < size:
            n = min(1 << 20, size - written)
            chunk = (i.to_bytes(8, "big") + block[8:])[:n]
            f.write(chunk)
            h.update(chunk)
            written += n
            i += 1
    return h.hexdigest()
