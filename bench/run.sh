#!/usr/bin/env bash
# Benchmarks Strata against the third-party S3 server it stands in front of (s3s-fs),
# and writes a markdown report to bench/results/<date>-<commit>.md.
#
#   bash bench/run.sh
#
# Sections (BENCH_SECTIONS, comma-separated; default all three):
#   s3     Strata (--role all, one s3s-fs backend) vs s3s-fs reached directly
#   local  Strata (--role all, local-disk backend)  vs s3s-fs reached directly
#   split  Strata split (controlplane + dataplane)  vs Strata --role all, local disk, 4 KiB ops
#   three  Strata (--role all, three s3s-fs backends, spread) vs the first of them reached directly
#          (PUT and GET at 4 KiB, 1 MiB and 64 MiB; not in the default set, BENCH_SECTIONS=three)
#   enc    Strata with encryption at rest (aes256-gcm) vs the same Strata storing plaintext, both
#          --role all on a local disk (PUT and GET at 1 MiB and 64 MiB; BENCH_SECTIONS=enc)
#   ab     this Strata vs another build of Strata (BENCH_BASE_BIN), both --role all on their own local
#          disk: the before/after check of a refactor (PUT and GET at 4 KiB and 64 MiB; BENCH_SECTIONS=ab)
#
# Environment:
#   BENCH_PROFILE=release|debug   which build of strata to use (default release; built here)
#   BENCH_DURATION=5s             length of each run
#   BENCH_ROUNDS=1                runs per endpoint and workload, alternating A, B, A, B
#   BENCH_CONCURRENCY=16          requests in flight for 4 KiB and 1 MiB workloads
#   BENCH_LARGE_CONCURRENCY=16    requests in flight for 64 MiB workloads
#   BENCH_SMALL=...               4 KiB / 1 MiB workloads (OP:SIZE, comma-separated)
#   BENCH_LARGE=...               64 MiB workloads
#   BENCH_SPLIT=...               workloads of the split section
#   BENCH_THREE=...               workloads of the three section
#   BENCH_BACKEND_UNSIGNED=1      S3 backends get `unsigned_payload: true` (no SHA-256 of each part
#                                 for SigV4; the default for plain-http backends is to sign payloads)
#   BENCH_OUT=FILE                report path (default bench/results/<date>-<shortcommit>.md)
#   BENCH_WORKDIR=DIR             scratch directory (default: a new one under ${TMPDIR:-/tmp}, removed after)
#   BENCH_AB=...                  workloads of the ab section
#   BENCH_BASE_BIN=PATH           the other strata binary of the ab section (e.g. a release build of main)
#   BENCH_BIN=PATH                use this strata binary instead of building one (BENCH_PROFILE is then ignored)
#   BENCH_BIN_NOTE=TEXT           what BENCH_BIN was built from, for the report
#   BENCH_COMMIT=SHA              the commit BENCH_BIN was built from (title, file name); default HEAD
#
# Needs: s3s-fs on PATH (scripts/install-deps.sh installs it), curl, python3, cargo.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PROFILE="${BENCH_PROFILE:-release}"
DURATION="${BENCH_DURATION:-5s}"
ROUNDS="${BENCH_ROUNDS:-1}"
CONC="${BENCH_CONCURRENCY:-16}"
LARGE_CONC="${BENCH_LARGE_CONCURRENCY:-16}"
SMALL="${BENCH_SMALL:-put:4KiB,get:4KiB,head:4KiB,list:4KiB,delete:4KiB,mixed:4KiB,put:1MiB,get:1MiB,mixed:1MiB}"
LARGE="${BENCH_LARGE:-put:64MiB,get:64MiB,mixed:64MiB}"
SPLIT="${BENCH_SPLIT:-put:4KiB,get:4KiB,head:4KiB,list:4KiB,delete:4KiB,mixed:4KiB}"
THREE="${BENCH_THREE:-put:4KiB,get:4KiB,put:1MiB,get:1MiB,put:64MiB,get:64MiB}"
ENC="${BENCH_ENC:-put:1MiB,get:1MiB,put:64MiB,get:64MiB}"
AB="${BENCH_AB:-put:4KiB,get:4KiB,put:64MiB,get:64MiB}"
SECTIONS="${BENCH_SECTIONS:-s3,local,split}"
BACKEND_EXTRA=""
[[ "${BENCH_BACKEND_UNSIGNED:-0}" == 1 ]] && BACKEND_EXTRA=", unsigned_payload: true"

