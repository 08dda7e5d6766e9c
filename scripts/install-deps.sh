#!/usr/bin/env bash
# Install what the end-to-end tests need, idempotently and quietly:
#   apt:  rclone s3cmd curl      (apt-get update only when something is missing)
#         zstd xdelta3           (the baseline of `strata bench delta` / bench/delta.sh)
#         redis-server           (shared usage counters, scale-out tests)
#         postgresql             (only when initdb is on neither PATH nor /usr/lib/postgresql/*/bin;
#                                 the store's conformance tests start a throwaway PostgreSQL)
#   pip:  boto3 awscli awscrt pytest pytest-xdist requests   (only when not importable / not on PATH)
#   cargo: s3s-fs 0.14.1                          (the backend S3 server the Rust tests run)
# Works as root on a fresh Debian 12 machine; uses sudo when not root.
set -euo pipefail

PY="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

apt_missing=()
for tool in rclone s3cmd curl zstd xdelta3 redis-server; do
  command -v "$tool" >/dev/null 2>&1 || apt_missing+=("$tool")
done
if ! command -v "$PY" >/dev/null 2>&1; then
  apt_missing+=(python3)
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  apt_missing+=(python3-pip)
fi
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_missing+=(postgresql)
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${apt_missing[*]}"
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

pip_missing=()
"$PY" -c 'import boto3' >/dev/null 2>&1 || pip_missing+=(boto3)
"$PY" -c 'import awscli' >/dev/null 2>&1 || command -v aws >/dev/null 2>&1 || pip_missing+=(awscli)
# awscrt gives botocore the CRC32C / CRC64NVME checksum algorithms.
"$PY" -c 'import awscrt' >/dev/null 2>&1 || pip_missing+=(awscrt)
"$PY" -c 'import pytest' >/dev/null 2>&1 || pip_missing+=(pytest)
"$PY" -c 'import requests' >/dev/null 2>&1 || pip_missing+=(requests)
# pytest-xdist runs independent e2e modules in parallel (scripts/test.sh).
"$PY" -c 'import xdist' >/dev/null 2>&1 || pip_missing+=(pytest-xdist)
if [ "${#pip_missing[@]}" -gt 0 ]; then
  echo "install-deps: pip install ${pip_missing[*]}"
  pip_args=(install -q --disable-pip-version-check)
  if [ "$(id -u)" -eq 0 ]; then
    if "$PY" -m pip install --help 2>/dev/null | grep -q -- '--root-user-action'; then
      pip_args+=(--root-user-action=ignore)
    fi
  elif [ -z "${VIRTUAL_ENV:-}" ]; then
    pip_args+=(--user)
  fi
  # Debian 12's system python is "externally managed" (PEP 668); retry with the override.
  if ! "$PY" -m pip "${pip_args[@]}" "${pip_missing[@]}" 2>/tmp/strata-pip.err; then
    if grep -q externally-managed /tmp/strata-pip.err; then
      "$PY" -m pip "${pip_args[@]}" --break-system-packages "${pip_missing[@]}"
    else
      cat /tmp/strata-pip.err >&2
      exit 1
    fi
  fi
  rm -f /tmp/strata-pip.err
fi

# A third-party S3 server used as a real backend in the Rust tests (see ../shared/testing.md).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "install-deps: cargo install s3s-fs"
  cargo install -q s3s-fs --version 0.14.1 --features binary --locked
fi

# Final check: fail loudly instead of letting the suite fail obscurely.
for tool in rclone s3cmd curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-deps: $tool still missing" >&2; exit 1; }
done
"$PY" -c 'import boto3, awscrt, pytest, requests, xdist' || { echo "install-deps: python modules missing" >&2; exit 1; }
"$PY" -c 'import awscli' >/dev/null 2>&1 || command -v aws >/dev/null 2>&1 || {
  echo "install-deps: aws CLI missing" >&2; exit 1; }
