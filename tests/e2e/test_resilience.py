"""Resilience with three third-party S3 servers (s3s-fs) as backends: circuit breakers
(trip and recovery, 404s never trip), monthly usage limits (write overflow, egress refusal)
and read failover to another copy.

Where the bytes landed is read from each backend's own storage, not from Strata.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from botocore.exceptions import ClientError

from harness import MODES, Strata, boto3_client, client_error, http_get, unique_bucket, wait_until
from multi import S3sFs

KIB = 1024
# One process, or a data plane that reports to a separate control plane over gRPC.
DEPLOYMENTS = [m for m in MODES if m in ("all", "split")] or ["all"]


@pytest.fixture
def fs3(tmp_path):
    backends = [S3sFs(tmp_path / f"fs{i}").start() for i in range(3)]
    yield backends
    for b in backends:
        b.stop()


def start(tmp_path, backends: list[S3sFs], *, limits: dict[int, dict] | None = None, extra: str = "",
          mode: str = "all") -> Strata:
    """Strata over `backends` with pack routing; `limits` per backend index."""
    yaml = "\n".join(b.yaml(f"fs{i}", **((limits or {}).get(i, {}))) for i, b in enumerate(backends))
    extra = "placement: {routing_strategy: pack}\n" + extra
    return Strata(mode, tmp_path / "strata", backends_yaml=yaml, extra_yaml=extra).start()


def status_of(strata: Strata, backend_id: str) -> dict:
    code, _, body = http_get(f"{strata.endpoint}/status")
    assert code == 200, body
    return next(b for b in json.loads(body)["backends"] if b["backend_id"] == backend_id)


def metric(strata: Strata, name: str, backend_id: str | None = None) -> float | None:
    _, _, body = http_get(f"{strata.endpoint}/metrics")
    label = "" if backend_id is None else f'{{backend="{backend_id}"}}'
    m = re.search(rf"^{re.escape(name + label)} (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else None


def try_get(s3, bucket: str, key: str) -> bytes | None:
    """The body, or None when the GET (or its body) failed."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:  # noqa: BLE001 - an aborted body surfaces as several exception types
        return None


def counts(backends: list[S3sFs]) -> list[int]:
    return [len(b.objects()) for b in backends]