AK="AKBENCH01"
SK="benchsecret0123456789"
BACKING_BUCKET="strata-backing"
CLUSTER_SECRET="bench-cluster-secret-0123456789abcdef0123456789"

command -v s3s-fs >/dev/null || { echo "s3s-fs not found: bash scripts/install-deps.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }

BUILD_NOTE=""
if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN="$BENCH_BIN"
    PROFILE="given"
    BUILD_NOTE="binary \`$BIN\`${BENCH_BIN_NOTE:+ ($BENCH_BIN_NOTE)}"
elif [[ "$PROFILE" == "release" ]]; then
    cargo build --release -p strata
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/strata"
else
    cargo build -p strata
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/strata"
fi

if [[ -n "${BENCH_WORKDIR:-}" ]]; then
    WORK="$BENCH_WORKDIR"; mkdir -p "$WORK"; KEEP_WORK=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")"; KEEP_WORK=0
fi
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [[ "$KEEP_WORK" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # URL-or-port what pid
    local what="$2" pid="$3"
    for _ in $(seq 1 300); do
        if [[ "$1" =~ ^[0-9]+$ ]]; then
            (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        else
            [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]] && return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "$what exited; logs in $WORK" >&2; exit 1; }
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    exit 1
}

# --- processes ---------------------------------------------------------------------------------

start_s3s_fs() { # [name] -> sets FS_PORT FS_PID
    local name="${1:-s3s-fs}"
    FS_PORT="$(free_port)"
    mkdir -p "$WORK/$name"
    s3s-fs --host 127.0.0.1 --port "$FS_PORT" --access-key "$AK" --secret-key "$SK" "$WORK/$name" \
        >"$WORK/$name.log" 2>&1 &
    FS_PID=$!
    PIDS+=("$FS_PID")
    wait_for "$FS_PORT" "s3s-fs" "$FS_PID"
    # CreateBucket, signed by curl (empty body: its SHA-256 is the e3b0... constant).
    curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        "http://127.0.0.1:$FS_PORT/$BACKING_BUCKET" >/dev/null \
        || { echo "cannot create bucket $BACKING_BUCKET on s3s-fs; log: $WORK/s3s-fs.log" >&2; exit 1; }
}

write_config() { # name backend-yaml -> sets CFG S3_PORT GRPC_PORT
    local name="$1" backend="$2"
    S3_PORT="$(free_port)"; GRPC_PORT="$(free_port)"
    mkdir -p "$WORK/$name/data"
    CFG="$WORK/$name/strata.yaml"
    cat >"$CFG" <<EOF
data_dir: $WORK/$name/data
server:
  listen: 127.0.0.1:$S3_PORT
  region: us-east-1
control_plane:
  listen: 127.0.0.1:$GRPC_PORT
  url: http://127.0.0.1:$GRPC_PORT
cluster:
  secret: "$CLUSTER_SECRET"
backends:
$backend
credentials:
  - {access_key_id: $AK, secret_access_key: $SK, unrestricted: true}
logging: {format: json, level: warn}
EOF
}

start_strata() { # name role [binary] -> prints nothing, sets LAST_PID
    local name="$1" role="$2" bin="${3:-$BIN}"
    "$bin" serve --role "$role" --config "$CFG" >"$WORK/$name/$role.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# --- measuring ---------------------------------------------------------------------------------

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
REPORT_BODY="$WORK/body.md"
: >"$REPORT_BODY"
JSONS=()

compare() { # tag title a-name a-url a-pid b-name b-url b-pid workloads concurrency
    local tag="$1" title="$2" an="$3" au="$4" ap="$5" bn="$6" bu="$7" bp="$8" wl="$9" conc="${10}"
    local json="$WORK/$tag.json" md="$WORK/$tag.md"
    echo "== $title: $wl (concurrency $conc, $DURATION x $ROUNDS round(s))" >&2
    if "$BIN" bench compare --a "$au" --b "$bu" --a-name "$an" --b-name "$bn" \
        --access-key "$AK" --secret-key "$SK" --a-pid "$ap" --b-pid "$bp" \
        --workloads "$wl" --rounds "$ROUNDS" --duration "$DURATION" --concurrency "$conc" \
        --markdown --json-out "$json" >"$md"; then
        JSONS+=("$tag=$json")
        {
            echo "### $title"
            echo
            echo "Concurrency $conc, $DURATION per run, $ROUNDS round(s) per endpoint (A, B, A, B, ...)."
            echo "A/B above 1 means A is faster for ops/s and MB/s, slower for p50 and p99."
            echo
            cat "$md"
            echo
        } >>"$REPORT_BODY"
    else
        echo "compare $tag failed" >&2
        { echo "### $title"; echo; echo "**The run failed**; see the script output."; echo; } >>"$REPORT_BODY"
    fi
}

IFS=',' read -r -a SECTION_LIST <<<"$SECTIONS"
has() { local s; for s in "${SECTION_LIST[@]}"; do [[ "$s" == "$1" ]] && return 0; done; return 1; }

start_s3s_fs
FS_URL="http://127.0.0.1:$FS_PORT"

if has s3; then
    write_config strata-s3 "  - {type: s3, id: fs1, endpoint: '$FS_URL', bucket: $BACKING_BUCKET, prefix: 'strata/', access_key_id: $AK, secret_access_key: $SK$BACKEND_EXTRA}"
    start_strata strata-s3 all
    P=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (s3 backend)" "$P"
    {
        echo "## Strata (--role all, one s3s-fs backend) vs s3s-fs reached directly"
        echo
        echo "Strata's RSS and CPU are its own process only; s3s-fs also works during the Strata runs."
        echo
    } >>"$REPORT_BODY"
    [[ -n "$SMALL" ]] && compare s3-small "4 KiB and 1 MiB" strata "http://127.0.0.1:$S3_PORT" "$P" s3s-fs "$FS_URL" "$FS_PID" "$SMALL" "$CONC"
    [[ -n "$LARGE" ]] && compare s3-large "64 MiB" strata "http://127.0.0.1:$S3_PORT" "$P" s3s-fs "$FS_URL" "$FS_PID" "$LARGE" "$LARGE_CONC"
    stop_pid "$P"
fi

if has local; then
    write_config strata-local "  - {type: local, id: disk1, path: $WORK/strata-local/objects}"
    start_strata strata-local all
    P=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (local disk)" "$P"
    { echo "## Strata (--role all, local-disk backend) vs s3s-fs reached directly"; echo; } >>"$REPORT_BODY"
    [[ -n "$SMALL" ]] && compare local-small "4 KiB and 1 MiB" strata-local "http://127.0.0.1:$S3_PORT" "$P" s3s-fs "$FS_URL" "$FS_PID" "$SMALL" "$CONC"
    [[ -n "$LARGE" ]] && compare local-large "64 MiB" strata-local "http://127.0.0.1:$S3_PORT" "$P" s3s-fs "$FS_URL" "$FS_PID" "$LARGE" "$LARGE_CONC"
    stop_pid "$P"
fi

if has split && [[ -n "$SPLIT" ]]; then
    write_config strata-split "  - {type: local, id: disk1, path: $WORK/strata-split/objects}"
    start_strata strata-split controlplane
    CP=$LAST_PID
    wait_for "$GRPC_PORT" "strata controlplane" "$CP"
    start_strata strata-split dataplane
    DP=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata dataplane" "$DP"
    SPLIT_URL="http://127.0.0.1:$S3_PORT"
    write_config strata-all "  - {type: local, id: disk1, path: $WORK/strata-all/objects}"
    start_strata strata-all all
    ALL=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (all)" "$ALL"
    {
        echo "## Strata split (controlplane + dataplane) vs --role all, both on a local disk"
        echo
        echo "RSS and CPU of the split deployment are the sum of both processes."
        echo
    } >>"$REPORT_BODY"
    compare split "4 KiB" split "$SPLIT_URL" "$DP,$CP" all "http://127.0.0.1:$S3_PORT" "$ALL" "$SPLIT" "$CONC"
    stop_pid "$DP"; stop_pid "$CP"; stop_pid "$ALL"
fi

if has three && [[ -n "$THREE" ]]; then
    start_s3s_fs s3s-fs-2; FS2_URL="http://127.0.0.1:$FS_PORT"; FS2_PID=$FS_PID
    start_s3s_fs s3s-fs-3; FS3_URL="http://127.0.0.1:$FS_PORT"; FS3_PID=$FS_PID
    item() { echo "  - {type: s3, id: $1, endpoint: '$2', bucket: $BACKING_BUCKET, prefix: 'strata/', access_key_id: $AK, secret_access_key: $SK$BACKEND_EXTRA}"; }
    write_config strata-three "$(item fs1 "$FS_URL")
$(item fs2 "$FS2_URL")
$(item fs3 "$FS3_URL")"
    printf 'placement: {routing_strategy: spread}\n' >>"$CFG"
    start_strata strata-three all
    P=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (three s3 backends)" "$P"
    {
        echo "## Strata (--role all, three s3s-fs backends, spread) vs the first backend reached directly"
        echo
        echo "All four servers share the machine's CPUs. Strata's RSS and CPU are its own process only."
        echo
    } >>"$REPORT_BODY"
    compare three "PUT and GET" strata-3x "http://127.0.0.1:$S3_PORT" "$P" s3s-fs "$FS_URL" "$FS_PID" "$THREE" "$CONC"
    stop_pid "$P"; stop_pid "$FS2_PID"; stop_pid "$FS3_PID"
fi

if has enc && [[ -n "$ENC" ]]; then
    write_config strata-enc "  - {type: local, id: disk1, path: $WORK/strata-enc/objects}"
    printf 'encryption:\n  mode: aes256-gcm\n  primary_key: {id: bench, base64: "%s"}\n' \
        "$(head -c 32 /dev/urandom | base64)" >>"$CFG"
    start_strata strata-enc all
    ENC_PID=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (encrypted)" "$ENC_PID"
    ENC_URL="http://127.0.0.1:$S3_PORT"
    write_config strata-plain "  - {type: local, id: disk1, path: $WORK/strata-plain/objects}"
    start_strata strata-plain all
    PLAIN_PID=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (plaintext)" "$PLAIN_PID"
    {
        echo "## Strata with encryption at rest vs Strata storing plaintext (both --role all, local disk)"
        echo
        echo "The encrypted side seals every blob with chunked AES-256-GCM and verifies the SHA-256 on full reads."
        echo
    } >>"$REPORT_BODY"
    compare enc "1 MiB and 64 MiB" encrypted "$ENC_URL" "$ENC_PID" plaintext "http://127.0.0.1:$S3_PORT" "$PLAIN_PID" "$ENC" "$LARGE_CONC"
    stop_pid "$ENC_PID"; stop_pid "$PLAIN_PID"
fi

if has ab && [[ -n "$AB" ]]; then
    [[ -x "${BENCH_BASE_BIN:-}" ]] || { echo "the ab section needs BENCH_BASE_BIN (another strata binary)" >&2; exit 1; }
    write_config strata-new "  - {type: local, id: disk1, path: $WORK/strata-new/objects}"
    start_strata strata-new all
    NEW_PID=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (this build)" "$NEW_PID"
    NEW_URL="http://127.0.0.1:$S3_PORT"
    write_config strata-base "  - {type: local, id: disk1, path: $WORK/strata-base/objects}"
    start_strata strata-base all "$BENCH_BASE_BIN"
    BASE_PID=$LAST_PID
    wait_for "http://127.0.0.1:$S3_PORT/ready" "strata (base build)" "$BASE_PID"
    {
        echo "## This build vs the base build (\`$BENCH_BASE_BIN\`), both --role all on a local disk"
        echo
        echo "The before/after check of a refactor: A/B near 1 means no change."
        echo
    } >>"$REPORT_BODY"
    compare ab "before/after" this "$NEW_URL" "$NEW_PID" base "http://127.0.0.1:$S3_PORT" "$BASE_PID" "$AB" "$CONC"
    stop_pid "$NEW_PID"; stop_pid "$BASE_PID"
fi

# --- the report --------------------------------------------------------------------------------

COMMIT="$(git rev-parse --short "${BENCH_COMMIT:-HEAD}" 2>/dev/null || echo "${BENCH_COMMIT:-unknown}")"
DIRTY=""
if [[ -z "$BUILD_NOTE" ]]; then
    git diff --quiet HEAD 2>/dev/null || DIRTY=" (built from a tree with uncommitted changes)"
fi
DATE="$(date -u +%Y-%m-%d)"
OUT="${BENCH_OUT:-$REPO/bench/results/$DATE-$COMMIT.md}"
mkdir -p "$(dirname "$OUT")"
MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)"
MEM="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"

TARGETS="$(python3 - "${JSONS[@]}" <<'PY'
import json, sys
runs = dict(a.split("=", 1) for a in sys.argv[1:])
def find(tag, workload, op):
    if tag not in runs:
        return None
    for w in json.load(open(runs[tag]))["workloads"]:
        if w["workload"] == workload:
            for r in w["ratios"]:
                if r["op"] == op:
                    a = next(x for x in w["a"]["results"] if x["op"] == op)
                    return r, a, w
    return None
def f(x, d=2):
    return "-" if x is None else f"{x:.{d}f}"
rows = []
def ratio_row(goal, tag, workload, op, key, limit):
    got = find(tag, workload, op)
    if got is None:
        rows.append((goal, "not measured", "-"))
        return
    v = got[0][key]
    rows.append((goal, f(v), "yes" if v is not None and v >= limit else "no"))
ratio_row("64 MiB GET MB/s >= 0.85 of direct", "s3-large", "get:64MiB", "get", "mb_per_s", 0.85)
ratio_row("64 MiB PUT MB/s >= 0.85 of direct", "s3-large", "put:64MiB", "put", "mb_per_s", 0.85)
ratio_row("4 KiB GET ops/s >= 0.7 of direct", "s3-small", "get:4KiB", "get", "ops_per_s", 0.7)
got = find("s3-small", "get:4KiB", "get")
if got:
    d = got[0]["p99_diff_ms"]
    rows.append(("4 KiB GET p99 <= direct p99 + 2 ms", f"{d:+.2f} ms", "yes" if d <= 2 else "no"))
else:
    rows.append(("4 KiB GET p99 <= direct p99 + 2 ms", "not measured", "-"))
ratio_row("4 KiB PUT ops/s >= 0.5 of direct", "s3-small", "put:4KiB", "put", "ops_per_s", 0.5)
for op in ["put", "get", "head", "list", "delete"]:
    ratio_row(f"split 4 KiB {op.upper()} ops/s >= 0.8 of --role all", "split", f"{op}:4KiB", op, "ops_per_s", 0.8)
peak = None
for wl in ("put:64MiB", "get:64MiB", "mixed:64MiB"):
    if "s3-large" in runs:
        for w in json.load(open(runs["s3-large"]))["workloads"]:
            if w["workload"] == wl and w["a"]["server"]:
                p = w["a"]["server"]["peak_rss_mib"]
                peak = p if peak is None else max(peak, p)
ratio_row("encrypted 64 MiB PUT MB/s >= 0.85 of plaintext", "enc", "put:64MiB", "put", "mb_per_s", 0.85)
ratio_row("encrypted 64 MiB GET MB/s >= 0.85 of plaintext", "enc", "get:64MiB", "get", "mb_per_s", 0.85)
rows.append(("peak RSS < 256 MiB in the 64 MiB runs", "not measured" if peak is None else f"{peak:.0f} MiB",
             "-" if peak is None else ("yes" if peak < 256 else "no")))
print("| target | measured | met |")
print("|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
)"

{
    echo "# Strata benchmark, $DATE, commit $COMMIT"
    echo
    echo "- commit: \`$(git rev-parse "${BENCH_COMMIT:-HEAD}" 2>/dev/null || echo "$COMMIT")\`$DIRTY"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) CPU(s), $MODEL, $MEM RAM, $(uname -sr)"
    echo "- strata build: $PROFILE${BUILD_NOTE:+, $BUILD_NOTE}; s3s-fs $(s3s-fs --version 2>/dev/null | head -1 || echo '?')"
    echo "- client: \`strata bench\` on the same machine (aws-sdk-s3, SigV4-signed headers, UNSIGNED-PAYLOAD, no client CRC), path style, plain http on loopback"
    echo "- load average (1/5/15 min) before the runs: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- settings: BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_CONCURRENCY=$CONC BENCH_LARGE_CONCURRENCY=$LARGE_CONC"
    echo "- command: \`bash bench/run.sh\`"
    echo
    echo "MB is 10^6 bytes. Latencies in milliseconds. Every process (client, Strata, s3s-fs) shares the same CPUs."
    echo
    echo "## Targets (issue 5)"
    echo
    echo "$TARGETS"
    echo
    cat "$REPORT_BODY"
} >"$OUT"
echo "report: $OUT" >&2
