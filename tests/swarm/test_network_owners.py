"""On a Swarm, a network of another app or environment (its deployer labels) is refused
as on a host (``tests/docker/test_network_owners.py``): an ``external`` overlay network of
another stack put this stack's tasks beside that stack's (plan exit 0 before). Judged on
the manager before anything changes (exit 2), unless ``policy.allow`` lists
``foreign-network``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.swarm.helpers import cli
from tests.swarm.test_volume_owners import services_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
{allow}services:
  web:
    image: {image}
    init: true
    networks: [theirs]
networks:
  theirs: {{external: true, name: {network}}}
"""


@pytest.fixture
def their_network(swarm: docker.DockerClient, swarm_app: str) -> Iterator[str]:
    other = f"other{swarm_app[-6:]}"
    net = swarm.networks.create(
        f"{other}_backend",
        driver="overlay",
        attachable=True,
        internal=True,
        labels={L.STACK_NAMESPACE: other, L.APP: other, L.ENVIRONMENT: "production"},
    )
    try:
        yield str(net.name)
    finally:
        net.remove()


def test_another_stacks_network_is_refused(
    swarm: docker.DockerClient,
    swarm_app: str,
    their_network: str,
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    f = tmp_path / "deploy.yml"
    fields = {"app": swarm_app, "image": testenv.image_v1, "network": their_network}
    f.write_text(MANIFEST.format(**fields, allow=""))
    for args in (["plan"], ["deploy", "--report-dir", str(tmp_path)]):
        code, out = cli(*args, "-f", str(f), env=env)
        out += capsys.readouterr().err
        assert code == 2, out
        assert "deploy.yml:11:" in out and "networks.theirs" in out, out
        assert f'the network "{their_network}" is not this app\'s' in out, out
        assert '"foreign-network"' in out, out
    assert services_of(swarm, swarm_app) == []
    f.write_text(MANIFEST.format(**fields, allow="policy: {allow: [foreign-network]}\n"))
    code, out = cli("plan", "-f", str(f), env=env)
    assert code == 0, out + capsys.readouterr().err
