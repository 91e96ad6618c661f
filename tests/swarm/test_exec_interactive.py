"""`deployer exec -i` and `-t` on an ``engine: swarm`` environment (the single-node
swarm, reached over its socket and over SSH): the same checks as in container mode."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from tests.ops.interactive import check_stdin, check_tty
from tests.swarm.helpers import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  api:
    image: {image}
    init: true
    stop_grace_period: 1s
    command: ["sleep", "86400"]
rollout:
  health_timeout: 30s
  healthy_after: 1s
"""


@pytest.mark.parametrize("transport", ["unix", "ssh"])
def test_exec_stdin_and_tty_on_a_swarm(
    transport: str,
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: TestEnv,
    tmp_path: Path,
) -> None:
    env = dict(os.environ)
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "CI_JOB_URL"):
        env.pop(var, None)
    env.update(
        testenv.ssh_environ() if transport == "ssh" else {"DOCKER_HOST": testenv.engine_host}
    )
    path = tmp_path / "deploy.yml"
    path.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_base))
    code, out = cli("deploy", "-f", str(path), "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    check_stdin(["-f", str(path)], env)
    check_tty(["-f", str(path)], env, signals=transport == "unix")
