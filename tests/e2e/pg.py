"""Throwaway PostgreSQL clusters and Redis servers for the e2e tests.

`Postgres` runs `initdb` + `pg_ctl` on a free port (as `nobody` when run as root, because initdb
refuses root), `Redis` runs `redis-server` without persistence. Both can be stopped, killed and
restarted on the same port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from harness import free_port, tcp_open, wait_until

PG_USER = "nobody"


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_pg_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *args] if _is_root() else args


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port."""

    def __init__(self) -> None:
        # Not under pytest's tmp dir: that is mode 700 and `nobody` could not reach it.
        self.base = Path(tempfile.mkdtemp(prefix="strata-e2e-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.pid: int | None = None

    def _run(self, args: list[str], what: str) -> None:
        cp = subprocess.run(_as_pg_user(args), capture_output=True, text=True, timeout=120)
        assert cp.returncode == 0, f"{what} failed:\n{cp.stdout}\n{cp.stderr}\n{self.log()}"

    def log(self) -> str:
        try:
            return (self.base / "log").read_text()[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            pytest.fail("`initdb`/`pg_ctl` are not on PATH: install PostgreSQL 15")
        self.data.mkdir()
        if _is_root():
            subprocess.run(["chown", "-R", f"{PG_USER}:", str(self.base)], check=True)
        self._run(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
                   "-E", "UTF8", "--locale=C"], "initdb")
        opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c shared_buffers=16MB -c fsync=off")
        self._run(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "log"), "-w", "start"],
                  "pg_ctl start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.data.exists() and (self.data / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self.data), "stop", "-m", "fast", "-w"], "pg_ctl stop")
        if self.pid is not None:
            deadline = time.monotonic() + 10
            while _pid_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _pid_alive(self.pid), f"postmaster {self.pid} still running"
        shutil.rmtree(self.base, ignore_errors=True)

    def pause(self) -> None:
        """Stops the server (fast shutdown) but keeps the data directory, for `resume`."""
        self._run(["pg_ctl", "-D", str(self.data), "stop", "-m", "fast", "-w"], "pg_ctl stop")
        if self.pid is not None:
            deadline = time.monotonic() + 10
            while _pid_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def resume(self) -> None:
        """Starts a paused server again on the same port, with the same data."""
        opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c shared_buffers=16MB -c fsync=off")
        self._run(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "log"), "-w", "start"],
                  "pg_ctl start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def psql(self, sql: str, db: str = "postgres") -> str:
        if shutil.which("psql") is None:
            pytest.skip("psql is not installed")
        cp = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                             "-v", "ON_ERROR_STOP=1", "-tAc", sql], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, f"psql {sql!r}: {cp.stderr}"
        return cp.stdout.strip()

    def create_database(self) -> str:
        name = f"strata_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return name



def db_yaml(pg: Postgres, db: str) -> str:
    """A `database:` section pointing at `db` in `pg`."""
    return f"database: {{host: 127.0.0.1, port: {pg.port}, user: postgres, dbname: {db}}}\n"


class Redis:
    """A `redis-server` on 127.0.0.1:port with persistence off."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="strata-e2e-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "Redis":
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("`redis-server` is not on PATH: apt-get install -y redis-server")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.base)],
            stdout=open(self.base / "log", "ab"), stderr=subprocess.STDOUT)
        wait_until(lambda: tcp_open(self.port), 10, what=f"redis-server on {self.port}")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
