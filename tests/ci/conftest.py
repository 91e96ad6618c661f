"""Fixtures of the CI template tests."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = ROOT / ".testenv" / "node"
GLCL_VERSION = "4.72.0"  # the newest that runs on Node 20


def _sh(cmd: list[str], timeout: float) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"


def apt_install(*packages: str) -> None:
    """Debian packages a fresh machine lacks (the tests run as root there)."""
    _sh(["apt-get", "update", "-qq"], 600)
    _sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], 600)


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    """gitlab-ci-local at a pinned version, installed with npm into .testenv/node."""
    binary = NODE_PREFIX / "node_modules" / ".bin" / "gitlab-ci-local"
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    with open(NODE_PREFIX / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = NODE_PREFIX / "node_modules" / "gitlab-ci-local" / "package.json"
        if not installed.is_file() or json.loads(installed.read_text())["version"] != GLCL_VERSION:
            if shutil.which("npm") is None:
                apt_install("nodejs", "npm")
            _sh(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(NODE_PREFIX),
                    "--no-audit",
                    "--no-fund",
                    f"gitlab-ci-local@{GLCL_VERSION}",
                ],
                600,
            )
        if shutil.which("rsync") is None:
            apt_install("rsync")
    return binary
