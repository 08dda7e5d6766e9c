"""rclone and s3cmd against Strata."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from harness import ADMIN, rclone_env, run, s3cmd_args, unique_bucket

MiB = 1 << 20


def need(tool: str):
    if not shutil.which(tool):
        pytest.fail(f"{tool} is not installed (run scripts/install-deps.sh)")


def rclone(server, tmp_path, *args, check=True):
    env = rclone_env(server, ADMIN, tmp_path / "rclone.conf")
    return run(["rclone", "--retries", "1", "--low-level-retries", "1", "--s3-upload-cutoff", "5M",
                "--s3-chunk-size", "5M", *args], env=env, check=check, timeout=600)


def build_tree(root: Path) -> dict[str, bytes]:
    files = {
        "readme.txt": b"top level\n",
        "docs/guide.md": b"# guide\n" * 500,
        "docs/deep/er/nested.bin": os.urandom(700_000),
        "media/big.bin": os.urandom(12 * MiB + 3),  # above the 5M cutoff -> multipart
        "media/small.bin": os.urandom(2 * MiB),
        "odd names/sp ace.txt": b"space",
        "odd names/ünïcødé.txt": "ünï".encode(),
        "odd names/plus+amp&eq=.txt": b"symbols",
        "odd names/pct%20sign.txt": b"percent",
        "odd names/empty": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_rclone_sync_and_check(server, tmp_path):
    need("rclone")
    b = unique_bucket("rclone")
    local = tmp_path / "local"
    files = build_tree(local)
    remote = f"strata:{b}/backup"

    rclone(server, tmp_path, "mkdir", f"strata:{b}")
    rclone(server, tmp_path, "sync", str(local), remote, "--transfers", "4", "--checkers", "4")
    rclone(server, tmp_path, "check", str(local), remote)

    listed = rclone(server, tmp_path, "lsf", "-R", "--files-only", remote).stdout.splitlines()
    assert sorted(listed) == sorted(files)
    assert rclone(server, tmp_path, "cat", f"{remote}/odd names/ünïcødé.txt").stdout == "ünï"

    # Modify a file in place keeping its size: only the hash can tell.
    target = local / "docs/deep/er/nested.bin"
    data = bytearray(target.read_bytes())
    data[1000:1010] = bytes(b ^ 0xFF for b in data[1000:1010])
    target.write_bytes(bytes(data))
    st = target.stat()
    os.utime(target, (st.st_atime, st.st_mtime + 10))
    cp = rclone(server, tmp_path, "check", str(local), remote, check=False)
    assert cp.returncode != 0, "rclone check should fail after a local modification\n" + cp.stderr
    assert "nested.bin" in cp.stderr, cp.stderr

    # and the multipart one (rclone keeps its md5 in object metadata)
    big = local / "media/big.bin"
    bd = bytearray(big.read_bytes())
    bd[-5:] = b"XXXXX" if bd[-5:] != b"XXXXX" else b"YYYYY"
    big.write_bytes(bytes(bd))
    os.utime(big, (time.time(), time.time() + 20))
    cp = rclone(server, tmp_path, "check", str(local), remote, check=False)
    assert cp.returncode != 0 and "big.bin" in cp.stderr, cp.stderr

    rclone(server, tmp_path, "sync", str(local), remote)
    rclone(server, tmp_path, "check", str(local), remote)

    # A fresh copy back down is byte-identical.
    back = tmp_path / "back"
    rclone(server, tmp_path, "copy", remote, str(back))
    for rel in files:
        assert (back / rel).read_bytes() == (local / rel).read_bytes(), rel

    # Deleting locally and syncing removes remotely.
    (local / "readme.txt").unlink()
    rclone(server, tmp_path, "sync", str(local), remote)
    listed = rclone(server, tmp_path, "lsf", "-R", "--files-only", remote).stdout.splitlines()
    assert "readme.txt" not in listed and len(listed) == len(files) - 1


def test_s3cmd_basic(server, tmp_path):
    need("s3cmd")
    base = s3cmd_args(server)
    b = unique_bucket("s3cmd")

    def s3cmd(*args, check=True):
        return run([*base, *args], check=check, timeout=300)

    s3cmd("mb", f"s3://{b}")
    assert f"s3://{b}" in s3cmd("ls").stdout

    small = tmp_path / "small file.txt"
    small.write_bytes(b"s3cmd small object\n" * 50)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MiB + 1))
    s3cmd("put", str(small), f"s3://{b}/dir/small file.txt")
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), f"s3://{b}/dir/big.bin")

    ls = s3cmd("ls", f"s3://{b}/dir/").stdout
    assert f"s3://{b}/dir/small file.txt" in ls and f"s3://{b}/dir/big.bin" in ls, ls
    assert str(12 * MiB + 1) in ls, ls

    for name, src in (("small file.txt", small), ("big.bin", big)):
        out = tmp_path / f"got-{src.name}"
        s3cmd("get", "--force", f"s3://{b}/dir/{name}", str(out))
        assert out.read_bytes() == src.read_bytes(), name

    info = s3cmd("info", f"s3://{b}/dir/small file.txt").stdout
    assert "File size:" in info and str(small.stat().st_size) in info, info

    s3cmd("del", f"s3://{b}/dir/small file.txt")
    ls = s3cmd("ls", "--recursive", f"s3://{b}").stdout
    assert "small file.txt" not in ls and "big.bin" in ls, ls
    s3cmd("del", f"s3://{b}/dir/big.bin")
    assert s3cmd("ls", "--recursive", f"s3://{b}").stdout.strip() == ""
    s3cmd("rb", f"s3://{b}")
    assert f"s3://{b}" not in s3cmd("ls").stdout
