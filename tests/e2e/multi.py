"""Several third-party S3 servers (s3s-fs) as Strata backends.

`S3sFs` is one backend process on its own port and root directory. It can be
stopped, killed and restarted on the same port (breaker and failover tests),
and inspected directly, without Strata (placement tests check where the bytes
landed on the backends themselves).

    fs = [S3sFs(tmp_path / f"fs{i}") for i in range(3)]
    for f in fs: f.start()
    yaml = "\n".join(f.yaml(f"fs{i}", quota_bytes=4096) for i, f in enumerate(fs))
    strata = Strata("all", tmp_path / "strata", backends_yaml=yaml,
                    extra_yaml="placement: {routing_strategy: spread}\n").start()
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from harness import (
    BACKING,
    LIVE,
    START_TIMEOUT,
    StrataProc,
    boto3_client,
    child_env,
    free_port,
    tcp_open,
    wait_until,
)

PREFIX = "strata/"


class S3sFs:
    """One s3s-fs process serving one bucket."""

    def __init__(self, root: Path, bucket: str = "backing", name: str | None = None):
        self.root = Path(root)
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        self.port = free_port()
        self.name = name or f"s3s-fs@{self.root.name}"
        self.proc = StrataProc(
            self.name,
            ["--host", "127.0.0.1", "--port", str(self.port), "--access-key", BACKING.access_key,
             "--secret-key", BACKING.secret_key, str(self.data)],
            self.root, self.root / "logs", child_env(), program=shutil.which("s3s-fs") or "s3s-fs")
        self.created_at = self.proc.created_at

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3sFs":
        if self not in LIVE:
            LIVE.append(self)
        self.proc.start()
        wait_until(lambda: tcp_open(self.port), START_TIMEOUT, procs=[self.proc], what=f"{self.name} port")
        if not (self.data / self.bucket).exists():
            self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        self.proc.stop()
        if self in LIVE:
            LIVE.remove(self)

    def kill(self) -> None:
        """SIGKILL: the backend vanishes mid-request, as in a crash."""
        self.proc.signal(signal.SIGKILL)
        if self.proc.proc is not None:
            self.proc.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail(self, n: int = 40) -> str:
        return self.proc.tail(n)

    def client(self):
        return boto3_client(self.endpoint, BACKING)

    def yaml(self, backend_id: str, **limits) -> str:
        """One `backends:` list item for Strata's config. `limits` go under `limits:`
        (quota_bytes, max_object_size, api_request_limit, egress_byte_limit, ...)."""
        item = (f"  - {{type: s3, id: {backend_id}, endpoint: '{self.endpoint}', bucket: {self.bucket}, "
                f"prefix: '{PREFIX}', access_key_id: {BACKING.access_key}, "
                f"secret_access_key: {BACKING.secret_key}, max_attempts: 1")
        if limits:
            item += ", limits: {" + ", ".join(f"{k}: {v}" for k, v in limits.items()) + "}"
        return item + "}"

    def objects(self) -> dict[str, int]:
        """Every blob Strata stored here (key under the prefix -> size), read from
        the backend's own directory, so it works while the server is down too."""
        base = self.data / self.bucket / PREFIX.rstrip("/")
        out = {}
        if base.exists():
            for p in base.rglob("*"):
                if p.is_file() and not p.name.startswith(".") and "s3s-fs" not in str(p.relative_to(base)):
                    out[str(p.relative_to(base))] = p.stat().st_size
        return out

    def head(self, key: str) -> dict:
        """HeadObject of one blob through the backend's S3 API (metadata included)."""
        return self.client().head_object(Bucket=self.bucket, Key=PREFIX + key)

    def __repr__(self) -> str:
        return f"S3sFs({self.endpoint})"
