"""The full scale-out topology of issue 6 as real processes, for tests/e2e/test_cluster.py.

    PostgreSQL + redis-server + 3 s3s-fs backends
    2 x `strata serve --role controlplane`  (share the database; one leads by the lease row)
    2 x `strata serve --role dataplane`     (each lists both control planes, counts in Redis)
    2 x `strata serve --role worker`        (run the jobs under PostgreSQL advisory locks)

Every port is ephemeral on 127.0.0.1. There is ONE config file per role, rendered from the
shared pieces (database, redis, backends, replication, jobs, credentials); what differs between
two processes of a role (listen addresses, data_dir) comes from `${STRATA_E2E_*}` variables in
each process's environment, which Strata expands when it loads the config.

    c = Cluster(tmp_path).start()
    c.endpoints            # the two data planes' S3 endpoints
    c.leader()             # index of the control plane holding the lease (read from PostgreSQL)
    c.stop_strata(); c.start_strata()    # restart every Strata process; PG/Redis/backends stay up
    c.kill(c.cps[c.leader()])            # SIGKILL one process
    c.stop()               # everything, PostgreSQL's data directory included
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

from harness import (
    ADMIN,
    LIVE,
    REGION,
    SCOPED,
    SCOPED_BUCKET,
    START_TIMEOUT,
    STRATA_BIN,
    StrataProc,
    child_env,
    free_ports,
    http_get,
    run,
    tcp_open,
    wait_until,
)
from multi import S3sFs
from pg import Postgres, Redis, db_yaml

# Short periods, so that one test sees several cycles of every job.
JOBS_YAML = """jobs: {cleanup_period_secs: 1, reaper_period_secs: 2, scrub_period_secs: 3, rewrite_period_secs: 2,
       delta_gc_period_secs: 2, multipart_period_secs: 1, lifecycle_period_secs: 1}
rebalance: {drain_period_secs: 1, overreplication_period_secs: 1}
"""


class Endpoint:
    """What harness's aws()/rclone_env()/s3cmd_args() need to know about one S3 endpoint."""

    def __init__(self, port: int):
        self.hostport = f"127.0.0.1:{port}"
        self.endpoint = f"http://{self.hostport}"


