"""Operational surface: health/readiness/metrics, request ids, config validation, version,
the embedded development default, graceful shutdown, split-mode security, virtual hosts."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import signal
import socket
import threading
import time

import pytest
from botocore.exceptions import ClientError

import s3raw
from harness import (
    ADMIN,
    LIVE,
    MODES,
    STRATA_BIN,
    Creds,
    Strata,
    StrataProc,
    boto3_client,
    tcp_open,
    child_env,
    client_error,
    free_port,
    http_get,
    render_config,
    run,
    unique_bucket,
    wait_until,
)

MiB = 1 << 20


# ---------------------------------------------------------------------------
# health, readiness, metrics, request ids
# ---------------------------------------------------------------------------

def test_health_and_ready(server):
    status, _, _ = http_get(f"{server.endpoint}/health")
    assert status == 200
    status, _, _ = http_get(f"{server.endpoint}/ready")
    assert status == 200


SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(server) -> list[tuple[str, dict, float]]:
    status, headers, body = http_get(f"{server.endpoint}/metrics")
    assert status == 200, body[:500]
    samples = []
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"unparseable metrics line: {line!r}"
        labels = dict(LABEL_RE.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def total(samples, name, **match) -> float:
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in match.items()))


def test_metrics_counters_increase(server, s3, bucket):
    before = scrape(server)
    payload = os.urandom(10_000)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"m{i}", Body=payload)
    for i in range(3):
        assert s3.get_object(Bucket=bucket, Key=f"m{i}")["Body"].read() == payload
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="missing")
    after = scrape(server)

    names = {n for n, _, _ in after}
    for required in ("strata_s3_requests_total", "strata_s3_request_duration_seconds_bucket",
                     "strata_s3_request_duration_seconds_sum", "strata_s3_request_duration_seconds_count",
                     "strata_s3_bytes_in_total", "strata_s3_bytes_out_total"):
        assert required in names, f"{required} missing from /metrics; have {sorted(names)}"

    req = [(l, v) for n, l, v in after if n == "strata_s3_requests_total"]
    assert all("op" in l and "status" in l for l, _ in req), req
    assert total(after, "strata_s3_requests_total") - total(before, "strata_s3_requests_total") >= 7
    assert total(after, "strata_s3_requests_total", status="404") >= 1, req
    ops = {l["op"] for l, _ in req}
    assert any(re.search(r"put_?object", o, re.I) for o in ops), ops
    assert any(re.search(r"get_?object", o, re.I) for o in ops), ops

    assert total(after, "strata_s3_bytes_in_total") - total(before, "strata_s3_bytes_in_total") >= 30_000
    assert total(after, "strata_s3_bytes_out_total") - total(before, "strata_s3_bytes_out_total") >= 30_000

    count = "strata_s3_request_duration_seconds_count"
    assert total(after, count) - total(before, count) >= 7
    inf = [l for n, l, _ in after if n == "strata_s3_request_duration_seconds_bucket" and l.get("le") == "+Inf"]
    assert inf, "histogram has no le=\"+Inf\" bucket"


def test_request_id_on_every_response(server, s3, bucket):
    ids = []
    responses = [
        s3.list_buckets(),
        s3.put_object(Bucket=bucket, Key="rid", Body=b"x"),
        s3.get_object(Bucket=bucket, Key="rid"),
        s3.head_object(Bucket=bucket, Key="rid"),
        s3.list_objects_v2(Bucket=bucket),
        s3.delete_object(Bucket=bucket, Key="rid"),
    ]
    for r in responses:
        rid = r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
        assert rid, r["ResponseMetadata"]
        ids.append(rid)
    for call in (lambda: s3.get_object(Bucket=bucket, Key="rid"), lambda: s3.head_object(Bucket=bucket, Key="rid")):
        with pytest.raises(ClientError) as e:
            call()
        rid = e.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
        assert rid
        ids.append(rid)
    assert len(set(ids)) == len(ids), ids


# ---------------------------------------------------------------------------
# CLI: validate, version
# ---------------------------------------------------------------------------

def strata_cli(*args, env_extra=None, cwd=None):
    return run([STRATA_BIN, *args], env=child_env(env_extra), check=False, timeout=60, cwd=cwd)


def test_validate_good_config(tmp_path):
    cfg = tmp_path / "good.yaml"
    cfg.write_text(render_config(data_dir=tmp_path / "data", s3_port=free_port(), grpc_port=free_port(),
                                 domain="s3.local"))
    cp = strata_cli("validate", "--config", str(cfg), env_extra={"STRATA_CLUSTER_SECRET": "x" * 40})
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert (cp.stdout + cp.stderr).strip(), "validate should print a summary"


def test_validate_reaches_s3_backends(tmp_path):
    """A missing bucket and bad credentials are config errors that name the backend's field."""
    port = free_port()
    fs = StrataProc("s3s-fs", ["--host", "127.0.0.1", "--port", str(port), "--access-key", "FSAK01",
                               "--secret-key", "fssecret0123", str(tmp_path / "fs")],
                    tmp_path, tmp_path / "logs", child_env(), program="s3s-fs")
    (tmp_path / "fs").mkdir()
    fs.start()
    try:
        wait_until(lambda: tcp_open(port), 20, procs=[fs], what="s3s-fs port")
        boto3_client(f"http://127.0.0.1:{port}", Creds("FSAK01", "fssecret0123")).create_bucket(Bucket="present")
        backend = ("  - {{type: s3, id: {id}, endpoint: 'http://127.0.0.1:%d', bucket: {bucket}, "
                   "access_key_id: FSAK01, secret_access_key: {secret}}}" % port)
        cfg = tmp_path / "s3.yaml"
        cfg.write_text("backends:\n" + "\n".join([
            backend.format(id="good", bucket="present", secret="fssecret0123"),
            backend.format(id="nobucket", bucket="missing-bucket", secret="fssecret0123"),
            backend.format(id="badcreds", bucket="present", secret="wrongsecret99"),
        ]) + "\n")
        cp = strata_cli("validate", "--config", str(cfg))
        out = cp.stdout + cp.stderr
        assert cp.returncode == 1, out
        assert "backends[1]" in out and "missing-bucket" in out, out
        assert "backends[2]" in out and "secret_access_key" in out, out
        assert "backends[0]" not in out, out
        cp = strata_cli("validate", "--config", str(cfg), "--offline")
        assert cp.returncode == 0, cp.stdout + cp.stderr
    finally:
        fs.stop()


