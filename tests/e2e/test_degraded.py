"""Degraded mode (issue 6, item 5): the metadata database stops, reads go on, writes get 503.

A real PostgreSQL holds the catalog of a control plane and a data plane (split mode, and the
one-process mode, where the control plane's metrics are on `/metrics`). Objects are written and
read (which caches their locations in the control plane). PostgreSQL is stopped with its data
kept: those objects still read back byte for byte from the backend, a PUT gets 503 SlowDown with
an S3 XML body and a request id and leaves nothing behind, a LIST gets 503, and an object that
was never read is not served. PostgreSQL is started again and within seconds writes succeed and
everything reads back. See docs/degraded-mode.md.
"""

from __future__ import annotations

import os
import time

import pytest
from botocore.exceptions import ClientError

from harness import Strata, boto3_client, client_error, http_get, unique_bucket, wait_until
from pg import Postgres, db_yaml

DEGRADED = "degraded: {failure_threshold: 2, open_secs: 1, read_timeout_ms: 1000, cache_ttl_secs: 120}\n"


@pytest.fixture
def pg():
    cluster = Postgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def metric(endpoint: str, name: str) -> float | None:
    status, _, body = http_get(f"{endpoint}/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def blobs(s: Strata) -> int:
    root = s.data_dir / "objects"
    return sum(len(files) for _, _, files in os.walk(root)) if root.exists() else 0


@pytest.mark.parametrize("mode", ["split", "all"])
def test_database_down_reads_go_on_writes_503_then_recovery(tmp_path, pg, mode):
    db = pg.create_database()
    s = Strata(mode, tmp_path / mode, extra_yaml=db_yaml(pg, db) + DEGRADED)
    # A control plane under PostgreSQL publishes where data planes reach it when it leads.
    text = s.config_path.read_text()
    s.config_path.write_text(text.replace(
        "control_plane:\n", f"control_plane:\n  advertise_url: http://127.0.0.1:{s.grpc_port}\n", 1))
    s.start()
    try:
        c = boto3_client(s.endpoint)
        bucket = unique_bucket("deg")
        c.create_bucket(Bucket=bucket)
        data = {f"warm/{i}": os.urandom(20_000 + i) for i in range(5)}
        for k, v in data.items():
            c.put_object(Bucket=bucket, Key=k, Body=v)
        for k, v in data.items():
            assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == v
        c.put_object(Bucket=bucket, Key="cold", Body=b"never read before the outage")
        stored = blobs(s)

        pg.pause()
        t0 = time.monotonic()
        for k, v in data.items():
            got = c.get_object(Bucket=bucket, Key=k)
            assert got["Body"].read() == v, k
            assert got["ContentLength"] == len(v)
        first_reads = time.monotonic() - t0
        print(f"{mode}: 5 reads with the database down took {first_reads:.2f}s")
        assert first_reads < 10
        if mode == "all":
            # 2 open, or 1 half-open while a probe is out (docs/style.md: one breaker encoding)
            assert metric(s.endpoint, "strata_db_breaker_state") in (1.0, 2.0)
            assert (metric(s.endpoint, "strata_degraded_reads_total") or 0) >= 5

        # A write: 503 SlowDown, an S3 XML body with a request id, and nothing stored.
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket=bucket, Key="new", Body=b"refused while degraded")
        assert client_error(e) == (503, "SlowDown")
        assert e.value.response["Error"].get("Message"), "an S3 XML error body"
        assert e.value.response["ResponseMetadata"].get("RequestId")
        with pytest.raises(ClientError) as e:
            c.list_objects_v2(Bucket=bucket)
        assert client_error(e)[0] == 503
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket=bucket, Key="cold")
        assert client_error(e) == (503, "SlowDown"), "an object never read is not in the cache"
        assert blobs(s) == stored, "a refused write leaves no bytes on the backend"
        logs = "".join(p.stdout_text() + p.stderr_text() for p in s.procs)
        assert "metadata database unreachable; degraded mode" in logs, "the outage is logged"

        pg.resume()
        t1 = time.monotonic()

        def writes_again() -> bool:
            try:
                c.put_object(Bucket=bucket, Key="new", Body=b"after the outage")
                return True
            except ClientError as err:
                assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503, err
                return False

        wait_until(writes_again, 20, interval=0.3, procs=s.procs, what="writes succeed after PostgreSQL restarts")
        print(f"{mode}: writes succeeded {time.monotonic() - t1:.2f}s after PostgreSQL was started again")
        assert c.get_object(Bucket=bucket, Key="new")["Body"].read() == b"after the outage"
        assert c.get_object(Bucket=bucket, Key="cold")["Body"].read() == b"never read before the outage"
        for k, v in data.items():
            assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == v
        listed = sorted(o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"])
        assert listed == sorted([*data, "cold", "new"])
        if mode == "all":
            assert metric(s.endpoint, "strata_db_breaker_state") == 0.0
        logs = "".join(p.stdout_text() + p.stderr_text() for p in s.procs)
        assert "metadata database reachable again; degraded mode over" in logs
    finally:
        s.stop()
