"""``network_mode: bridge`` (nextcloud all-in-one's master container): the engine's default
bridge network and no app network, on the real engine with Docker Compose v2 as the peer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker.host import DockerHost
from tests.docker.compose_app import ComposeProject, actions, compose_up, deploy, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  web:
    image: ${WEB_IMAGE}
    network_mode: bridge
"""


@pytest.fixture
def bridged(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    variables = {"WEB_IMAGE": testenv.image_v1}
    with compose_up(app, tmp_path, testenv.engine_host, COMPOSE, variables) as project:
        yield project


def running_web(engine: docker.DockerClient, project: str) -> dict[str, object]:
    (c,) = engine.api.containers(filters={"label": f"{L.COMPOSE_PROJECT}={project}"})
    return dict(engine.api.inspect_container(c["Id"]))


def test_the_default_bridge_is_adopted_and_kept(
    bridged: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    before = running_web(engine, bridged.project)
    plan, _ = plan_of(h1, bridged.manifest())
    assert actions(plan) == {"web": ("unchanged", ("up to date",))}

    bridged.set_env(WEB_IMAGE=testenv.image_v2)
    deploy(h1, bridged.manifest())
    after = running_web(engine, bridged.project)
    assert after["Id"] != before["Id"]
    host_config = after["HostConfig"]
    settings = after["NetworkSettings"]
    assert isinstance(host_config, dict) and isinstance(settings, dict)
    assert host_config["NetworkMode"] == "bridge"
    assert list(settings["Networks"]) == ["bridge"]
    plan, _ = plan_of(h1, bridged.manifest())
    assert not plan.changes, actions(plan)
