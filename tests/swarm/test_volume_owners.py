"""Another stack's data is not mounted by a Swarm deploy (``deployer.swarm.owners``): a
volume the manifest names that a service of another stack mounts, or that exists on the
manager with another owner's labels (or none), is refused before anything changes, exit 2,
located at the manifest's line; the app's own volume, and an ``external`` one, are taken."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.swarm.helpers import cli, remove_from_swarm
from tests.testenv import TestEnv, unique_app

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
      - data:/data
volumes:
  data:{volume}
rollout:
  health_timeout: 20s
  healthy_after: 1s
"""


def write(tmp: Path, app: str, image: str, volume: str = " {}") -> str:
    path = tmp / "deploy.yml"
    path.write_text(MANIFEST.format(app=app, image=image, volume=volume))
    return str(path)


def services_of(client: docker.DockerClient, app: str) -> list[str]:
    api: Any = client.api
    return [
        s["Spec"]["Name"]
        for s in api.services()
        if (s["Spec"].get("Labels") or {}).get("com.docker.stack.namespace") == app
    ]


def test_another_stacks_volume_is_refused_and_the_apps_own_is_taken(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    other = unique_app()
    try:
        # another app's stack, deployed with its own volume <other>_data
        (tmp_path / "other").mkdir()
        code, out = cli(
            "deploy",
            "-f",
            write(tmp_path / "other", other, testenv.image_v1),
            "--report-dir",
            str(tmp_path / "other"),
            env=env,
        )
        assert code == 0, out
        # this app names that volume
        f = write(tmp_path, swarm_app, testenv.image_v1, f"\n    name: {other}_data")
        for args in (["plan"], ["deploy", "--report-dir", str(tmp_path)]):
            code, out = cli(*args, "-f", f, env=env)
            out += capsys.readouterr().err  # plan says it on stderr, deploy in its job log
            assert code == 2, out
            assert f'the volume "{other}_data" is mounted by the service "{other}_web"' in out
            assert f'it belongs to the app "{other}"' in out
            assert "deploy.yml:14:" in out and "volumes.data.name" in out, out
            assert "external: true" in out
        assert services_of(swarm, swarm_app) == []  # nothing changed

        # declared external: still that app's data, which needs foreign-volume (exit 0
        # before)
        f = write(
            tmp_path, swarm_app, testenv.image_v1, f"\n    name: {other}_data\n    external: true"
        )
        code, out = cli("plan", "-f", f, env=env)
        out += capsys.readouterr().err
        assert code == 2, out
        assert f'the external volume "{other}_data" is not this app\'s' in out, out
        assert '"foreign-volume"' in out, out
        Path(f).write_text(Path(f).read_text() + "policy: {allow: [foreign-volume]}\n")
        code, out = cli("plan", "-f", f, env=env)
        assert code == 0, out
    finally:
        remove_from_swarm(swarm, other)


def test_a_volume_made_by_hand_on_the_manager_is_refused(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    api: Any = swarm.api
    name = f"{swarm_app}_data"
    api.create_volume(name, labels={"purpose": "by hand"})
    try:
        f = write(tmp_path, swarm_app, testenv.image_v1)
        code, out = cli("deploy", "-f", f, "--report-dir", str(tmp_path), env=env)
        assert code == 2, out
        assert f'the volume "{name}" already exists on the manager' in out
        assert "carries no label of the deployer or of docker compose" in out
        assert "services.web.volumes[0]" in out
        assert services_of(swarm, swarm_app) == []
        # once it is gone the deploy creates the app's own, and takes it again after
        api.remove_volume(name)
        for image in (testenv.image_v1, testenv.image_v2):
            code, out = cli(
                "deploy",
                "-f",
                write(tmp_path, swarm_app, image),
                "--report-dir",
                str(tmp_path),
                env=env,
            )
            assert code == 0, out
    finally:
        remove_from_swarm(swarm, swarm_app)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            api.remove_volume(name, force=True)
