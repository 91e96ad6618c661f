"""A lifecycle hook's output is read as it comes and only its end is kept: a hook that
prints hundreds of megabytes (a verbose migration, a ``cat`` of the wrong file) must not
grow the deployer's memory with it. Run in a process of its own, whose peak resident
memory is the measure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# the hook prints 600 MB of NUL bytes, then "done"
PROBE = """\
import resource, sys
import docker
from deployer.docker.hooks import run_hook
from deployer.manifest.model import Hook
client = docker.DockerClient(base_url=sys.argv[1])
script = "head -c 600000000 /dev/zero; echo done"
hook = Hook(command=("sh", "-c", script))
out = run_hook(client, "engine", sys.argv[2], hook, 200)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(out.exit_code, repr(out.output[-4:]), peak, sep="|")
"""
PEAK_MB = 300  # about 60 with its end kept; 1.8 GB when all of it was kept


def test_a_hook_printing_without_end_is_read_in_bounded_memory(
    app: str, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    c = engine.containers.run(
        testenv.image_v1, entrypoint=["sleep", "300"], labels={L.APP: app}, detach=True
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, testenv.engine_host, str(c.id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # 600 MB through the engine's API: over a minute on a loaded machine
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    code, tail, peak = proc.stdout.strip().split("|")
    assert (code, tail) == ("0", "'done'"), proc.stdout
    assert int(peak) < PEAK_MB, f"peak resident memory {peak} MB"