class Cluster:
    """The whole topology; `name` and `tail()` let conftest attach log tails to a failing test."""

    def __init__(self, root: Path, *, factor: int = 2):
        self.root = Path(root)
        self.name = f"cluster@{self.root.name}"
        self.created_at = time.monotonic()
        self.logs = self.root / "logs"
        self.factor = factor
        self.secret = uuid.uuid4().hex + uuid.uuid4().hex
        self.pg = Postgres()
        self.redis = Redis()
        self.fs = [S3sFs(self.root / f"fs{i}", name=f"fs{i}") for i in range(3)]
        self.db: str | None = None
        grpc, s3, work = free_ports(2), free_ports(2), free_ports(2)
        self.cp_urls = [f"http://127.0.0.1:{p}" for p in grpc]
        self.endpoints = [f"http://127.0.0.1:{p}" for p in s3]
        self.dp_endpoints = [Endpoint(p) for p in s3]
        self.worker_urls = [f"http://127.0.0.1:{p}" for p in work]
        self.configs = {role: self.root / f"{role}.yaml" for role in ("controlplane", "dataplane", "worker")}
        self.cps = [self._proc("cp", i, "controlplane", {"CP_LISTEN": f"127.0.0.1:{p}"}) for i, p in enumerate(grpc)]
        self.dps = [self._proc("dp", i, "dataplane", {"S3_LISTEN": f"127.0.0.1:{p}"}) for i, p in enumerate(s3)]
        self.workers = [self._proc("worker", i, "worker", {"WORKER_LISTEN": f"127.0.0.1:{p}"})
                        for i, p in enumerate(work)]

    def _proc(self, kind: str, i: int, role: str, listen: dict) -> StrataProc:
        env = {"STRATA_CLUSTER_SECRET": self.secret, "STRATA_E2E_DATA_DIR": str(self.root / f"{kind}{i}")}
        env.update({f"STRATA_E2E_{k}": v for k, v in listen.items()})
        return StrataProc(f"{kind}{i}", ["serve", "--role", role, "--config", str(self.configs[role])],
                          self.root, self.logs, child_env(env))

    @property
    def procs(self) -> list[StrataProc]:
        return self.cps + self.dps + self.workers

    # ---- configuration ----------------------------------------------------
    def render(self) -> None:
        backends = "backends:\n" + "\n".join(f.yaml(f"fs{i}") for i, f in enumerate(self.fs)) + "\n"
        shared = (f"data_dir: ${{STRATA_E2E_DATA_DIR}}\n"
                  f'cluster: {{secret: "${{STRATA_CLUSTER_SECRET}}"}}\n'
                  f"redis: {{url: '{self.redis.url}', key_prefix: 'cluster:', sync_ms: 100}}\n"
                  f"{backends}"
                  f"replication: {{factor: {self.factor}, interval_secs: 1}}\n"
                  "placement: {routing_strategy: spread}\n"
                  f"credentials:\n  - {{access_key_id: {ADMIN.access_key}, secret_access_key: {ADMIN.secret_key}, "
                  f"unrestricted: true}}\n"
                  f"  - {{access_key_id: {SCOPED.access_key}, secret_access_key: {SCOPED.secret_key}, "
                  f"buckets: [{SCOPED_BUCKET}]}}\n"
                  "logging: {format: json, level: info}\n")
        db = db_yaml(self.pg, self.db)
        self.configs["controlplane"].write_text(
            f"server: {{region: {REGION}}}\n"
            "control_plane: {listen: '${STRATA_E2E_CP_LISTEN}', advertise_url: 'http://${STRATA_E2E_CP_LISTEN}'}\n"
            + db + JOBS_YAML + shared)
        self.configs["dataplane"].write_text(
            f"server: {{listen: '${{STRATA_E2E_S3_LISTEN}}', region: {REGION}, clock_skew_secs: 900}}\n"
            f"control_plane: {{urls: [{', '.join(self.cp_urls)}]}}\n" + shared)
        self.configs["worker"].write_text(
            f"server: {{region: {REGION}}}\n"
            "worker: {listen: '${STRATA_E2E_WORKER_LISTEN}'}\n" + db + JOBS_YAML + shared)

    # ---- lifecycle -----------------------------------------------------------
    def start(self) -> "Cluster":
        """PostgreSQL, Redis and the backends, then every Strata process."""
        LIVE.append(self)
        self.pg.start()
        self.db = self.pg.create_database()
        self.redis.start()
        for f in self.fs:
            f.start()
        self.render()
        return self.start_strata(first=0)

    def start_strata(self, first: int | None = None) -> "Cluster":
        """Control planes (`first` takes the lease before the other starts), data planes, workers;
        returns once every data plane and worker answers /ready with 200."""
        order = [first, 1 - first] if first is not None else [0, 1]
        for i in order:
            self.cps[i].start()
            wait_until(lambda: tcp_open(int(self.cp_urls[i].rsplit(":", 1)[1])), START_TIMEOUT,
                       procs=[self.cps[i]], what=f"cp{i} gRPC port")
            if i == first:
                wait_until(lambda: self._leads(i), START_TIMEOUT, procs=[self.cps[i]], what=f"cp{i} leads")
        self.wait_leader(START_TIMEOUT)
        for p in self.dps + self.workers:
            p.start()
        for url, p in zip(self.endpoints + self.worker_urls, self.dps + self.workers):
            wait_until(lambda: http_get(f"{url}/ready", timeout=2)[0] == 200, START_TIMEOUT, procs=[p],
                       what=f"{p.name} /ready")
        return self

    def stop_strata(self) -> dict[str, int]:
        """SIGTERM every Strata process (workers, data planes, then control planes); exit codes."""
        return {p.name: p.stop() for p in self.workers + self.dps + self.cps}

    def kill(self, p: StrataProc) -> None:
        p.signal(signal.SIGKILL)
        p.wait_exit(10)

    def stop(self) -> dict[str, int]:
        """Everything; returns the Strata processes' exit codes (0 = clean SIGTERM shutdown)."""
        try:
            return self.stop_strata()
        finally:
            for f in self.fs:
                f.stop()
            self.redis.cleanup()
            self.pg.stop()
            if self in LIVE:
                LIVE.remove(self)

    def tail(self, n: int = 40) -> str:
        return "\n".join([p.tail(n) for p in self.procs] + [f"--- postgres log ---\n{self.pg.log()[-2000:]}"])

    # ---- what the tests read -------------------------------------------------
    def lease(self) -> tuple[str, int, bool]:
        """(url, term, valid) of the lease row, from PostgreSQL itself."""
        url, term, valid = self.pg.psql("SELECT url, term, expires_at > now() FROM cp_lease", db=self.db).split("|")
        return url, int(term), valid == "t"

    def leader(self) -> int:
        url, _, valid = self.lease()
        assert valid, "no valid lease"
        return self.cp_urls.index(url)

    def _leads(self, i: int) -> bool:
        try:
            return self.leader() == i
        except (AssertionError, ValueError):
            return False

    def wait_leader(self, timeout: float = 15) -> int:
        wait_until(lambda: any(self._leads(i) for i in range(2)), timeout, what="a control plane leads")
        return self.leader()

    def cli(self, *args: str, check: bool = True):
        """`strata ARGS --config controlplane.yaml`, e.g. `cli("backends", "drain", "fs1")`."""
        return run([STRATA_BIN, *args, "--config", str(self.configs["controlplane"])], env=self.cps[0].env,
                   check=check, timeout=60)

    def jobs(self, w: int) -> dict[str, dict]:
        """Worker `w`'s GET /status/jobs, by job name."""
        status, _, body = http_get(f"{self.worker_urls[w]}/status/jobs")
        assert status == 200, (status, body[:300])
        return {j["name"]: j for j in json.loads(body)}
