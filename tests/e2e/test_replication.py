"""Replication (issue 6, item 3): the factor is reached on healthy backends, reads survive a
killed backend, the job replaces copies on a backend whose breaker stays open, quotas are
honoured, and quorum writes (`replication.write_quorum`) acknowledge only once N copies are
stored, or answer 503 SlowDown and keep the previous version.

Three s3s-fs backends and one `strata serve --role all` (SQLite). Where the bytes are is read
from each backend's own directory, so it works while a backend is down."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from harness import STRATA_BIN, Strata, boto3_client, child_env, http_get, unique_bucket, wait_until
from multi import S3sFs
from test_delta import delta_status

KIB = 1024

# Breakers open on the first failure, data planes report every second.
FAST = ("resilience: {breaker: {failure_threshold: 1, open_secs: 2}, usage: {flush_secs: 1}}\n"
        "placement: {routing_strategy: spread}\n")


@pytest.fixture
def fs3(tmp_path):
    backends = [S3sFs(tmp_path / f"fs{i}").start() for i in range(3)]
    yield backends
    for b in backends:
        b.stop()


def start(tmp_path, fs: list[S3sFs], replication: str, limits: list[dict] | None = None,
          mode: str = "all") -> Strata:
    yaml = "\n".join(b.yaml(f"fs{i}", **((limits or [{}] * 3)[i])) for i, b in enumerate(fs))
    return Strata(mode, tmp_path / "strata", backends_yaml=yaml,
                  extra_yaml=FAST + f"replication: {replication}\n").start()


def sizes(fs: list[S3sFs], which=range(3)) -> list[Counter]:
    """Per backend: how many blobs of each size it holds."""
    return [Counter(fs[i].objects().values()) for i in which]


def holders(fs: list[S3sFs], size: int, which=range(3)) -> list[int]:
    return [i for i in which if size in fs[i].objects().values()]


def metric(s: Strata, name: str, labels: str = "") -> float:
    status, _, body = http_get(f"{s.endpoint}/metrics")
    assert status == 200
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + (labels or "")) and (labels or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def put_objects(s3, bucket: str, n: int, base: int) -> dict[str, bytes]:
    """`n` objects of distinct sizes (base + i), so each is recognisable on the backends."""
    bodies = {f"obj-{i}": os.urandom(base + i) for i in range(n)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return bodies


# `split`: the job runs in the control plane, which has no breakers of its own: the backend's
# health reaches it only through the data plane's usage reports (the backend_health table).
@pytest.mark.parametrize("mode", ["all", "split"])
def test_factor_reached_then_reads_survive_a_kill_and_copies_move_to_healthy_backends(tmp_path, fs3, mode):
    s = start(tmp_path, fs3, "{factor: 2, interval_secs: 1, unhealthy_after_secs: 3}", mode=mode)
    try:
        s3 = boto3_client(s.endpoint)
        bucket = unique_bucket("repl")
        s3.create_bucket(Bucket=bucket)
        bodies = put_objects(s3, bucket, 12, 3000)
        lengths = [len(b) for b in bodies.values()]

        # (a) factor 2: every object ends up on exactly two backends.
        wait_until(lambda: all(len(holders(fs3, n)) == 2 for n in lengths), 30,
                   procs=s.procs, what="two copies of every object")
        if mode == "all":  # in split mode the job's metrics are the control plane's
            assert metric(s, "strata_replication_copies_made_total") >= 12

        # (b) kill the backend holding the most copies: every object still reads back exactly.
        victim = max(range(3), key=lambda i: len(fs3[i].objects()))
        on_victim = [n for n in lengths if victim in holders(fs3, n)]
        assert on_victim, "the victim holds copies"
        fs3[victim].kill()
        for key, body in bodies.items():
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key

        # After unhealthy_after_secs the job copies what was on the victim to the third backend,
        # so each object is on two healthy backends again.
        healthy = [i for i in range(3) if i != victim]
        wait_until(lambda: all(len(holders(fs3, n, healthy)) == 2 for n in lengths), 40,
                   procs=s.procs, what="the factor met on the two healthy backends")
        if mode == "all":
            assert metric(s, "strata_replication_unhealthy_skipped_total") >= len(on_victim)
        for key, body in bodies.items():
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
    finally:
        s.stop_and_check()


# `split`: a data plane and a control plane as separate processes, so the copies travel in
# CommitWriteRequest.copies over gRPC.
@pytest.mark.parametrize("mode", ["all", "split"])
def test_quorum_write_is_on_two_backends_when_acknowledged(tmp_path, fs3, mode):
    # The job would take an hour: whatever is on two backends at ack time was the PUT itself.
    s = start(tmp_path, fs3, "{factor: 2, write_quorum: 2, interval_secs: 3600}", mode=mode)
    try:
        s3 = boto3_client(s.endpoint)
        bucket = unique_bucket("quorum")
        s3.create_bucket(Bucket=bucket)
        for i in range(8):
            body = os.urandom(5000 + i)
            s3.put_object(Bucket=bucket, Key=f"q-{i}", Body=body)
            assert len(holders(fs3, len(body))) == 2, f"q-{i} on two backends at ack time"
            assert s3.get_object(Bucket=bucket, Key=f"q-{i}")["Body"].read() == body
        # A large body streams to both at once (bounded memory, one read of the body).
        big = os.urandom(9 * 1024 * KIB + 7)
        s3.put_object(Bucket=bucket, Key="big", Body=big)
        assert len(holders(fs3, len(big))) == 2
        assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big
        # CopyObject too: two more blobs of that size.
        s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "q-3"})
        assert sum(c[5003] for c in sizes(fs3)) == 4
        assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == \
            s3.get_object(Bucket=bucket, Key="q-3")["Body"].read()
        assert metric(s, "strata_quorum_writes_total", '{outcome="acknowledged"}') == 10
    finally:
        s.stop_and_check()


@pytest.mark.parametrize("mode", ["all", "split"])
def test_quorum_write_refuses_to_acknowledge_without_two_backends(tmp_path, fs3, mode):
    s = start(tmp_path, fs3, "{factor: 2, write_quorum: 2, interval_secs: 3600}", mode=mode)
    try:
        s3 = boto3_client(s.endpoint)
        bucket = unique_bucket("noquorum")
        s3.create_bucket(Bucket=bucket)
        v1 = os.urandom(7000)
        s3.put_object(Bucket=bucket, Key="k", Body=v1)
        both = holders(fs3, len(v1))
        assert len(both) == 2
        # Keep one holder of v1; kill the other holder and the third backend.
        keep = both[0]
        for i in range(3):
            if i != keep:
                fs3[i].kill()
        before = {i: dict(fs3[i].objects()) for i in range(3)}
        v2 = os.urandom(9100)
        for attempt in range(3):  # the first may hit a closed breaker, later ones open breakers
            with pytest.raises(ClientError) as e:
                s3.put_object(Bucket=bucket, Key="k", Body=v2)
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.value.response
            assert e.value.response["Error"]["Code"] == "SlowDown", e.value.response
        # The previous version is intact and current.
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == v1
        # No stray bytes: the surviving backend holds exactly what it held (the aborted copy was
        # deleted), and the dead ones got nothing.
        assert fs3[keep].objects() == before[keep]
        for i in range(3):
            assert len(v2) not in fs3[i].objects().values(), f"fs{i} keeps bytes of the refused write"
        refused = sum(metric(s, "strata_quorum_writes_total", f'{{outcome="{o}"}}')
                      for o in ("no_backends", "backend_failed"))
        # One refusal per 503 answered (botocore may resend a SlowDown once).
        status, _, body = http_get(f"{s.endpoint}/metrics")
        answered_503 = sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
                           if line.startswith("strata_s3_requests_total{") and 'op="PutObject"' in line
                           and 'status="503"' in line)
        assert refused == answered_503 >= 3, (refused, answered_503)
        assert metric(s, "strata_quorum_writes_total", '{outcome="acknowledged"}') == 1
    finally:
        s.stop_and_check()


def test_replication_does_not_use_a_backend_over_its_quota(tmp_path, fs3):
    # fs2 may hold 1 000 bytes: none of these 2-3 KiB objects fits there.
    limits = [{}, {}, {"quota_bytes": 1000}]
    s = start(tmp_path, fs3, "{factor: 3, interval_secs: 1}", limits)
    try:
        s3 = boto3_client(s.endpoint)
        bucket = unique_bucket("quota")
        s3.create_bucket(Bucket=bucket)
        bodies = put_objects(s3, bucket, 6, 2048)
        lengths = [len(b) for b in bodies.values()]
        wait_until(lambda: all(len(holders(fs3, n)) == 2 for n in lengths), 30,
                   procs=s.procs, what="copies on the two backends with room")
        # Several more replication passes (one a second): the full backend still gets nothing.
        time.sleep(3)
        assert fs3[2].objects() == {}, "a backend over its quota is not a replication target"
        assert all(holders(fs3, n) == [0, 1] for n in lengths)
        for key, body in bodies.items():
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    finally:
        s.stop_and_check()


def test_bucket_write_quorum_overrides_the_default(tmp_path, fs3):
    s = start(tmp_path, fs3, "{factor: 2, interval_secs: 3600, bucket_write_quorum: {ledger: 2}}")
    try:
        s3 = boto3_client(s.endpoint)
        other = unique_bucket("plain")
        for b in ("ledger", other):
            s3.create_bucket(Bucket=b)
        s3.put_object(Bucket="ledger", Key="k", Body=os.urandom(6001))
        s3.put_object(Bucket=other, Key="k", Body=os.urandom(6002))
        assert len(holders(fs3, 6001)) == 2, "ledger: two copies at acknowledgement"
        assert len(holders(fs3, 6002)) == 1, "other buckets: one copy, the job makes the second"
    finally:
        s.stop_and_check()


@pytest.mark.parametrize("yaml,field", [
    ("replication: {factor: 2, write_quorum: 3}\n", "replication.write_quorum"),
    ("replication: {factor: 2, bucket_write_quorum: {ledger: 0}}\n", "replication.bucket_write_quorum.ledger"),
    ("replication: {factor: 2, unhealthy_after_secs: 0}\n", "replication.unhealthy_after_secs"),
])
def test_validate_names_bad_replication_settings(tmp_path, fs3, yaml, field):
    cfg = tmp_path / "cfg.yaml"
    backends = "\n".join(b.yaml(f"fs{i}") for i, b in enumerate(fs3))
    cfg.write_text("backends:\n" + backends + "\n" + yaml)
    cp = subprocess.run([STRATA_BIN, "validate", "--offline", "--config", str(cfg)], capture_output=True,
                        text=True, env=child_env(), timeout=60)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1, out
    assert field in out, out


def test_delta_objects_and_their_reference_are_replicated_and_read_with_a_backend_down(tmp_path):
    """A delta container and its deltaspace's reference are copied as stored: with the backend
    that took the writes killed, both versions still read back byte-exact from the other one."""
    fs = [S3sFs(tmp_path / f"fs{i}").start() for i in range(2)]
    yaml = "\n".join(b.yaml(f"fs{i}") for i, b in enumerate(fs))
    delta = ("delta: {enabled: false, min_size: 4096, rules: [{bucket: artifacts, delta: on}]}\n"
             "jobs: {delta_compact_period_secs: 3600}\n")
    s = Strata("all", tmp_path / "strata", backends_yaml=yaml,
               extra_yaml=FAST + delta + "replication: {factor: 2, interval_secs: 1}\n").start()
    try:
        s3 = boto3_client(s.endpoint)
        s3.create_bucket(Bucket="artifacts")
        base = os.urandom(600 * KIB)
        v1 = base + b"version one"
        v2 = base[:1000] + os.urandom(64) + base[1064:] + b"version two"
        s3.put_object(Bucket="artifacts", Key="app/v1.bin", Body=v1)
        s3.put_object(Bucket="artifacts", Key="app/v2.bin", Body=v2)
        # Random content: the reference is stored as it is (zstd would not make it smaller).
        decisions = delta_status(s, "artifacts")["decisions"]
        assert (decisions.get("reference"), decisions.get("delta")) == (1, 1), decisions
        # Every blob (the reference, the identity container of v1, the delta of v2) on both backends.
        wait_until(lambda: sorted(fs[0].objects().values()) == sorted(fs[1].objects().values())
                   and len(fs[0].objects()) >= 3, 30, procs=[s.main], what="every delta blob on both backends")
        assert metric(s, "strata_replication_copies_made_total") >= 3
        for victim in range(2):
            fs[victim].kill()
            for key, want in (("app/v1.bin", v1), ("app/v2.bin", v2)):
                got = s3.get_object(Bucket="artifacts", Key=key)["Body"].read()
                assert got == want, f"{key} with fs{victim} down"
            fs[victim].restart()
            wait_until(lambda: s3.head_bucket(Bucket="artifacts") is not None, 10)
    finally:
        s.stop_and_check()
        for b in fs:
            b.stop()
