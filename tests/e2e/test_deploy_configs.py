"""The deployment files (helm/strata, nomad/strata.nomad.hcl) stay valid Strata configs.

Helm is not needed: the chart keeps its Strata config as a plain file (helm/strata/files/strata.yaml,
included verbatim by templates/configmap.yaml, followed by `config.sections` as YAML), and every pod
fills its `${VAR}`s from its environment. These tests build that config and that environment from
values.yaml plus each ci/*-values.yaml, the same way the templates do, and run the real
`strata validate --offline --role R` on it for every role. The Nomad job's config is extracted
from its heredoc and validated the same way. The templates themselves are checked for YAML and
template-block syntax; with `helm` on PATH, `helm lint` and `helm template` run too, and the
rendered ConfigMap is compared with what these tests validated. Finally the chart's config runs a
real control plane, worker and data plane on PostgreSQL and two s3s-fs backends.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from harness import (
    ADMIN,
    BACKING,
    REPO,
    STRATA_BIN,
    StrataProc,
    boto3_client,
    child_env,
    free_ports,
    http_get,
    tcp_open,
    wait_until,
)
from multi import PREFIX, S3sFs
from pg import Postgres

CHART = REPO / "helm" / "strata"
CONFIG_FILE = CHART / "files" / "strata.yaml"
NOMAD_JOB = REPO / "nomad" / "strata.nomad.hcl"
ROLES = ("dataplane", "controlplane", "worker")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# Parts of values.yaml that are free-form maps (anything may appear under them).
FREE_FORM = {"config.sections", "secrets.env", "resources", "annotations", "affinity", "nodeSelector",
             "podAnnotations", "serviceAccount.annotations", "podSecurityContext", "securityContext"}


# ---------------------------------------------------------------------------
# what the chart renders, without helm
# ---------------------------------------------------------------------------

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def chart_values(values_file: Path | None) -> dict:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return deep_merge(values, yaml.safe_load(values_file.read_text())) if values_file else values


def chart_config(values: dict) -> str:
    """templates/configmap.yaml: files/strata.yaml verbatim, then `config.sections` as YAML."""
    text = CONFIG_FILE.read_text()
    sections = values["config"].get("sections") or {}
    if sections:
        text = text.rstrip("\n") + "\n" + yaml.safe_dump(sections, default_flow_style=False)
    return text


def chart_env(values: dict, role: str) -> dict[str, str]:
    """The environment of a pod: "strata.env" in templates/_helpers.tpl plus templates/secret.yaml."""
    c, db, sec, cp = values["config"], values["database"], values["secrets"], values["controlplane"]
    pods = max(cp["replicas"], cp["autoscaling"]["maxReplicas"] if cp["autoscaling"]["enabled"] else 0)
    pod_ip, pod_name = "10.42.0.7", f"strata-{role}-0"
    headless = "strata-controlplane-headless.default.svc"
    advertise = {"podIP": f"http://{pod_ip}:{c['grpcPort']}",
                 "podDNS": f"http://{pod_name}.{headless}:{c['grpcPort']}"}[cp["advertise"]]
    env = {
        "POD_IP": pod_ip,
        "POD_NAME": pod_name,
        "STRATA_DATA_DIR": values["dataDir"]["path"],
        "STRATA_S3_LISTEN": f"0.0.0.0:{c['s3Port']}",
        "STRATA_GRPC_LISTEN": f"0.0.0.0:{c['grpcPort']}",
        "STRATA_CONTROL_PLANE_URL": ",".join(f"http://strata-controlplane-{i}.{headless}:{c['grpcPort']}"
                                             for i in range(pods)),
        "STRATA_ADVERTISE_URL": advertise,
        "STRATA_LEASE_SECS": str(cp["leaseSecs"]),
        "STRATA_WORKER_LISTEN": f"0.0.0.0:{values['worker']['statusPort']}",
        "STRATA_REGION": str(c["region"]),
        "STRATA_DOMAIN": str(c["domain"]),
        "STRATA_SHUTDOWN_GRACE_SECS": str(c["shutdownGraceSecs"]),
        "STRATA_LOG_FORMAT": str(c["logFormat"]),
        "STRATA_LOG_LEVEL": str(c["logLevel"]),
        "STRATA_DATABASE_MAX_CONNECTIONS": str(db["maxConnections"]),
    }
    if db["host"]:
        env.update({
            "STRATA_DATABASE_HOST": str(db["host"]),
            "STRATA_DATABASE_PORT": str(db["port"]),
            "STRATA_DATABASE_USER": str(db["user"]),
            "STRATA_DATABASE_NAME": str(db["dbname"]),
        })
    for e in values.get("extraEnv") or []:
        env[e["name"]] = str(e.get("value", ""))
    # The Secret (envFrom): a generated 64-character cluster secret when none is given.
    env["STRATA_CLUSTER_SECRET"] = sec["clusterSecret"] or "g" * 64
    if sec["databaseUrl"]:
        env["STRATA_DATABASE_URL"] = sec["databaseUrl"]
    if sec["databasePassword"]:
        env["STRATA_DATABASE_PASSWORD"] = sec["databasePassword"]
    if sec["redisUrl"]:
        env["STRATA_REDIS_URL"] = sec["redisUrl"]
    env.update({k: str(v) for k, v in (sec.get("env") or {}).items()})
    return env


def strata_validate(tmp_path: Path, config: str, env: dict[str, str], role: str) -> subprocess.CompletedProcess:
    if not os.path.exists(STRATA_BIN):
        pytest.fail(f"strata binary not found at {STRATA_BIN}: build it with `cargo build -p strata`")
    path = tmp_path / f"strata-{role}.yaml"
    path.write_text(config)
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    return subprocess.run([STRATA_BIN, "validate", "--offline", "--role", role, "--config", str(path)],
                          env=clean, capture_output=True, text=True, timeout=60)


def required_vars(text: str) -> set[str]:
    """`${VAR}` placeholders without a default."""
    return {m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(2) is None}


# ---------------------------------------------------------------------------
# the chart's config, for every role and every ci values file
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_chart_config_is_valid_for_every_role(values_file, role, tmp_path):
    values = chart_values(values_file)
    env = chart_env(values, role)
    cp = strata_validate(tmp_path, chart_config(values), env, role)
    assert cp.returncode == 0, f"strata validate --role {role} failed:\n{cp.stdout}\n{cp.stderr}"
    assert f"valid for --role {role}" in cp.stdout
    assert "metadata:       PostgreSQL" in cp.stdout, cp.stdout
    for b in values["config"]["sections"]["backends"]:
        assert f"backend:        {b['id']} " in cp.stdout, cp.stdout
    assert f"(region {values['config']['region']})" in cp.stdout
    # Secrets reach Strata but are never printed.
    for secret in [env["STRATA_CLUSTER_SECRET"], values["secrets"]["databasePassword"],
                   *(values["secrets"]["env"] or {}).values()]:
        if secret and len(str(secret)) >= 6:
            assert str(secret) not in cp.stdout + cp.stderr


def test_chart_database_by_url_and_by_fields(tmp_path):
    by_url = strata_validate(tmp_path, chart_config(chart_values(CHART / "ci" / "postgres-url-values.yaml")),
                             chart_env(chart_values(CHART / "ci" / "postgres-url-values.yaml"), "controlplane"),
                             "controlplane")
    assert "PostgreSQL postgres://strata:<redacted>@postgres.db.svc:5432/strata (pool of 16)" in by_url.stdout, \
        by_url.stdout + by_url.stderr
    values = chart_values(CHART / "ci" / "postgres-fields-values.yaml")
    by_fields = strata_validate(tmp_path, chart_config(values), chart_env(values, "controlplane"), "controlplane")
    assert "PostgreSQL postgres://strata:<redacted>@postgres.db.svc:5433/strata_prod (pool of 8)" in by_fields.stdout, \
        by_fields.stdout + by_fields.stderr


def test_chart_config_errors_say_what_to_fix(tmp_path):
    """The validation has teeth: a Secret without the cluster secret, a control plane without
    its advertised URL, or too few backends for the replication factor fail with the field."""
    values = chart_values(CHART / "ci" / "postgres-url-values.yaml")
    env = chart_env(values, "dataplane")
    del env["STRATA_CLUSTER_SECRET"]
    cp = strata_validate(tmp_path, chart_config(values), env, "dataplane")
    assert cp.returncode == 1
    assert "STRATA_CLUSTER_SECRET is not set" in cp.stderr, cp.stderr

    env = chart_env(values, "controlplane")
    del env["STRATA_ADVERTISE_URL"]
    cp = strata_validate(tmp_path, chart_config(values), env, "controlplane")
    assert cp.returncode == 1
    assert "control_plane.advertise_url" in cp.stderr, cp.stderr

    values = deep_merge(values, {"config": {"sections": {"replication": {"factor": 3}}}})
    cp = strata_validate(tmp_path, chart_config(values), chart_env(values, "worker"), "worker")
    assert cp.returncode == 1
    assert "replication.factor" in cp.stderr, cp.stderr


def test_chart_env_matches_templates():
    """chart_env() mirrors the templates: every name it sets is set by _helpers.tpl or the
    Secret, every env name of _helpers.tpl is mirrored, and every `${VAR}` without a default
    in the config has a value."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    secret = (CHART / "templates" / "secret.yaml").read_text()
    template_env = set(re.findall(r"^- name: ([A-Z_][A-Z0-9_]*)$", helpers, re.M))
    secret_keys = set(re.findall(r"^  ([A-Z_][A-Z0-9_]*): \{\{", secret, re.M))
    assert {"STRATA_CLUSTER_SECRET", "STRATA_DATABASE_URL", "STRATA_DATABASE_PASSWORD"} <= secret_keys
    mirrored: set[str] = set()
    for values_file in CI_VALUES:
        values = chart_values(values_file)
        for role in ROLES:
            env = chart_env(values, role)
            mirrored |= set(env)
            from_values = set(values["secrets"]["env"] or {})
            unknown = set(env) - template_env - secret_keys - from_values
            assert not unknown, f"set by the test but not by the templates: {sorted(unknown)}"
            missing = required_vars(chart_config(values)) - set(env)
            assert not missing, f"{values_file.name}: no value for {sorted(missing)}"
    assert template_env <= mirrored, f"templates set {sorted(template_env - mirrored)}; mirror them in chart_env()"


