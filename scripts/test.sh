#!/usr/bin/env bash
# The project's single test command:
#   1. install test dependencies (scripts/install-deps.sh, idempotent)
#   2. cargo fmt --check and cargo clippy --all-targets -- -D warnings (docs/style.md);
#      quiet when clean, and the run stops here if either fails
#   3. cargo build -p strata
#   4. cargo nextest run --workspace --no-fail-fast   (installs cargo-nextest if missing)
#   5. python3 -m pytest tests/e2e                     (black-box e2e suite with real clients;
#      independent modules run in parallel, -n STRATA_E2E_WORKERS (default 2) --dist loadfile,
#      so a module's shared deployment stays in one worker; STRATA_E2E_WORKERS=0 runs serially)
# Both test stages always run; the script fails if either fails.
# Extra arguments are passed to pytest (e.g. `scripts/test.sh -k boto3 -x`).
set -uo pipefail

# cargo-installed tools (s3s-fs) live here on a fresh machine.
export PATH="$HOME/.cargo/bin:$PATH"
# Debian's postgresql package keeps initdb and pg_ctl off PATH.
for pg in /usr/lib/postgresql/*/bin; do
  [ -x "$pg/initdb" ] && ! command -v initdb >/dev/null 2>&1 && export PATH="$PATH:$pg"
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# CI may keep the cargo target directory outside the clone (CARGO_TARGET_DIR).
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
export STRATA_BIN="${STRATA_BIN:-$TARGET_DIR/debug/strata}"
PY="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }

step "install test dependencies"
bash scripts/install-deps.sh || { echo "FAILED: scripts/install-deps.sh" >&2; exit 1; }

step "cargo fmt --check; cargo clippy --all-targets -- -D warnings"
cargo fmt --check || { echo "FAILED: cargo fmt --check (run cargo fmt)" >&2; exit 1; }
cargo clippy --quiet --workspace --all-targets -- -D warnings ||
  { echo "FAILED: cargo clippy --all-targets -- -D warnings" >&2; exit 1; }

step "cargo build -p strata"
cargo build -p strata || { echo "FAILED: cargo build -p strata" >&2; exit 1; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "cargo install cargo-nextest"
  cargo install cargo-nextest --locked || { echo "FAILED: cargo install cargo-nextest" >&2; exit 1; }
fi

step "cargo nextest run --workspace --no-fail-fast"
nextest_args=(run --workspace --no-fail-fast)
# A workspace (or filter) with no tests is not a failure of this script.
if cargo nextest run --help 2>/dev/null | grep -q -- '--no-tests'; then
  nextest_args+=(--no-tests=warn)
fi
start=$SECONDS
cargo nextest "${nextest_args[@]}"
rust_rc=$?
rust_secs=$((SECONDS - start))

step "python3 -m pytest tests/e2e"
start=$SECONDS
e2e_args=(-q -rfEs -p no:cacheprovider --durations=15)
workers="${STRATA_E2E_WORKERS:-2}"
if [ "$workers" != 0 ] && "$PY" -c 'import xdist' >/dev/null 2>&1; then
  e2e_args+=(-n "$workers" --dist loadfile)
fi
"$PY" -m pytest tests/e2e "${e2e_args[@]}" "$@"
e2e_rc=$?
e2e_secs=$((SECONDS - start))

verdict() { if [ "$1" -eq 0 ]; then echo "PASS"; else echo "FAIL (exit $1)"; fi; }
printf '\n==> summary\n'
printf '  rust  (cargo nextest): %-16s %4ss\n' "$(verdict $rust_rc)" "$rust_secs"
printf '  e2e   (pytest):        %-16s %4ss\n' "$(verdict $e2e_rc)" "$e2e_secs"
if [ "$rust_rc" -ne 0 ] || [ "$e2e_rc" -ne 0 ]; then
  echo "  RESULT: FAIL"
  exit 1
fi
echo "  RESULT: PASS"
