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
from tests.docker.compose_app import (
    ComposeProject,
    actions,
    compose_up,
    deploy,
    exec_out,
    plan_of,
)
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
    variables = {"WEB_IMAGE": testenv.image_v1}
    # `--wait` fails on the data container, which exits 0
    with compose_up(app, tmp_path, testenv.engine_host, COMPOSE, variables, ("-d",)) as project:
        yield project


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

    lent.set_env(WEB_IMAGE=testenv.image_v2)
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
