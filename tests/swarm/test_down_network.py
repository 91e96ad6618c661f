"""`deployer down` on a Swarm: a plain container someone ran on the app's overlay network
(attachable, as the deployer creates it) keeps the network; `down` removes the rest and
names the network and the container with the commands to run (exit 6)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.swarm.helpers import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


DOWN = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  web:
    image: {image}
    init: true
    command: ["sleep", "86400"]
    stop_grace_period: 1s
rollout:
  health_timeout: 30s
  healthy_after: 1s
"""


def test_swarm_down_names_a_network_another_container_uses(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app's overlay network is attachable: a plain container someone ran on it
    (not a task) keeps it. `down` removes the services and releases, waits for the
    tasks only, and names the network and the container with the commands to run
    (exit 6). Before, it waited 30 s and ended in a traceback (exit 70)."""
    env = {"DOCKER_HOST": testenv.engine_host}
    path = tmp_path / "swarm.yml"
    path.write_text(DOWN.format(app=swarm_app, image=testenv.image_base))
    code, out = cli("deploy", "-f", str(path), "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    (net,) = swarm.networks.list(filters={"label": f"{L.STACK_NAMESPACE}={swarm_app}"})
    debug = swarm.containers.run(
        testenv.image_base, ["sleep", "600"], network=net.name, init=True, detach=True
    )
    try:
        code, out = cli("down", "-f", str(path), env=env)
        out += capsys.readouterr().err
        debug.reload()
        assert debug.status == "running", out  # not the app's: left alone
    finally:
        debug.remove(force=True)
    assert code == 6, out
    assert "Traceback" not in out, out
    assert f"network {net.name}" in out and debug.name in out, out
    assert f"docker network disconnect {net.name} {debug.name}" in out, out
    assert not swarm.services.list(filters={"label": f"{L.STACK_NAMESPACE}={swarm_app}"})
