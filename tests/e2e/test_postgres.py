"""Strata with its metadata in a real PostgreSQL 15 (issue 6, item 1).

A module fixture starts a throwaway cluster (`initdb` + `pg_ctl` on a free port, as `nobody`
when run as root, because initdb refuses root) and stops it at the end. Each deployment gets
its own database and is configured with the `database:` fields (host/port/user/dbname),
which imply PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from pg import Postgres, db_yaml
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


@pytest.fixture(scope="module")
def pg():
    cluster = Postgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _body(resp) -> bytes:
    return resp["Body"].read()


@pytest.mark.parametrize("mode", ["all", "split"])
def test_s3_round_trip_with_catalog_in_postgres(tmp_path, pg, mode):
    db = pg.create_database()
    s = Strata(mode, tmp_path / mode, extra_yaml=db_yaml(pg, db)).start()
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
