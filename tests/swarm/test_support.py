"""What the Swarm lacks stops `plan` and `deploy` before anything changes (exit 2), each
at its line: an ``external: true`` network that does not exist, or exists as a network
of one host (a bridge: no Swarm service can join it), and a logging or volume driver no
node that can run tasks has (Loki's plugin not installed). Before, the missing network
was found once the deploy had begun (no line), the bridge by the engine when it refused
the service, and a missing driver left the task pending until the rollout timed out."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.swarm.helpers import cli, remove_from_swarm
from tests.swarm.test_volume_owners import services_of

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  web:
    image: {image}
    networks: [front, shared]
    logging:
      driver: {log}
    volumes:
      - data:/data
networks:
  front: {{}}
  shared: {{external: true, name: {network}}}
volumes:
  data: {{driver: {volume_driver}}}
rollout:
  health_timeout: 20s
  healthy_after: 1s
"""


def test_what_the_swarm_lacks_is_refused_before_anything_changes(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    api: Any = swarm.api
    network = f"{swarm_app}-shared"
    f = tmp_path / "deploy.yml"

    def refused(**values: str) -> str:
        f.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_v1, **values))
        out = ""
        for args in (["plan"], ["deploy", "--report-dir", str(tmp_path)]):
            code, printed = cli(*args, "-f", str(f), env=env)
            out = printed + capsys.readouterr().err
            assert code == 2, out
            assert services_of(swarm, swarm_app) == [], args  # nothing changed
            assert not api.networks(names=[f"{swarm_app}_front"]), args
        return out

    try:
        ok = {"network": network, "log": "json-file", "volume_driver": "local"}
        out = refused(**ok)
        assert "deploy.yml:15:22: networks.shared.external:" in out, out
        assert f'the external network "{network}" does not exist' in out, out
        assert f"docker network create -d overlay --attachable {network}" in out, out

        api.create_network(network, driver="bridge")  # a network of this host only
        out = refused(**ok)
        assert f'the external network "{network}" is a network of one host (bridge' in out, out
        api.remove_network(network)

        api.create_network(network, driver="overlay", attachable=True)
        out = refused(**{**ok, "log": "loki", "volume_driver": "rexray/ebs"})
        assert "deploy.yml:10:15: services.web.logging.driver:" in out, out
        assert 'no logging driver "loki"' in out and "json-file" in out, out
        assert "deploy.yml:17:" in out and 'no volume driver "rexray/ebs"' in out, out
    finally:
        remove_from_swarm(swarm, swarm_app)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            api.remove_network(network)
