"""Strata with its metadata in a real PostgreSQL 15 (issue 6, item 1).

A module fixture starts a throwaway cluster (`initdb` + `pg_ctl` on a free port, as `nobody`
when run as root, because initdb refuses root) and stops it at the end. Each deployment gets
its own database and is configured with the `database:` fields (host/port/user/dbname),
which imply PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from harness import (
    STRATA_BIN,
    Strata,
    StrataProc,
    boto3_client,
    child_env,
    free_port,
    md5_hex,
    multipart_etag,
    render_config,
    unique_bucket,
)

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


@pytest.fixture(scope="module")
def pg():
    cluster = Postgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _db_yaml(pg: Postgres, db: str) -> str:
    return f"database: {{host: 127.0.0.1, port: {pg.port}, user: postgres, dbname: {db}}}\n"


def _body(resp) -> bytes:
    return resp["Body"].read()


@pytest.mark.parametrize("mode", ["all", "split"])
def test_s3_round_trip_with_catalog_in_postgres(tmp_path, pg, mode):
    db = pg.create_database()
    s = Strata(mode, tmp_path / mode, extra_yaml=_db_yaml(pg, db)).start()
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("pg")
        c.create_bucket(Bucket=bucket)
        small = {f"k{i}": os.urandom(1000 + i) for i in range(3)}
        for k, v in small.items():
            c.put_object(Bucket=bucket, Key=k, Body=v)
        for k, v in small.items():
            assert _body(c.get_object(Bucket=bucket, Key=k)) == v
        c.delete_object(Bucket=bucket, Key="k0")
        del small["k0"]

        parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
        up = c.create_multipart_upload(Bucket=bucket, Key="big")
        etags = [
            c.upload_part(Bucket=bucket, Key="big", UploadId=up["UploadId"], PartNumber=i + 1, Body=p)["ETag"]
            for i, p in enumerate(parts)
        ]
        done = c.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"ETag": e, "PartNumber": i + 1} for i, e in enumerate(etags)]})
        assert done["ETag"] == multipart_etag(parts)
        expected = {**small, "big": b"".join(parts)}

        def check_all() -> None:
            listed = c.list_objects_v2(Bucket=bucket)
            assert sorted(o["Key"] for o in listed.get("Contents", [])) == sorted(expected)
            for k, v in expected.items():
                got = c.get_object(Bucket=bucket, Key=k)
                assert md5_hex(_body(got)) == md5_hex(v), k

        check_all()
        # The catalog is in PostgreSQL, not in a SQLite file under data_dir.
        assert pg.psql(f"SELECT count(*) FROM objects WHERE bucket = '{bucket}'", db) == str(len(expected))
        assert not (s.data_dir / "meta.db").exists()

        s.restart()
        check_all()
        c.delete_object(Bucket=bucket, Key="k1")
        del expected["k1"]
        check_all()
        assert pg.psql(f"SELECT count(*) FROM objects WHERE bucket = '{bucket}'", db) == str(len(expected))
    finally:
        s.stop_and_check()


def test_validate_rejects_url_and_host_together(tmp_path, pg):
    cfg = tmp_path / "both.yaml"
    cfg.write_text(render_config(data_dir=tmp_path / "data", s3_port=free_port(), grpc_port=free_port())
                   + f"database:\n  url: postgres://postgres@127.0.0.1:{pg.port}/x\n  host: 127.0.0.1\n")
    cp = subprocess.run([STRATA_BIN, "validate", "--offline", "--config", str(cfg)], capture_output=True,
                        text=True, timeout=60, env=child_env({"STRATA_CLUSTER_SECRET": "x" * 40}))
    out = cp.stdout + cp.stderr
    assert cp.returncode != 0, out
    assert "database" in out and "url" in out and "host" in out, out


def test_unreachable_postgres_is_a_clear_startup_error(tmp_path):
    """A stopped server: Strata exits non-zero naming `database.host`, never printing the password."""
    port = free_port()  # nothing listens here
    cfg = tmp_path / "strata.yaml"
    password = "Pw" + uuid.uuid4().hex
    cfg.write_text(render_config(data_dir=tmp_path / "data", s3_port=free_port(), grpc_port=free_port())
                   + "database:\n  host: 127.0.0.1\n"
                   + f"  port: {port}\n  user: strata\n  password: ${{PG_PASSWORD}}\n  dbname: strata\n")
    proc = StrataProc("strata-unreachable", ["serve", "--role", "all", "--config", str(cfg)], tmp_path,
                      tmp_path / "logs", child_env({"STRATA_CLUSTER_SECRET": "x" * 40, "PG_PASSWORD": password}))
    proc.start()
    code = proc.wait_exit(90)
    if code is None:
        proc.stop()
    out = proc.stdout_text() + proc.stderr_text()
    assert code not in (None, 0), out
    assert "database.host" in out, out
    assert "PostgreSQL" in out and "refused" in out, out
    assert password not in out, out