@pytest.mark.parametrize("mode", DEPLOYMENTS)
def test_breaker_trips_on_a_dead_backend_and_recovers(tmp_path, fs3, mode):
    strata = start(tmp_path, fs3, mode=mode, extra="resilience: {breaker: {failure_threshold: 2, open_secs: 2}, "
                                                   "usage: {flush_secs: 1}}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("brk")
        s3.create_bucket(Bucket=bucket)
        body = os.urandom(8 * KIB)
        s3.put_object(Bucket=bucket, Key="k", Body=body)
        assert counts(fs3) == [1, 0, 0]
        wait_until(lambda: status_of(strata, "fs0")["breaker"] == "closed", 10, what="first report: closed")

        # GETs of missing keys (404) never open the breaker.
        for _ in range(10):
            with pytest.raises(ClientError) as e:
                s3.get_object(Bucket=bucket, Key="missing")
            assert client_error(e)[0] == 404
        assert status_of(strata, "fs0")["breaker"] == "closed"
        assert metric(strata, "strata_backend_breaker_state", "fs0") == 0

        fs3[0].kill()
        for _ in range(3):
            # The only copy is unreadable: an error status, never a 200 with a cut body.
            with pytest.raises(ClientError) as e:
                s3.get_object(Bucket=bucket, Key="k")
            assert client_error(e) == (503, "ServiceUnavailable"), client_error(e)
        wait_until(lambda: status_of(strata, "fs0")["breaker"] == "open", 10, what="fs0 breaker open in /status")
        assert metric(strata, "strata_backend_breaker_state", "fs0") == 2
        assert status_of(strata, "fs1")["breaker"] == "closed"
        # Writes go around the open backend.
        s3.put_object(Bucket=bucket, Key="while-down", Body=b"x" * KIB)
        assert s3.get_object(Bucket=bucket, Key="while-down")["Body"].read() == b"x" * KIB

        fs3[0].start()
        wait_until(lambda: try_get(s3, bucket, "k") == body, 15, what="read from the restarted backend")
        wait_until(lambda: status_of(strata, "fs0")["breaker"] == "closed", 10, what="fs0 breaker closed again")
        assert metric(strata, "strata_backend_breaker_state", "fs0") == 0
        assert metric(strata, "strata_backend_requests_total", "fs0") > 0
    finally:
        strata.stop_and_check()


@pytest.mark.parametrize("mode", DEPLOYMENTS)
def test_request_limit_overflows_writes_to_the_next_backend(tmp_path, fs3, mode):
    limit = 6
    strata = start(tmp_path, fs3, mode=mode, limits={0: {"api_request_limit": limit}},
                   extra="resilience: {usage: {flush_secs: 1}}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("lim")
        s3.create_bucket(Bucket=bucket)
        for i in range(limit):
            s3.put_object(Bucket=bucket, Key=f"a{i}", Body=b"a" * KIB)
        first = counts(fs3)
        assert first[0] >= 1 and first[2] == 0, first
        wait_until(lambda: status_of(strata, "fs0")["usage"]["requests_exhausted"], 10,
                   what="fs0 request limit reported as used up")
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=f"b{i}", Body=b"b" * KIB)
        after = counts(fs3)
        assert after[0] == first[0], (first, after)
        assert after[1] == first[1] + 3, (first, after)
        st = status_of(strata, "fs0")
        assert st["api_request_limit"] == limit
        assert st["usage"]["requests"] >= limit
        assert re.fullmatch(r"\d{4}-\d{2}", st["usage"]["month"])
        assert st["eligible_for_writes"] is False
        assert status_of(strata, "fs1")["eligible_for_writes"] is True
        assert metric(strata, "strata_backend_month_requests", "fs0") >= limit
        # Objects on the exhausted backend still read back (only writes overflow).
        assert s3.get_object(Bucket=bucket, Key="a0")["Body"].read() == b"a" * KIB
    finally:
        strata.stop_and_check()


def test_exhausted_egress_limit_refuses_reads_with_slowdown(tmp_path, fs3):
    strata = start(tmp_path, fs3, limits={0: {"egress_byte_limit": 1000}},
                   extra="resilience: {usage: {flush_secs: 1}}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("egr")
        s3.create_bucket(Bucket=bucket)
        body = os.urandom(4 * KIB)
        s3.put_object(Bucket=bucket, Key="k", Body=body)
        assert counts(fs3) == [1, 0, 0]
        # The first read is within the limit and uses it up.
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="k")
        assert client_error(e) == (503, "SlowDown")
        assert "egress" in e.value.response["Error"]["Message"]
        wait_until(lambda: status_of(strata, "fs0")["usage"]["egress_exhausted"], 10,
                   what="fs0 egress limit reported as used up")
        assert status_of(strata, "fs0")["usage"]["egress_bytes"] >= 4 * KIB
        # Writes are not limited by egress.
        s3.put_object(Bucket=bucket, Key="k2", Body=b"y")
        assert counts(fs3)[0] == 2
    finally:
        strata.stop_and_check()


def test_read_fails_over_to_a_copy_when_the_primary_backend_dies(tmp_path, fs3):
    strata = start(tmp_path, fs3, extra="replication: {factor: 2, interval_secs: 1}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("rfo")
        s3.create_bucket(Bucket=bucket)
        body = os.urandom(300 * KIB)
        s3.put_object(Bucket=bucket, Key="k", Body=body)
        assert counts(fs3)[0] == 1
        try:
            wait_until(lambda: sum(counts(fs3)) == 2, 20, what="a second copy")
        except AssertionError:
            pytest.xfail("replication did not make a second copy (not available in this build)")
        fs3[0].kill()
        for _ in range(3):
            assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body
        ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=1000-200999")["Body"].read()
        assert ranged == body[1000:201000]
        assert metric(strata, "strata_read_failovers_total") >= 1
    finally:
        fs3[0].start()
        strata.stop_and_check()


def test_reads_past_an_egress_limit_go_to_another_copy(tmp_path, fs3):
    strata = start(tmp_path, fs3, limits={0: {"egress_byte_limit": 1000}},
                   extra="replication: {factor: 2, interval_secs: 1}\nresilience: {usage: {flush_secs: 1}}\n")
    try:
        s3 = boto3_client(strata.endpoint)
        bucket = unique_bucket("egc")
        s3.create_bucket(Bucket=bucket)
        body = os.urandom(4 * KIB)
        s3.put_object(Bucket=bucket, Key="k", Body=body)
        try:
            wait_until(lambda: sum(counts(fs3)) == 2, 20, what="a second copy")
        except AssertionError:
            pytest.xfail("replication did not make a second copy (not available in this build)")
        for _ in range(4):
            assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body
        wait_until(lambda: status_of(strata, "fs0")["usage"]["egress_exhausted"], 10,
                   what="fs0 egress limit reported as used up")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body

        def egress() -> list[int]:
            return [status_of(strata, f"fs{i}")["usage"]["egress_bytes"] for i in range(3)]

        # Five reads: one from fs0 (which used up its limit), the rest from the copy.
        wait_until(lambda: sum(egress()) == 5 * 4 * KIB, 10, what="all read traffic reported")
        assert egress()[0] == 4 * KIB, egress()
    finally:
        strata.stop_and_check()
