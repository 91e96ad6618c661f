"""The hand-written fakes keep the real interfaces: mypy --strict checks that FakeHost is a
``HostEngine`` and FakeSwarm a ``SwarmEngine``, so a protocol change breaks the fakes' build,
not a test's meaning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
from deployer.engine import HostEngine
from deployer.swarm.engine import DockerSwarmEngine, SwarmEngine
from tests.fakehost import FakeHost
from tests.fakeswarm import FakeSwarm


def host(fake: FakeHost) -> HostEngine:
    return fake


def swarm(fake: FakeSwarm) -> SwarmEngine:
    return fake


def real(engine: DockerSwarmEngine) -> SwarmEngine:
    return engine
"""


def test_the_fakes_satisfy_their_protocols_under_mypy_strict(tmp_path: Path) -> None:
    check = tmp_path / "check_fakes.py"
    check.write_text(CHECK)
    proc = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
            "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(check),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_fake_missing_a_method_is_caught(tmp_path: Path) -> None:
    check = tmp_path / "check_broken.py"
    check.write_text(
        "from deployer.swarm.engine import SwarmEngine\n"
        "class Broken:\n"
        "    def info(self) -> dict[str, object]:\n"
        "        return {}\n"
        "def swarm(fake: Broken) -> SwarmEngine:\n"
        "    return fake\n"
    )
    proc = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
            "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(check),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 1 and "SwarmEngine" in proc.stdout
