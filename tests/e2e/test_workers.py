"""The worker role (issue 6, item 3): two `--role worker` processes share the jobs through
PostgreSQL advisory locks and one schedule table, so each job cycle runs once across them.

One deployment for the module: PostgreSQL, one s3s-fs backend, a control plane, a data plane
and two workers with short job periods. The tests run in file order; the last one kills a
worker with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from harness import (
    STRATA_BIN,
    Strata,
    StrataProc,
    boto3_client,
    child_env,
    client_error,
    free_port,
    http_get,
    wait_until,
)
from multi import S3sFs
from pg import Postgres, db_yaml

LIFE_BUCKET = "lifecycle-e2e"
EXPIRE_SECS = 3
MULTIPART_MAX_AGE = 3

JOBS_YAML = f"""jobs:
  cleanup_period_secs: 1
  reaper_period_secs: 2
  scrub_period_secs: 2
  rewrite_period_secs: 2
  delta_gc_period_secs: 2
  multipart_max_age_secs: {MULTIPART_MAX_AGE}
  multipart_period_secs: 1
  lifecycle_period_secs: 1
lifecycle:
  - {{bucket: {LIFE_BUCKET}, prefix: tmp/, expire_after_secs: {EXPIRE_SECS}}}
"""


class Worker:
    def __init__(self, name: str, root, base_config: str, secret: str):
        self.port = free_port()
        cfg = root / f"{name}.yaml"
        cfg.write_text(base_config + f"worker: {{listen: 127.0.0.1:{self.port}}}\n")
        self.proc = StrataProc(name, ["serve", "--role", "worker", "--config", str(cfg)], root, root / "logs",
                               child_env({"STRATA_CLUSTER_SECRET": secret}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Worker":
        self.proc.start()
        wait_until(lambda: self.get("/ready")[0] == 200, 60, procs=[self.proc], what=f"{self.proc.name} /ready")
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            status, _, body = http_get(self.url + path, timeout=5)
            return status, body
        except OSError:
            return 0, b""

    def jobs(self) -> dict[str, dict]:
        status, body = self.get("/status/jobs")
        assert status == 200, body
        return {j["name"]: j for j in json.loads(body)}

    def metric(self, name: str, **labels) -> float:
        status, body = self.get("/metrics")
        assert status == 200
        total = 0.0
        for line in body.decode().splitlines():
            m = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(3))
        return total


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    pg = Postgres()
    fs = S3sFs(root / "fs1")
    workers: list[Worker] = []
    s = None
    try:
        pg.start()
        fs.start()
        db = pg.create_database()
        s = Strata("split", root / "strata", backends_yaml=fs.yaml("fs1"),
                   extra_yaml=db_yaml(pg, db) + JOBS_YAML).start()
        base = s.config_path.read_text()
        workers = [Worker(f"worker-{i}", root, base, s.cluster_secret).start() for i in range(2)]
        yield {"strata": s, "fs": fs, "workers": workers, "pg": pg, "db": db}
    finally:
        for w in workers:
            w.proc.stop()
        if s is not None:
            s.stop()
        fs.stop()
        pg.stop()


def test_both_workers_answer_health_ready_metrics_and_status(cluster):
    for w in cluster["workers"]:
        assert w.get("/health") == (200, b"ok\n")
        assert w.get("/ready")[0] == 200
        status, body = w.get("/metrics")
        assert status == 200
        text = body.decode()
        for family in ("strata_job_runs_total", "strata_job_lock_skipped_total",
                       "strata_job_consecutive_failures"):
            assert family in text, family
        wait_until(lambda: "lifecycle" in w.jobs() and w.jobs()["cleanup"]["runs"] > 0, 20, procs=[w.proc],
                   what="jobs listed")
        jobs = w.jobs()
        for name in ("cleanup", "reaper", "stale-multipart", "lifecycle"):
            j = jobs[name]
            for field in ("state", "last_success", "last_error", "consecutive_failures", "next_run", "runs",
                          "errors", "holder"):
                assert field in j, (name, field)
    # Both workers show the same cluster-wide rows (the schedule is shared).
    a, b = (w.jobs() for w in cluster["workers"])
    assert set(a) == set(b)
    assert "strata_job_last_success_timestamp_seconds" in cluster["workers"][0].get("/metrics")[1].decode() or \
        "strata_job_last_success_timestamp_seconds" in cluster["workers"][1].get("/metrics")[1].decode()


def _snapshot(workers: list[Worker]) -> tuple[float, dict[str, dict], dict[str, float]]:
    """(time, cluster-wide rows, per job the cycles both workers ran by their own metrics)."""
    t = time.monotonic()
    rows = workers[0].jobs()
    ran = {name: sum(w.metric("strata_job_runs_total", job=name) for w in workers) for name in rows}
    return t, rows, ran


def test_each_job_runs_exactly_once_per_cycle_across_two_workers(cluster):
    workers = cluster["workers"]
    t0, rows0, ran0 = _snapshot(workers)
    time.sleep(10)
    t1, rows1, ran1 = _snapshot(workers)
    elapsed = t1 - t0
    checked = 0
    for name, row in rows1.items():
        period = (row.get("period_ms") or 0) / 1000
        if not period or period > 3 or name not in rows0:
            continue
        checked += 1
        cycles = row["runs"] - rows0[name]["runs"]
        by_workers = ran1[name] - ran0[name]
        # Cluster-wide: at most one cycle per period (plus one at the window's edges)...
        assert cycles <= elapsed / period + 1, (name, cycles, elapsed, period)
        # ...and the job kept running.
        assert cycles >= elapsed / period / 2 - 1, (name, cycles, elapsed, period)
        # The two workers together ran exactly the cycles the schedule counts: none twice.
        assert abs(by_workers - cycles) <= 1, (name, by_workers, cycles)
        assert row["errors"] == 0, (name, row["last_error"])
        print(f"\n  {name}: period {period:.0f}s, {cycles} cycles in {elapsed:.1f}s, {by_workers:.0f} run by the workers")
    assert checked >= 5, rows1
    # The other worker found the locks taken or the cycles done.
    skipped = sum(w.metric("strata_job_lock_skipped_total") for w in workers)
    holders = {row["holder"] for row in rows1.values()}
    print(f"\nexactly-once: {checked} jobs over {elapsed:.1f}s; lock skips {skipped}; holders {sorted(holders)}")


def _blobs(fs: S3sFs) -> dict[str, int]:
    return fs.objects()


def test_a_stale_multipart_upload_is_aborted_and_its_parts_leave_the_backend(cluster):
    s, fs = cluster["strata"], cluster["fs"]
    c = boto3_client(s.endpoint)
    c.create_bucket(Bucket="stale-mpu")
    before = _blobs(fs)
    up = c.create_multipart_upload(Bucket="stale-mpu", Key="big.bin")
    parts = [os.urandom(70_001), os.urandom(70_002)]
    for i, p in enumerate(parts):
        c.upload_part(Bucket="stale-mpu", Key="big.bin", UploadId=up["UploadId"], PartNumber=i + 1, Body=p)
    new = {k: v for k, v in _blobs(fs).items() if k not in before}
    assert sorted(new.values()) == [70_001, 70_002], new
    # Older than jobs.multipart_max_age_secs: aborted, and the parts' bytes cleaned up.
    wait_until(lambda: not c.list_multipart_uploads(Bucket="stale-mpu").get("Uploads"), 30,
               procs=[w.proc for w in cluster["workers"]], what="stale upload aborted")
    wait_until(lambda: not any(k in _blobs(fs) for k in new), 20, what="part blobs deleted")
    with pytest.raises(Exception) as e:
        c.upload_part(Bucket="stale-mpu", Key="big.bin", UploadId=up["UploadId"], PartNumber=3, Body=b"x")
    assert client_error(e)[1] == "NoSuchUpload"
    assert sum(w.metric("strata_multipart_aborted_total") for w in cluster["workers"]) >= 1


def test_lifecycle_expires_objects_under_the_prefix_only(cluster):
    s, fs = cluster["strata"], cluster["fs"]
    c = boto3_client(s.endpoint)
    c.create_bucket(Bucket=LIFE_BUCKET)
    before = _blobs(fs)
    bodies = {"tmp/a": os.urandom(1_001), "tmp/b/c": os.urandom(1_002), "keep/d": os.urandom(1_003),
              "tmpx": os.urandom(1_004)}
    for k, v in bodies.items():
        c.put_object(Bucket=LIFE_BUCKET, Key=k, Body=v)
    new = {k: v for k, v in _blobs(fs).items() if k not in before}
    assert sorted(new.values()) == [1_001, 1_002, 1_003, 1_004], new

    def listed() -> list[str]:
        return sorted(o["Key"] for o in c.list_objects_v2(Bucket=LIFE_BUCKET).get("Contents", []))

    wait_until(lambda: listed() == ["keep/d", "tmpx"], EXPIRE_SECS + 20,
               procs=[w.proc for w in cluster["workers"]], what="tmp/ expired")
    for k in ("tmp/a", "tmp/b/c"):
        with pytest.raises(Exception) as e:
            c.head_object(Bucket=LIFE_BUCKET, Key=k)
        assert client_error(e)[0] == 404
    for k in ("keep/d", "tmpx"):
        assert c.get_object(Bucket=LIFE_BUCKET, Key=k)["Body"].read() == bodies[k]
    # The expired objects' bytes leave the backend; the others stay.
    wait_until(lambda: sorted(v for k, v in _blobs(fs).items() if k in new) == [1_003, 1_004], 20,
               what="expired blobs deleted")
    assert sum(w.metric("strata_lifecycle_expired_total") for w in cluster["workers"]) >= 2


def _cli(cluster, *args: str) -> str:
    cfg = cluster["strata"].config_path
    cp = subprocess.run([STRATA_BIN, "jobs", *args, "--config", str(cfg)], capture_output=True, text=True,
                        timeout=60, env=child_env({"STRATA_CLUSTER_SECRET": cluster["strata"].cluster_secret}))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout


def test_an_operator_cancels_and_starts_a_job_from_the_cli_and_over_http(cluster):
    w = cluster["workers"][0]
    listing = _cli(cluster, "list")
    assert re.search(r"^cleanup\s+(idle|running)\s+\d+", listing, re.M), listing
    assert "cancelled" in _cli(cluster, "cancel", "cleanup")
    wait_until(lambda: w.jobs()["cleanup"]["state"] == "cancelled", 10, what="cleanup cancelled")
    runs = w.jobs()["cleanup"]["runs"]
    time.sleep(2.5)
    assert w.jobs()["cleanup"]["runs"] == runs, "a cancelled job does not run"
    assert re.search(r"^cleanup\s+cancelled", _cli(cluster, "list"), re.M)
    assert "started" in _cli(cluster, "start", "cleanup")
    wait_until(lambda: w.jobs()["cleanup"]["runs"] > runs, 10, what="cleanup runs again")
    # The same over HTTP.
    req = urllib.request.Request(w.url + "/status/jobs/reaper/cancel", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert json.loads(r.read())["state"] == "cancelled"
    wait_until(lambda: w.jobs()["reaper"]["state"] == "cancelled", 10, what="reaper cancelled")
    req = urllib.request.Request(w.url + "/status/jobs/reaper/start", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    wait_until(lambda: w.jobs()["reaper"]["state"] != "cancelled", 10, what="reaper started")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(w.url + "/status/jobs/nope/cancel", method="POST"), timeout=5)
    assert e.value.code == 404


def test_after_kill_9_of_one_worker_the_other_runs_every_job(cluster):
    a, b = cluster["workers"]
    a.proc.signal(signal.SIGKILL)
    a.proc.proc.wait(timeout=10)
    b_id = f":{b.proc.pid}"
    time.sleep(1)
    start = b.jobs()
    time.sleep(8)
    end = b.jobs()
    checked = 0
    for name, row in end.items():
        period = (row.get("period_ms") or 0) / 1000
        if not period or period > 3 or name not in start:
            continue
        checked += 1
        assert row["runs"] >= start[name]["runs"] + 2, (name, start[name], row)
        assert row["holder"].endswith(b_id), (name, row["holder"], b_id)
        assert row["state"] in ("idle", "running"), row
    assert checked >= 5, end
    assert b.get("/ready")[0] == 200
    # SIGTERM: the worker stops its jobs and its HTTP, and exits cleanly.
    t = time.monotonic()
    assert b.proc.stop(timeout=15) == 0, b.proc.tail()
    assert time.monotonic() - t < 10
    assert b.get("/health")[0] == 0, "the HTTP endpoint is closed"