def test_configmap_includes_the_config_file_verbatim():
    cm = (CHART / "templates" / "configmap.yaml").read_text()
    assert '.Files.Get "files/strata.yaml"' in cm
    assert "with .Values.config.sections" in cm and "toYaml ." in cm
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    # SIGTERM grace: Kubernetes waits at least server.shutdown_grace_secs before SIGKILL.
    assert "terminationGracePeriodSeconds: {{ add .Values.config.shutdownGraceSecs" in helpers


# ---------------------------------------------------------------------------
# the chart's files: YAML, template blocks, values keys
# ---------------------------------------------------------------------------

TEMPLATE_ACTION = re.compile(r"\{\{.*?\}\}", re.S)


def strip_template(text: str) -> str:
    """Template comments and action-only lines removed, inline actions replaced by a scalar."""
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        if line.strip() and not TEMPLATE_ACTION.sub("", line).strip():
            continue
        lines.append(TEMPLATE_ACTION.sub("x", line))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("template", sorted((CHART / "templates").glob("*.yaml")), ids=lambda p: p.name)
def test_template_is_yaml(template):
    docs = [d for d in yaml.safe_load_all(strip_template(template.read_text())) if d is not None]
    assert docs, f"{template.name} has no manifest"
    for d in docs:
        assert isinstance(d, dict), f"{template.name}: a document is not a mapping: {d!r}"
        assert {"apiVersion", "kind", "metadata"} <= set(d), f"{template.name}: {sorted(d)}"


