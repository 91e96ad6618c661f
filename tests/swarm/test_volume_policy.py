"""A named volume that exists on the Swarm's manager mounts what its own driver options say,
whatever the manifest writes (``external: true`` states none): the safety policy judges
the host paths it mounts as it judges a bind, before anything changes (exit 2), as on a
host (``tests/docker/test_existing_volume_policy.py``).

Found this way: a volume made with ``o: bind, device: /etc`` on the manager, named by a
Swarm manifest as ``external: true``, validated and deployed; its task saw the host's
/etc at the mount (container mode refused it already)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
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
    init: true
    stop_grace_period: 2s
    volumes:
      - conf:/mnt/conf
volumes:
  conf: {{external: true, name: {volume}}}
rollout:
  health_timeout: 20s
  healthy_after: 1s
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="deployer-swarmvol-", dir="/tmp"))
    try:
        (root / "marker").write_text("here\n")
        yield root
    finally:
        shutil.rmtree(root)


def _volume(api: Any, name: str, device: str) -> None:
    api.create_volume(
        name, driver="local", driver_opts={"type": "none", "o": "bind", "device": device}
    )


@pytest.mark.parametrize("device", ["/etc", "//var/./run/"])
def test_an_external_volume_binding_a_protected_path_is_refused(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    device: str,
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    api: Any = swarm.api
    volume = f"{swarm_app}-hostconf"
    _volume(api, volume, device)
    try:
        f = tmp_path / "deploy.yml"
        f.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_v1, volume=volume))
        for args in (["plan"], ["deploy", "--report-dir", str(tmp_path)]):
            code, out = cli(*args, "-f", str(f), env=env)
            out += capsys.readouterr().err  # plan says it on stderr, deploy in its job log
            assert code == 2, out
            assert "deploy.yml:11:" in out and "services.web.volumes[0]" in out, out
            assert f'the volume "{volume}" (as it is on the manager) mounts' in out, out
            assert "the safety policy refuses it: " in out and '"system-bind"' in out, out
        assert services_of(swarm, swarm_app) == []  # nothing changed
    finally:
        remove_from_swarm(swarm, swarm_app)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            api.remove_volume(volume, force=True)


def test_an_external_volume_binding_a_data_directory_deploys(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: Any,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    api: Any = swarm.api
    volume = f"{swarm_app}-data"
    _volume(api, volume, str(data_dir))
    try:
        f = tmp_path / "deploy.yml"
        f.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_v1, volume=volume))
        code, out = cli("deploy", "-f", str(f), "--report-dir", str(tmp_path), env=env)
        assert code == 0, out
        assert services_of(swarm, swarm_app) == [f"{swarm_app}_web"]
    finally:
        remove_from_swarm(swarm, swarm_app)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            api.remove_volume(volume, force=True)
