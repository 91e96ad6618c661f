"""Input files that are not regular files, or too large, are refused before they are read:
exit 2 with a located message, never a hang, a traceback or a run-away read.

Each case runs `deployer validate` in its own process under a timeout (the hang guard: a
FIFO read blocks forever, /dev/zero never ends)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.manifest import files

MANIFEST = """app: shop
environments:
  production: {}
services:
  web:
    image: registry.example.com/shop/web:1.0
"""
ENV_FILE_MANIFEST = MANIFEST + "    env_file: app.env\n"
COMPOSE_MANIFEST = """app: shop
environments:
  production: {}
compose: compose.yml
"""
COMPOSE = """services:
  web:
    image: registry.example.com/shop/web:1.0
"""


def validate(manifest: Path, timeout: float = 60) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "validate", "-f", str(manifest)],
        capture_output=True,
        text=True,
        timeout=timeout,  # the hang guard
        env={k: v for k, v in os.environ.items() if k != "CI_ENVIRONMENT_NAME"},
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


@contextmanager
def special(kind: str, path: Path, limit: int) -> Iterator[None]:
    """Make ``path`` a file of ``kind``; sockets are bound for the duration."""
    sock = None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind in ("dev-zero", "dev-urandom", "dev-null"):
        os.symlink("/dev/" + kind.removeprefix("dev-"), path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    elif kind == "oversized":
        with open(path, "wb") as f:  # sparse: large without using the disk
            f.truncate(limit + 1)
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(50 * files.MIB)
    elif kind == "link-to-fifo":
        os.mkfifo(path.with_name(path.name + ".fifo"))
        os.symlink(path.name + ".fifo", path)
    try:
        yield
    finally:
        if sock is not None:
            sock.close()


KINDS = [
    "fifo",
    "dev-zero",
    "dev-urandom",
    "dev-null",
    "directory",
    "socket",
    "oversized",
    "huge",
    "link-to-fifo",
]
ROLES: dict[str, tuple[str, dict[str, str], int]] = {
    # role -> (the special file's name, the other files, its limit)
    "manifest": ("deploy.yml", {}, files.MANIFEST_LIMIT),
    "env_file": ("app.env", {"deploy.yml": ENV_FILE_MANIFEST}, files.ENV_FILE_LIMIT),
    "compose": ("compose.yml", {"deploy.yml": COMPOSE_MANIFEST}, files.MANIFEST_LIMIT),
    "dotenv": (
        ".env",
        {"deploy.yml": COMPOSE_MANIFEST, "compose.yml": COMPOSE},
        files.ENV_FILE_LIMIT,
    ),
}


def check_refused(tmp: Path, role: str, kind: str) -> str:
    name, others, limit = ROLES[role]
    for other, text in others.items():
        (tmp / other).write_text(text)
    with special(kind, tmp / name, limit):
        code, out = validate(tmp / "deploy.yml")
    assert "Traceback" not in out, out
    assert code == 2, (role, kind, code, out)
    said = "over the limit" if kind in ("oversized", "huge") else "not a regular file"
    if (role, kind) == ("compose", "directory"):
        said = "no compose file in the directory"  # a directory names a compose project
    if role == "env_file" and kind.startswith("dev-"):
        said = "outside the repository checkout"  # a link out of it: refused before reading
    assert said in out, (role, kind, out)
    return out


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.sampled_from(sorted(ROLES)), st.sampled_from(KINDS))
def test_special_and_oversized_inputs_exit_2_without_hanging(role: str, kind: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        check_refused(Path(d), role, kind)


def test_every_role_refuses_a_fifo_and_a_device(tmp_path: Path) -> None:
    for i, role in enumerate(sorted(ROLES)):
        for kind in ("fifo", "dev-zero"):
            d = tmp_path / f"{i}-{kind}"
            d.mkdir()
            out = check_refused(d, role, kind)
            assert "deploy.yml:" in out  # located where the file is named


def test_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    text = MANIFEST + "#" * (files.MANIFEST_LIMIT - len(MANIFEST) - 1) + "\n"
    (tmp_path / "deploy.yml").write_text(text)
    assert len(text) == files.MANIFEST_LIMIT
    code, out = validate(tmp_path / "deploy.yml")
    assert code == 0, out


def test_read_limited_reads_at_most_the_limit_of_a_file_that_lies(tmp_path: Path) -> None:
    # /proc files say size 0 and have content; the read is still bounded
    data = files.read_limited("/proc/self/status", 1 << 20)
    assert b"Name:" in data
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    try:
        files.read_limited(str(big), 1024)
    except files.FileRefused as e:
        assert "over the limit" in str(e)
    else:  # pragma: no cover
        raise AssertionError("a file over the limit was read")
