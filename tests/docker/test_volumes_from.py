"""``volumes_from`` (huginn's data-only container), on the real engine with Docker Compose
v2 as the peer: compose's app is adopted with nothing to do; a deploy rolls the data
container first, keeps its anonymous volume, and the new app container sees the same data
through it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker.host import DockerHost
from tests import composev2
from tests.docker.compose_app import ENV, ComposeProject, actions, deploy, exec_out, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  data:
    image: ${WEB_IMAGE}
    command: ["true"]
    volumes: ["/srv/shared"]
    healthcheck: {disable: true}
  app:
    image: ${WEB_IMAGE}
    volumes_from: [data]
"""


@pytest.fixture
def lent(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    (tmp_path / ".env").write_text(f"COMPOSE_PROJECT_NAME={app}\nWEB_IMAGE={testenv.image_v1}\n")
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  {ENV}: {{}}\n"
        "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
    )
    project = ComposeProject(app, tmp_path, testenv.engine_host)
    try:
        project.compose("up", "-d")  # `--wait` fails on the data container, which exits 0
        yield project
    finally:
        composev2.run(
            ["-p", app, "down", "-v", "--timeout", "1"],
            cwd=tmp_path,
            docker_host=testenv.engine_host,
            check=False,
        )


def running(engine: docker.DockerClient, project: str, service: str) -> list[str]:
    labels = [f"{L.COMPOSE_PROJECT}={project}", f"{L.COMPOSE_SERVICE}={service}"]
    return [c["Id"] for c in engine.api.containers(filters={"label": labels})]


def test_a_data_container_lends_its_volumes_across_a_deploy(
    lent: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    for _ in range(100):
        (app,) = running(engine, lent.project, "app") or [""]
        if app and not running(engine, lent.project, "data"):
            break
        time.sleep(0.1)
    exec_out(engine, app, "sh", "-c", "echo kept > /srv/shared/note")
    m = lent.manifest()
    assert m.service("app").volumes_from == ("service:data:rw",)
    assert m.service("data").may_exit
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "data": ("unchanged", ("up to date",)),
        "app": ("unchanged", ("up to date",)),
    }

    (lent.path / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={lent.project}\nWEB_IMAGE={testenv.image_v2}\n"
    )
    plan, _ = plan_of(h1, lent.manifest())
    assert [w for w in plan.waves] == [("data",), ("app",)]
    deploy(h1, lent.manifest())
    (new_app,) = running(engine, lent.project, "app")
    assert new_app != app
    assert exec_out(engine, new_app, "cat", "/srv/shared/note") == "kept"
    host_config = engine.api.inspect_container(new_app)["HostConfig"]
    (source,) = host_config["VolumesFrom"]
    data = engine.api.inspect_container(source.split(":")[0])
    assert data["Config"]["Labels"][L.COMPOSE_SERVICE] == "data"
    assert data["State"]["Status"] == "exited" and data["State"]["ExitCode"] == 0
    plan, _ = plan_of(h1, lent.manifest())
    assert not plan.changes, actions(plan)
