"""A leader-elected control plane (issue 6, item 2; docs/leadership.md).

Real processes: one PostgreSQL cluster, one s3s-fs backend, two `--role controlplane` processes
sharing the database, and two `--role dataplane` processes that are each given both control-plane
URLs (one by `control_plane.urls`, one by `--control-plane a,b`). Who leads is read from the lease
row in PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import (
    ADMIN,
    LIVE,
    START_TIMEOUT,
    SUMMARY,
    StrataProc,
    boto3_client,
    child_env,
    free_ports,
    http_get,
    render_config,
    tcp_open,
    unique_bucket,
    wait_until,
)
from multi import S3sFs
from pg import Postgres, db_yaml


class Cluster:
    """2 control planes + 2 data planes on one PostgreSQL database and one s3s-fs backend."""

    def __init__(self, root, pg: Postgres, fs: S3sFs):
        self.root, self.pg = root, pg
        self.db = pg.create_database()
        self.name = f"leadership@{root.name}"
        self.created_at = time.monotonic()
        env = child_env({"STRATA_CLUSTER_SECRET": uuid.uuid4().hex + uuid.uuid4().hex})
        self.grpc = free_ports(2)
        self.s3 = free_ports(2)
        self.http = free_ports(2)  # each control plane's /health, /metrics, /leader
        self.cp_urls = [f"http://127.0.0.1:{p}" for p in self.grpc]
        backends = fs.yaml("fs1")
        logs = root / "logs"
        self.cps = []
        for i, port in enumerate(self.grpc):
            cfg = root / f"cp{i}.yaml"
            cfg.write_text(render_config(data_dir=root / f"cp{i}", s3_port=free_ports(1)[0], grpc_port=port,
                                         s3_backend=backends, extra_yaml=db_yaml(pg, self.db))
                           .replace("control_plane:\n", f"control_plane:\n  http_listen: 127.0.0.1:{self.http[i]}\n"))
            self.cps.append(StrataProc(f"cp{i}", ["serve", "--role", "controlplane", "--config", str(cfg)],
                                       root, logs, env))
        self.dps = []
        for i, port in enumerate(self.s3):
            text = render_config(data_dir=root / f"dp{i}", s3_port=port, grpc_port=self.grpc[0],
                                 s3_backend=backends)
            args = []
            if i == 0:
                text = text.replace(f"  url: {self.cp_urls[0]}\n", f"  urls: [{', '.join(self.cp_urls)}]\n")
            else:
                args = ["--control-plane", ",".join(self.cp_urls)]
            cfg = root / f"dp{i}.yaml"
            cfg.write_text(text)
            self.dps.append(StrataProc(f"dp{i}", ["serve", "--role", "dataplane", "--config", str(cfg), *args],
                                       root, logs, env))
        self.endpoints = [f"http://127.0.0.1:{p}" for p in self.s3]

    @property
    def procs(self):
        return self.cps + self.dps

    def lease(self) -> tuple[str, int, bool]:
        """(url, term, valid) of the lease row, from PostgreSQL itself."""
        row = self.pg.psql("SELECT url, term, expires_at > now() FROM cp_lease", db=self.db)
        url, term, valid = row.split("|")
        return url, int(term), valid == "t"

    def cp_http(self, i: int, path: str) -> str:
        status, _, body = http_get(f"http://127.0.0.1:{self.http[i]}{path}", timeout=5)
        assert status == 200, (path, status, body)
        return body.decode()

    def leader(self) -> int:
        url, _, valid = self.lease()
        assert valid, "no valid lease"
        return self.cp_urls.index(url)

    def start_cp(self, i: int) -> None:
        self.cps[i].start()
        wait_until(lambda: tcp_open(self.grpc[i]), START_TIMEOUT, procs=[self.cps[i]], what=f"cp{i} gRPC port")

    def start(self) -> "Cluster":
        LIVE.append(self)
        self.start_cp(0)
        # cp0 leads first: its lease is in the database before cp1 starts.
        wait_until(lambda: self._lease_is(0), START_TIMEOUT, procs=[self.cps[0]], what="cp0 takes the lease")
        self.start_cp(1)
        for dp in self.dps:
            dp.start()
        for ep, dp in zip(self.endpoints, self.dps):
            wait_until(lambda: http_get(f"{ep}/ready", timeout=2)[0] == 200, START_TIMEOUT, procs=[dp],
                       what=f"{dp.name} ready")
        return self

    def _lease_is(self, i: int) -> bool:
        try:
            return self.leader() == i
        except (AssertionError, ValueError):
            return False

    def wait_leader(self, i: int, timeout: float = 15) -> None:
        wait_until(lambda: self._lease_is(i), timeout, what=f"cp{i} leads")

    def stop(self) -> None:
        for p in self.dps + self.cps:
            p.stop()
        if self in LIVE:
            LIVE.remove(self)

    def tail(self, n: int = 40) -> str:
        return "\n".join(p.tail(n) for p in self.procs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("leadership")
    pg = Postgres()
    fs = S3sFs(root / "fs1")
    c = None
    try:
        pg.start()
        fs.start()
        c = Cluster(root, pg, fs).start()
        yield c
    finally:
        if c is not None:
            c.stop()
        fs.stop()
        pg.stop()


def client(endpoint: str):
    """No retries in botocore: every 503 is seen and counted by the test."""
    return boto3_client(endpoint, ADMIN, retries={"max_attempts": 1, "mode": "standard"},
                        connect_timeout=5, read_timeout=30)


def round_trip(cluster: Cluster, bucket: str, tag: str) -> None:
    a, b = (client(ep) for ep in cluster.endpoints)
    bodies = {f"{tag}-{i}": os.urandom(1000 + 997 * i) for i in range(4)}
    for i, (k, v) in enumerate(bodies.items()):
        (a if i % 2 == 0 else b).put_object(Bucket=bucket, Key=k, Body=v)
    for k, v in bodies.items():
        assert a.get_object(Bucket=bucket, Key=k)["Body"].read() == v
        assert b.get_object(Bucket=bucket, Key=k)["Body"].read() == v
    for c in (a, b):
        keys = [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix=f"{tag}-")["Contents"]]
        assert keys == sorted(bodies)
    b.delete_object(Bucket=bucket, Key=f"{tag}-0")
    with pytest.raises(ClientError) as e:
        a.head_object(Bucket=bucket, Key=f"{tag}-0")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_round_trip_through_either_data_plane_with_either_leader(cluster):
    assert cluster.leader() == 0
    _, term0, _ = cluster.lease()
    # Each control plane says what it is, on /leader and in its metrics.
    lead, follow = (json.loads(cluster.cp_http(i, "/leader")) for i in (0, 1))
    assert lead["is_leader"] and lead["term"] == term0 and lead["leader_url"] == cluster.cp_urls[0], lead
    assert not follow["is_leader"] and follow["leader_url"] == cluster.cp_urls[0], follow
    assert "strata_cp_is_leader 1" in cluster.cp_http(0, "/metrics")
    metrics1 = cluster.cp_http(1, "/metrics")
    assert "strata_cp_is_leader 0" in metrics1 and f"strata_cp_term {term0}" in metrics1
    bucket = unique_bucket("lead")
    client(cluster.endpoints[0]).create_bucket(Bucket=bucket)
    round_trip(cluster, bucket, "cp0")

    # A clean shutdown releases the lease: cp1 takes over at its next attempt.
    t0 = time.monotonic()
    assert cluster.cps[0].stop() == 0
    cluster.wait_leader(1, timeout=10)
    handover = time.monotonic() - t0
    url, term1, _ = cluster.lease()
    assert term1 == term0 + 1, (term0, term1)
    assert "gained control-plane leadership" in cluster.cps[1].stdout_text() + cluster.cps[1].stderr_text()
    # cp0 comes back as a follower; the data planes follow cp1.
    cluster.start_cp(0)
    round_trip(cluster, bucket, "cp1")
    assert cluster.leader() == 1 and cluster.lease()[1] == term1
    metrics1 = cluster.cp_http(1, "/metrics")
    assert "strata_cp_is_leader 1" in metrics1 and "strata_cp_leader_changes_total 1" in metrics1, metrics1
    assert json.loads(cluster.cp_http(0, "/leader"))["leader_url"] == cluster.cp_urls[1]
    SUMMARY.append(f"LEADERSHIP clean handover (SIGTERM) took {handover:.2f} s; terms {term0} -> {term1}")


class Load:
    """Writer threads doing PUTs of distinct keys with random bodies through both data planes.
    A 503 SlowDown is a retryable failure: counted, and the same PUT is sent again."""

    def __init__(self, cluster: Cluster, bucket: str, threads: int = 4):
        self.bucket = bucket
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: dict[str, tuple[str, float, float]] = {}  # key -> (sha256, start, end)
        self.slowdowns = 0
        self.other: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(i, cluster.endpoints[i % 2]), daemon=True)
                        for i in range(threads)]

    def run(self, n: int, endpoint: str) -> None:
        c = client(endpoint)
        rnd = random.Random(n)
        i = 0
        while not self.stop.is_set():
            key = f"load/t{n}/{i:05d}"
            body = os.urandom(rnd.randint(1, 16 * 1024))
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    c.put_object(Bucket=self.bucket, Key=key, Body=body)
                except ClientError as e:
                    code = e.response["Error"]["Code"]
                    status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                    with self.lock:
                        if status == 503 and code == "SlowDown":
                            self.slowdowns += 1
                        else:
                            self.other.append(f"{key}: {status} {code}")
                    time.sleep(0.05)
                    continue
                except Exception as e:  # noqa: BLE001 - connection-level failures are counted too
                    with self.lock:
                        self.other.append(f"{key}: {type(e).__name__}: {e}")
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.acked[key] = (hashlib.sha256(body).hexdigest(), start, time.monotonic())
                break
            i += 1

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_leader_kill_during_write_load(cluster):
    bucket = unique_bucket("kill")
    client(cluster.endpoints[0]).create_bucket(Bucket=bucket)
    old = cluster.leader()
    _, term_before, _ = cluster.lease()
    load = Load(cluster, bucket)
    load.start()
    time.sleep(1.5)
    with load.lock:
        before_kill = len(load.acked)
    assert before_kill > 0, f"no write succeeded before the kill; errors: {load.other[:5]}"

    killed_at = time.monotonic()
    cluster.cps[old].signal(signal.SIGKILL)
    cluster.cps[old].wait_exit(10)

    def first_after_kill():
        with load.lock:
            ends = [end for (_, start, end) in load.acked.values() if start > killed_at]
        return min(ends) if ends else None

    wait_until(lambda: first_after_kill() is not None, 20, what="a write through the new leader")
    failover = first_after_kill() - killed_at
    time.sleep(2.0)
    load.join()

    new = cluster.leader()
    _, term_after, _ = cluster.lease()
    acked = dict(load.acked)
    summary = (f"LEADERSHIP leader kill -9: failover {failover:.2f} s (kill -> first acknowledged PUT started "
               f"after it); acknowledged {len(acked)} ({before_kill} before the kill), 503 SlowDown "
               f"{load.slowdowns}, other errors {len(load.other)}; leader cp{old} -> cp{new}, "
               f"term {term_before} -> {term_after}")
    SUMMARY.append(summary)
    print(summary)
    assert new != old and term_after == term_before + 1
    assert failover < 10, summary
    assert not load.other, f"{summary}: {load.other[:10]}"

    # Every acknowledged write reads back byte-exact, through either data plane.
    a, b = (client(ep) for ep in cluster.endpoints)
    for i, (key, (digest, _, _)) in enumerate(sorted(acked.items())):
        body = (a if i % 2 else b).get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, key
    # LIST shows each key exactly once, and nothing that was never written.
    listed = []
    for page in a.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="load/"):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert len(listed) == len(set(listed)), "a key is listed twice"
    assert set(acked) <= set(listed), f"lost: {sorted(set(acked) - set(listed))[:10]}"
    # A key beyond the acknowledged ones can only be one whose PUT was in flight when the load stopped.
    assert len(set(listed) - set(acked)) <= len(load.threads), sorted(set(listed) - set(acked))

    # The killed control plane comes back as a follower; the cluster keeps working.
    cluster.start_cp(old)
    round_trip(cluster, bucket, "after-kill")
    assert cluster.leader() == new


def test_paused_leader_is_deposed_and_its_late_writes_fenced(cluster):
    """SIGSTOP the leader under load (a GC pause, a frozen VM): the other control plane takes over when
    the lease runs out; on SIGCONT the old leader has stepped down on its own clock, and whatever it had
    in flight is refused by the fence instead of committed. No acknowledged write is lost."""
    bucket = unique_bucket("pause")
    client(cluster.endpoints[0]).create_bucket(Bucket=bucket)
    old = cluster.leader()
    _, term_before, _ = cluster.lease()
    load = Load(cluster, bucket, threads=2)
    load.start()
    time.sleep(1.0)
    paused = cluster.cps[old]
    paused.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        cluster.wait_leader(1 - old, timeout=15)
        takeover = time.monotonic() - t0
    finally:
        paused.signal(signal.SIGCONT)
    wait_until(lambda: "lost control-plane leadership" in paused.stdout_text() + paused.stderr_text(), 10,
               procs=[paused], what="the resumed leader steps down")
    time.sleep(2.0)
    load.join()
    _, term_after, _ = cluster.lease()
    assert cluster.leader() == 1 - old and term_after == term_before + 1
    logs = paused.stdout_text() + paused.stderr_text()
    fenced = logs.count("write rejected by the leadership fence")
    summary = (f"LEADERSHIP leader SIGSTOP: takeover after {takeover:.2f} s; acknowledged {len(load.acked)}, "
               f"503 SlowDown {load.slowdowns}, other errors {len(load.other)}, late writes fenced on the "
               f"deposed leader {fenced}")
    SUMMARY.append(summary)
    print(summary)
    assert not load.other, f"{summary}: {load.other[:10]}"
    a = client(cluster.endpoints[1])
    for key, (digest, _, _) in load.acked.items():
        assert hashlib.sha256(a.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == digest, key
    listed = [o["Key"] for p in a.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in p.get("Contents", [])]
    assert len(listed) == len(set(listed)) and set(load.acked) <= set(listed)