@pytest.mark.parametrize("path", sorted((CHART / "templates").iterdir()), ids=lambda p: p.name)
def test_template_blocks_balance(path):
    depth = 0
    for n, action in enumerate(TEMPLATE_ACTION.findall(path.read_text())):
        word = action.strip("{}-/* \n").split(" ", 1)[0]
        if word in ("if", "range", "with", "define", "block"):
            depth += 1
        elif word == "end":
            depth -= 1
            assert depth >= 0, f"{path.name}: `end` without a block at action {n}: {action}"
    assert depth == 0, f"{path.name}: {depth} block(s) not closed"


def _key_paths(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        p = f"{prefix}{k}"
        out.add(p)
        if isinstance(v, dict) and not any(p == f or p.endswith("." + f) for f in FREE_FORM):
            out |= _key_paths(v, p + ".")
    return out


def test_chart_metadata_and_values_keys():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "strata" and chart["version"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["controlplane"]["replicas"] == 2 and values["worker"]["replicas"] == 2
    known = _key_paths(values)
    assert CI_VALUES, "helm/strata/ci/*-values.yaml are missing"
    for f in CI_VALUES:
        # Helm ignores a misspelt key silently; here it fails.
        typos = _key_paths(yaml.safe_load(f.read_text())) - known
        assert not typos, f"{f.name}: keys not in values.yaml: {sorted(typos)}"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_helm_lint_and_template(values_file, tmp_path):
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not on PATH: `helm lint` and `helm template` not run (the checks above run without it)")
    lint = subprocess.run([helm, "lint", str(CHART), "-f", str(values_file)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = subprocess.run([helm, "template", "t", str(CHART), "-f", str(values_file)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    expected = chart_config(chart_values(values_file))
    assert yaml.safe_load(cm["data"]["strata.yaml"]) == yaml.safe_load(expected)


# ---------------------------------------------------------------------------
# the Nomad job
# ---------------------------------------------------------------------------

def hcl_heredoc(text: str, name: str) -> str:
    """The value of `name = <<-EOT ... EOT`, dedented, with HCL's `$${` and `%%{` escapes undone."""
    m = re.search(rf"^\s*{name}\s*=\s*<<(-?)(\w+)\n(.*?)^\s*\2\s*$", text, re.S | re.M)
    assert m, f"{name} heredoc not found in {NOMAD_JOB.name}"
    body = textwrap.dedent(m.group(3)) if m.group(1) else m.group(3)
    return body.replace("$${", "${").replace("%%{", "%{")


def nomad_groups(text: str) -> dict[str, str]:
    parts = re.split(r'^  group "([a-z]+)" \{$', text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def nomad_env(group: str, text: str) -> dict[str, str]:
    """The task environment Nomad gives a group: its `env` block, plus the env templates."""
    names = set(re.findall(r"^\s+([A-Z_][A-Z0-9_]*)\s*=", re.search(r"env \{\n(.*?)\n\s+\}", group, re.S).group(1),
                           re.M))
    for local in re.findall(r"local\.(\w+_env)", group):
        names |= set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", hcl_heredoc(text, local), re.M))
    known = {
        "STRATA_CLUSTER_SECRET": "c" * 64,
        "STRATA_DATABASE_URL": "postgres://strata:pw@db.service.consul:5432/strata",
        "STRATA_CONTROL_PLANE_URL": "http://10.0.0.5:23456,http://10.0.0.6:25432",
        "STRATA_ADVERTISE_URL": "http://10.0.0.5:23456",
        "STRATA_LEASE_SECS": "5",
        "STRATA_REGION": "us-east-1",
        "STRATA_SHUTDOWN_GRACE_SECS": "30",
        "STRATA_DATA_DIR": "/alloc/data",
    }
    return {n: known.get(n, f"value-of-{n.lower()}") for n in names}


@pytest.mark.parametrize("role", ROLES)
def test_nomad_config_is_valid_for_every_role(role, tmp_path):
    text = NOMAD_JOB.read_text()
    config = hcl_heredoc(text, "strata_config")
    assert "{{" not in config, "the config template must be plain YAML with ${VAR}s"
    group = nomad_groups(text)[role]
    assert "data        = local.strata_config" in group
    assert f'"--role", "{role}"' in group
    env = nomad_env(group, text)
    missing = required_vars(config) - set(env)
    assert not missing, f"group {role}: no value for {sorted(missing)}"
    cp = strata_validate(tmp_path, config, env, role)
    assert cp.returncode == 0, f"nomad {role} config:\n{cp.stdout}\n{cp.stderr}"
    assert "metadata:       PostgreSQL" in cp.stdout


def test_nomad_config_is_the_chart_config():
    """The Nomad config starts from the same file as the chart: every line of files/strata.yaml
    (comments aside) appears in it, in order."""
    nomad_lines = iter(hcl_heredoc(NOMAD_JOB.read_text(), "strata_config").splitlines())
    for line in CONFIG_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert any(line == n for n in nomad_lines), f"not in the Nomad config (in order): {line!r}"


def test_nomad_job_structure():
    text = NOMAD_JOB.read_text()
    groups = nomad_groups(text)
    assert set(groups) == set(ROLES)
    counts = {g: re.search(r"count = var\.(\w+)", body).group(1) for g, body in groups.items()}
    defaults = {v: int(d) for v, d in re.findall(r'variable "(\w+_count)" \{\n.*?default = (\d+)', text, re.S)}
    assert defaults[counts["controlplane"]] == 2 and defaults[counts["worker"]] == 2
    for g in ("dataplane", "worker"):
        assert 'path     = "/ready"' in groups[g] and 'path     = "/health"' in groups[g], g
    for g, body in groups.items():
        assert 'kill_signal  = "SIGTERM"' in body and "kill_timeout = local.kill_timeout" in body, g
    # Braces balance outside heredocs and strings.
    outside = re.sub(r"<<-?(\w+)\n.*?^\s*\1\s*$", "", text, flags=re.S | re.M)
    outside = re.sub(r'"(\\.|[^"\\])*"', '""', outside)
    outside = re.sub(r"#.*", "", outside)
    assert outside.count("{") == outside.count("}")
    nomad = shutil.which("nomad")
    if nomad:
        fmt = subprocess.run([nomad, "fmt", "-check", str(NOMAD_JOB)], capture_output=True, text=True)
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr


# ---------------------------------------------------------------------------
# the chart's config runs: control plane, worker and data plane as real processes
# ---------------------------------------------------------------------------

def test_chart_config_runs_the_three_roles(tmp_path):
    """PostgreSQL, two s3s-fs backends, two control planes, a worker and a data plane, all
    started with the chart's config and a pod environment (ports and URLs moved to local ones,
    as the chart's env allows): a PUT through the data plane reads back and reaches both
    backends (replication factor 2); after the leading control plane is killed with SIGKILL the
    standby takes over, new PUTs succeed and the first object still reads back; every other
    process stops cleanly on SIGTERM."""
    pg = Postgres()
    fs = [S3sFs(tmp_path / f"fs{i}") for i in range(2)]
    procs: list[StrataProc] = []
    try:
        pg.start()
        db = pg.create_database()
        for f in fs:
            f.start()
        s3_port, worker_port, *grpc = free_ports(4)
        cp_urls = [f"http://127.0.0.1:{p}" for p in grpc]
        values = deep_merge(chart_values(None), {
            "config": {"logFormat": "text", "sections": {
                "replication": {"factor": 2},
                "backends": [{"type": "s3", "id": f"fs{i}", "endpoint": f.endpoint, "bucket": f.bucket,
                              "prefix": PREFIX, "access_key_id": "${BACKING_KEY_ID}",
                              "secret_access_key": "${BACKING_SECRET}", "max_attempts": 1}
                             for i, f in enumerate(fs)],
                "credentials": [{"access_key_id": ADMIN.access_key, "secret_access_key": "${STRATA_ADMIN_SECRET}",
                                 "unrestricted": True}],
            }},
            "database": {"host": "127.0.0.1", "port": pg.port, "user": "postgres", "dbname": db},
            "secrets": {"clusterSecret": os.urandom(24).hex(), "env": {
                "BACKING_KEY_ID": BACKING.access_key, "BACKING_SECRET": BACKING.secret_key,
                "STRATA_ADMIN_SECRET": ADMIN.secret_key}},
        })
        config = tmp_path / "strata.yaml"
        config.write_text(chart_config(values))

        def start(role: str, name: str, **local) -> StrataProc:
            env = chart_env(values, role)
            env.update({"STRATA_DATA_DIR": str(tmp_path / name), "STRATA_S3_LISTEN": f"127.0.0.1:{s3_port}",
                        "STRATA_CONTROL_PLANE_URL": ",".join(cp_urls), **local})
            p = StrataProc(name, ["serve", "--role", role, "--config", str(config)], tmp_path, tmp_path / "logs",
                           child_env(env))
            p.start()
            procs.append(p)
            return p

        def lease_url() -> str:
            return pg.psql("SELECT url FROM cp_lease WHERE expires_at > now()", db=db)

        cps = []
        for i, port in enumerate(grpc):
            cps.append(start("controlplane", f"cp{i}", STRATA_GRPC_LISTEN=f"127.0.0.1:{port}",
                             STRATA_ADVERTISE_URL=cp_urls[i]))
            wait_until(lambda: tcp_open(port), 60, procs=procs, what=f"cp{i} gRPC")
            if i == 0:
                wait_until(lambda: lease_url() == cp_urls[0], 30, procs=procs, what="cp0 takes the lease")
        start("worker", "worker", STRATA_WORKER_LISTEN=f"127.0.0.1:{worker_port}")
        start("dataplane", "dataplane")
        endpoint = f"http://127.0.0.1:{s3_port}"
        wait_until(lambda: http_get(f"{endpoint}/ready")[0] == 200, 60, procs=procs, what="data plane /ready")
        # The worker's status port (worker.listen), where the chart's probes and scrape point.
        worker = f"http://127.0.0.1:{worker_port}"
        wait_until(lambda: http_get(f"{worker}/ready")[0] == 200, 60, procs=procs, what="worker /ready")
        assert http_get(f"{worker}/health")[0] == 200
        status, _, metrics = http_get(f"{worker}/metrics")
        assert status == 200 and b"strata_" in metrics, metrics[:500]
        status, _, jobs = http_get(f"{worker}/status/jobs")
        assert status == 200 and b"replication" in jobs, jobs[:500]
        assert http_get(f"{endpoint}/health")[0] == 200
        status, _, metrics = http_get(f"{endpoint}/metrics")
        assert status == 200 and b"strata_" in metrics

        c = boto3_client(endpoint, ADMIN)
        c.create_bucket(Bucket="deploy-smoke")
        body = os.urandom(300_000)
        c.put_object(Bucket="deploy-smoke", Key="a/b.bin", Body=body)
        assert c.get_object(Bucket="deploy-smoke", Key="a/b.bin")["Body"].read() == body
        # replication.factor 2 (config.sections): the second copy appears on the other backend.
        wait_until(lambda: all(any(size >= len(body) for size in f.objects().values()) for f in fs), 60,
                   procs=procs, what="a copy of the object on both backends")

        cps[0].signal(signal.SIGKILL)
        cps[0].wait_exit(10)
        procs.remove(cps[0])
        after = os.urandom(100_000)

        def put_after_kill() -> bool:
            try:
                c.put_object(Bucket="deploy-smoke", Key="after-kill.bin", Body=after)
                return True
            except (BotoCoreError, ClientError):
                return False

        wait_until(put_after_kill, 30, interval=0.5, procs=procs, what="a PUT through the new leader")
        assert lease_url() == cp_urls[1]
        assert c.get_object(Bucket="deploy-smoke", Key="after-kill.bin")["Body"].read() == after
        assert c.get_object(Bucket="deploy-smoke", Key="a/b.bin")["Body"].read() == body
        for p in reversed(procs):
            assert p.stop() == 0, p.tail(40)
    finally:
        for p in procs:
            p.stop()
        for f in fs:
            f.stop()
        pg.stop()