BAD_CONFIG = """\
data_dir: {data}
server:
  listen: {listen}
  region: us-east-1
control_plane:
  listen: 127.0.0.1:{grpc}
  url: http://127.0.0.1:{grpc}
cluster:
  secret: too-short
backends:
  - {{type: local, id: local, path: {data}/objects}}
credentials:
  - {{access_key_id: AKBAD00001, secret_access_key: badsecret0123456, buckets: ["Not_A_Valid_Bucket!!"]}}
{extra}"""


def bad_config(tmp_path, *, listen: str | None = None, unknown_key: bool = False) -> str:
    return BAD_CONFIG.format(data=tmp_path / "data", grpc=free_port(), listen=listen or f"127.0.0.1:{free_port()}",
                             extra="bogus_key: 1\n" if unknown_key else "")


@pytest.mark.parametrize("variant", ["semantic", "semantic+unknown-key", "semantic+bad-listen"])
def test_validate_bad_config_lists_every_error(tmp_path, variant):
    """`strata validate` exits 1 and names every broken field as `FIELD: how to fix`, also when
    a key is unknown or a value does not parse."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad_config(tmp_path, unknown_key="unknown-key" in variant,
                              listen="not-an-address" if "bad-listen" in variant else None))
    cp = strata_cli("validate", "--config", str(cfg))
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1, out
    fields = ["cluster.secret", r"credentials\[0\]\.buckets"]
    if "unknown-key" in variant:
        fields.append("bogus_key")
    if "bad-listen" in variant:
        fields.append("server.listen")
    missing = [f for f in fields if not re.search(f, out)]
    assert not missing, f"validate output does not name {missing}:\n{out}"
    for field in fields:
        assert re.search(field + r"[^\n]*:\s*\S", out), f"no 'FIELD: how to fix' line for {field}:\n{out}"


def test_validate_unknown_key_only(tmp_path):
    cfg = tmp_path / "unknown.yaml"
    good = render_config(data_dir=tmp_path / "data", s3_port=free_port(), grpc_port=free_port(),
                         secret="y" * 40)
    cfg.write_text(good.replace("server:\n", "server:\n  listne: 127.0.0.1:1\n", 1))
    cp = strata_cli("validate", "--config", str(cfg))
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "listne" in cp.stdout + cp.stderr


def test_serve_refuses_bad_config(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad_config(tmp_path))
    cp = strata_cli("serve", "--config", str(cfg))
    assert cp.returncode != 0, cp.stdout + cp.stderr


def test_version():
    cp = strata_cli("version")
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"\d+\.\d+\.\d+", cp.stdout), cp.stdout


# ---------------------------------------------------------------------------
# embedded default (no config)
# ---------------------------------------------------------------------------

def _creds_from(stdout: str) -> tuple[list[str], list[str]]:
    ak = re.findall(r"AWS_ACCESS_KEY_ID=['\"]?([^\s'\"]+)", stdout)
    sk = re.findall(r"AWS_SECRET_ACCESS_KEY=['\"]?([^\s'\"]+)", stdout)
    return ak, sk


def test_embedded_default_first_start(tmp_path):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    p = StrataProc("strata-default", ["serve", "--listen", f"127.0.0.1:{port}"], tmp_path, tmp_path / "logs",
                   child_env())
    LIVE.append(p)
    try:
        p.start()
        wait_until(lambda: http_get(f"{endpoint}/ready", timeout=2)[0] == 200, 60, procs=[p], what="/ready")
        out, err = p.stdout_text(), p.stderr_text()
        aks, sks = _creds_from(out)
        assert len(aks) == 1 and len(sks) == 1, f"credential should be printed once on stdout:\n{out}"
        creds = Creds(aks[0], sks[0])
        assert "development" in (out + err).lower(), "no development-setup warning"
        assert (out + err).count(creds.secret_key) == 1, "the secret must be printed exactly once"
        assert (tmp_path / "strata-data").is_dir()

        s3 = boto3_client(endpoint, creds)
        b = unique_bucket("dev")
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="k", Body=b"dev mode")
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"dev mode"
        bad = boto3_client(endpoint, Creds(creds.access_key, "wrong" + creds.secret_key))
        with pytest.raises(ClientError) as e:
            bad.list_buckets()
        assert client_error(e) == (403, "SignatureDoesNotMatch")
        assert p.stop() == 0

        p.start()
        wait_until(lambda: http_get(f"{endpoint}/ready", timeout=2)[0] == 200, 60, procs=[p], what="/ready")
        out2, err2 = p.stdout_text(), p.stderr_text()
        assert "AWS_SECRET_ACCESS_KEY=" not in out2, out2
        assert creds.secret_key not in out2 + err2
        s3 = boto3_client(endpoint, creds)
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"dev mode"
        assert p.stop() == 0
    finally:
        p.stop()
        LIVE.remove(p)


# ---------------------------------------------------------------------------
# graceful shutdown
# ---------------------------------------------------------------------------

def test_sigterm_lets_inflight_upload_finish(fresh_server):
    srv = fresh_server
    s3 = boto3_client(srv.endpoint)
    b = unique_bucket("sigterm")
    s3.create_bucket(Bucket=b)

    block = os.urandom(MiB)
    nblocks = 50
    chunks = [i.to_bytes(8, "big") + block[8:] for i in range(nblocks)]
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    size = nblocks * MiB
    path = s3raw.key_path(b, "inflight.bin")
    signed = s3raw.sign_headers("PUT", path, [], {"Host": srv.hostport, "Content-Length": str(size)},
                                h.hexdigest())

    conn = http.client.HTTPConnection("127.0.0.1", srv.s3_port, timeout=120)
    conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
    for k, v in signed.headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    result: dict = {}
    progress = {"sent": 0}

    def sender():
        try:
            step = 256 * 1024
            for c in chunks:
                for off in range(0, MiB, step):
                    conn.send(c[off:off + step])
                    progress["sent"] += step
                    time.sleep(0.02)  # ~12 MiB/s -> ~4 s for 50 MiB
            r = conn.getresponse()
            result["status"] = r.status
            result["etag"] = r.getheader("ETag")
            result["body"] = r.read()
        except Exception as e:  # noqa: BLE001
            result["error"] = repr(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    wait_until(lambda: progress["sent"] >= 10 * MiB, 30, what="10 MiB sent")
    sent_at_signal = progress["sent"]
    srv.main.signal(signal.SIGTERM)
    t.join(90)
    assert not t.is_alive(), "upload did not finish"
    assert sent_at_signal < size
    assert result.get("status") == 200, result
    rc = srv.main.wait_exit(30)
    assert rc == 0, f"exit code after SIGTERM: {rc}\n{srv.main.tail(60)}"

    # the object was committed: start the S3 process again and read it back
    srv.main.start()
    srv.wait_ready()
    got = boto3_client(srv.endpoint).get_object(Bucket=b, Key="inflight.bin")
    hh = hashlib.sha256()
    for piece in got["Body"].iter_chunks(1 << 20):
        hh.update(piece)
    assert hh.hexdigest() == h.hexdigest()


# ---------------------------------------------------------------------------
# split mode
# ---------------------------------------------------------------------------

@pytest.mark.skipif("split" not in MODES, reason="split mode disabled by STRATA_E2E_MODES")
def test_split_dataplane_with_wrong_cluster_secret_is_refused(tmp_path):
    srv = Strata("split", tmp_path / "wrongsecret", dataplane_secret="W" * 48)
    try:
        srv.start(wait_ready=False)
        wait_until(lambda: http_get(f"{srv.endpoint}/health", timeout=2)[0] == 200, 60, procs=srv.procs,
                   what="dataplane /health")
        statuses = set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            statuses.add(http_get(f"{srv.endpoint}/ready", timeout=2)[0])
            time.sleep(0.25)
        assert 200 not in statuses, f"/ready answered 200 with a wrong cluster secret: {statuses}"
        for method, path in (("GET", "/"), ("PUT", "/should-not-exist")):
            r = s3raw.request(srv, method, path)
            assert 500 <= r.status < 600, r
        assert srv.control.alive(), "control plane died"
    finally:
        srv.stop_and_check()


@pytest.mark.skipif("split" not in MODES, reason="split mode disabled by STRATA_E2E_MODES")
def test_split_dataplane_recovers_after_controlplane_restart(tmp_path):
    srv = Strata("split", tmp_path / "cprestart")
    try:
        srv.start()
        s3 = boto3_client(srv.endpoint)
        b = unique_bucket("cp")
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="k", Body=b"before outage")
        assert srv.control.stop() == 0
        # while the control plane is down, requests may fail with 5xx but never with a wrong answer
        r = s3raw.request(srv, "GET", s3raw.key_path(b, "k"))
        assert r.status == 200 and r.body == b"before outage" or 500 <= r.status < 600, r
        srv.control.start()
        wait_until(lambda: http_get(f"{srv.endpoint}/ready", timeout=2)[0] == 200, 60, procs=srv.procs,
                   what="dataplane ready again")
        deadline = time.monotonic() + 30
        while True:
            try:
                s3.put_object(Bucket=b, Key="k2", Body=b"after outage")
                break
            except ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"before outage"
        assert s3.get_object(Bucket=b, Key="k2")["Body"].read() == b"after outage"
    finally:
        srv.stop_and_check()


# ---------------------------------------------------------------------------
# virtual-host style addressing
# ---------------------------------------------------------------------------

@pytest.fixture(params=MODES)
def vhost_server(request, tmp_path):
    srv = Strata(request.param, tmp_path / "vhost", domain="s3.local")
    srv.start()
    yield srv
    srv.stop_and_check()


@pytest.fixture
def resolve_s3_local(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and (host == "s3.local" or host.endswith(".s3.local")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_virtual_host_addressing(vhost_server, resolve_s3_local):
    srv = vhost_server
    domain_ep = f"http://s3.local:{srv.s3_port}"
    seen_hosts = []
    vh = boto3_client(domain_ep, ADMIN, addressing_style="virtual")
    vh.meta.events.register("before-send.s3.*", lambda request, **kw: seen_hosts.append(request.url))
    path = boto3_client(srv.endpoint, ADMIN)

    b = unique_bucket("vhost")
    vh.create_bucket(Bucket=b)
    vh.put_object(Bucket=b, Key="dir/v key.txt", Body=b"virtual")
    assert any(u.startswith(f"http://{b}.s3.local:{srv.s3_port}/") for u in seen_hosts), seen_hosts

    assert vh.get_object(Bucket=b, Key="dir/v key.txt")["Body"].read() == b"virtual"
    assert [o["Key"] for o in vh.list_objects_v2(Bucket=b)["Contents"]] == ["dir/v key.txt"]
    assert path.get_object(Bucket=b, Key="dir/v key.txt")["Body"].read() == b"virtual"
    assert b in [x["Name"] for x in vh.list_buckets()["Buckets"]]

    path.put_object(Bucket=b, Key="from-path", Body=b"path style")
    assert vh.get_object(Bucket=b, Key="from-path")["Body"].read() == b"path style"
    # path style on the domain host still works
    dom_path = boto3_client(domain_ep, ADMIN, addressing_style="path")
    assert dom_path.get_object(Bucket=b, Key="from-path")["Body"].read() == b"path style"

    # raw: Host header carries the bucket, the path is just the key
    r = s3raw.request(srv, "GET", "/from-path", host_header=f"{b}.s3.local:{srv.s3_port}")
    assert r.status == 200 and r.body == b"path style", r
    r = s3raw.request(srv, "GET", "/", query=[("list-type", "2")], host_header=f"{b}.s3.local:{srv.s3_port}")
    assert r.status == 200 and b"<Key>from-path</Key>" in r.body, r
    r = s3raw.request(srv, "GET", "/nope", host_header=f"{unique_bucket('nobucket')}.s3.local:{srv.s3_port}")
    s3raw.assert_s3_error(r, 404, "NoSuchBucket")

    vh.delete_object(Bucket=b, Key="dir/v key.txt")
    vh.delete_object(Bucket=b, Key="from-path")
    vh.delete_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        path.head_bucket(Bucket=b)
    assert client_error(e)[0] == 404
