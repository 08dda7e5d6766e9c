#!/usr/bin/env bash
# Measures Strata's delta compression on a versioned-artifact corpus and writes a markdown report to
# bench/results/<date>-<commit>-delta.md.
#
#   bash bench/delta.sh
#
# One `strata serve --role all` on a local disk, with `delta.rules` turning delta on for one bucket
# per corpus subdirectory (strata-delta-<subdir>) and off for strata-plain. `strata bench delta` then
# PUTs every version (in `sort -V` order) into both, GETs them back (SHA-256 checked), does a few
# Range GETs, reads /status/delta, and computes the zstd -19 --long=27 + xdelta3 -9 baseline.
#
# Environment:
#   BENCH_CORPUS=DIR     corpus (default /tmp/corpus; fetched with /work/shared/bench/fetch-corpus.sh if missing)
#   BENCH_PROFILE=release|debug   which build of strata to use (default release; built here)
#   BENCH_BIN=PATH       use this strata binary instead of building one
#   BENCH_DELTA_YAML=TEXT  extra keys of the `delta:` section, e.g. "level: 6"
#   BENCH_OUT=FILE       report path (default bench/results/<date>-<shortcommit>-delta.md)
#   BENCH_WORKDIR=DIR    scratch directory (default: a new one under ${TMPDIR:-/tmp}, removed after)
#   BENCH_ARGS=...       extra arguments of `strata bench delta` (e.g. "--only wheels --ranges 16")
#
# Needs: zstd and xdelta3 on PATH (scripts/install-deps.sh installs them), curl, python3, cargo.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PROFILE="${BENCH_PROFILE:-release}"
CORPUS="${BENCH_CORPUS:-/tmp/corpus}"
FETCH="${BENCH_FETCH:-/work/shared/bench/fetch-corpus.sh}"
AK="AKBENCH01"
SK="benchsecret0123456789"
CLUSTER_SECRET="bench-cluster-secret-0123456789abcdef0123456789"
DELTA_PREFIX="strata-delta"
PLAIN_BUCKET="strata-plain"

for t in zstd xdelta3 curl python3; do
    command -v "$t" >/dev/null || { echo "$t not found: bash scripts/install-deps.sh" >&2; exit 1; }
done

if [[ ! -d "$CORPUS/wheels" || ! -d "$CORPUS/tars" ]]; then
    echo "fetching the corpus into $CORPUS" >&2
    bash "$FETCH" "$CORPUS"
fi

BUILD_NOTE=""
if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN="$BENCH_BIN"; PROFILE="given"; BUILD_NOTE="binary \`$BIN\`"
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
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-delta-bench.XXXXXX")"; KEEP_WORK=0
fi
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    [[ "$KEEP_WORK" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The bucket of a subdirectory, as `strata bench delta` names it.
bucket_for() { echo "$DELTA_PREFIX-$(echo "$1" | tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9]/-/g; s/^-*//; s/-*$//')"; }

RULES=""
for d in "$CORPUS"/*/; do
    d="$(basename "$d")"
    [[ "$d" == .* ]] && continue
    RULES+="    - {bucket: $(bucket_for "$d")}"$'\n'
done
RULES+="    - {bucket: $PLAIN_BUCKET, delta: off}"

S3_PORT="$(free_port)"; GRPC_PORT="$(free_port)"
mkdir -p "$WORK/data" "$WORK/objects"
CFG="$WORK/strata.yaml"
cat >"$CFG" <<EOF
data_dir: $WORK/data
server:
  listen: 127.0.0.1:$S3_PORT
  region: us-east-1
control_plane:
  listen: 127.0.0.1:$GRPC_PORT
  url: http://127.0.0.1:$GRPC_PORT
cluster:
  secret: "$CLUSTER_SECRET"
backends:
  - {type: local, id: disk1, path: $WORK/objects}
credentials:
  - {access_key_id: $AK, secret_access_key: $SK, unrestricted: true}
logging: {format: json, level: warn}
# References are recompressed (level 19, long window) soon after they are written.
jobs: {delta_compact_period_secs: 2}
delta:
  enabled: false
${BENCH_DELTA_YAML:+  $BENCH_DELTA_YAML
}  rules:
$RULES
EOF

"$BIN" serve --role all --config "$CFG" >"$WORK/strata.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/ready" || true)" == 200 ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "strata exited:" >&2; cat "$WORK/strata.log" >&2; exit 1; }
    sleep 0.1
done

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
TABLES="$WORK/tables.md"
# shellcheck disable=SC2086
CMD=("$BIN" bench delta --corpus "$CORPUS" --endpoint "http://127.0.0.1:$S3_PORT" \
    --access-key "$AK" --secret-key "$SK" --server-pid "$SERVER_PID" \
    --delta-bucket "$DELTA_PREFIX" --plain-bucket "$PLAIN_BUCKET" \
    --markdown --json-out "$WORK/delta.json" ${BENCH_ARGS:-})
if ! "${CMD[@]}" >"$TABLES"; then
    echo "strata bench delta failed; server log: $WORK/strata.log" >&2
    tail -n 20 "$WORK/strata.log" >&2 || true
    KEEP_WORK=1
    exit 1
fi

COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY=""
if [[ -z "$BUILD_NOTE" ]]; then
    git diff --quiet HEAD 2>/dev/null || DIRTY=" (built from a tree with uncommitted changes)"
fi
DATE="$(date -u +%Y-%m-%d)"
OUT="${BENCH_OUT:-$REPO/bench/results/$DATE-$COMMIT-delta.md}"
mkdir -p "$(dirname "$OUT")"
MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)"
MEM="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
{
    echo "# Strata delta compression benchmark, $DATE, commit $COMMIT"
    echo
    echo "- commit: \`$(git rev-parse HEAD 2>/dev/null || echo "$COMMIT")\`$DIRTY"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) CPU(s), $MODEL, $MEM RAM, $(uname -sr)"
    echo "- strata build: $PROFILE${BUILD_NOTE:+, $BUILD_NOTE}; one \`strata serve --role all\`, local-disk backend"
    echo "- corpus: \`$CORPUS\` ($(du -sh "$CORPUS" | cut -f1)); $(zstd --version | head -1 | tr -d "*" | sed "s/^ *//; s/ *$//; s/, by .*//"); $(xdelta3 -V 2>&1 | head -1 | cut -d, -f1)"
    echo "- load average (1/5/15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- command: \`bash bench/delta.sh\`, which ran \`strata bench delta --corpus $CORPUS --endpoint http://127.0.0.1:$S3_PORT --server-pid $SERVER_PID --delta-bucket $DELTA_PREFIX --plain-bucket $PLAIN_BUCKET --markdown ${BENCH_ARGS:-}\`"
    echo
    echo "Each subdirectory's versions are PUT one at a time in \`sort -V\` order into \`$DELTA_PREFIX-<subdir>\`"
    echo "(delta on) and into \`$PLAIN_BUCKET\` (delta off), then read back in full (SHA-256 checked) and with"
    echo "random Range GETs. MB/s = bytes / summed request time (MB = 10^6 bytes). Stored/logical comes from"
    echo "\`GET /status/delta\`. Baseline: (\`zstd -19 --long=27\` of the first version + \`xdelta3 -e -9 -s FIRST\`"
    echo "of every later one) / the versions' total size; the raw-reference variant stores the first version"
    echo "uncompressed. Peak RSS: the server's VmRSS sampled every 100 ms while a subdirectory ran, and its VmHWM"
    echo "(peak since start, judged against the target) at the end of it. Client and server share the CPUs."
    echo
    echo "Server config (\`delta:\` section):"
    echo
    echo '```yaml'
    sed -n '/^delta:/,$p' "$CFG"
    echo '```'
    echo
    cat "$TABLES"
} >"$OUT"
cat "$TABLES"
echo "report: $OUT" >&2
