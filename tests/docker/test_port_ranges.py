"""A host port range for one container port (``"8000-8001:8080"``), compose's way to run
replicas of a service with a published port, on the real engine with Docker Compose v2 as
the peer: adoption plans nothing to do, and an update keeps every replica on a port of the
range, answering there."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker import adopt
from deployer.docker.host import DockerHost
from tests.docker.compose_app import ComposeProject, actions, compose_up, deploy, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  web:
    image: ${{WEB_IMAGE}}
    ports: ["127.0.0.1:{first}-{last}:8080"]
    deploy:
      replicas: 2
"""


@pytest.fixture
def ranged(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[tuple[ComposeProject, int]]:
    first = 20000 + int(hashlib.sha256(app.encode()).hexdigest(), 16) % 2000 * 3
    compose = COMPOSE.format(first=first, last=first + 2)
    variables = {"WEB_IMAGE": testenv.image_v1}
    with compose_up(app, tmp_path, testenv.engine_host, compose, variables) as project:
        yield project, first


def host_ports(engine: docker.DockerClient, app: str) -> dict[str, int]:
    """container id → the host port the engine bound for 8080, of the running replicas."""
    out = {}
    for c in engine.api.containers(filters={"label": f"{L.COMPOSE_PROJECT}={app}"}):
        (binding, *_) = engine.api.inspect_container(c["Id"])["NetworkSettings"]["Ports"][
            "8080/tcp"
        ]
        out[c["Id"]] = int(binding["HostPort"])
    return out


def version_at(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as r:
        return bytes(r.read()).decode().strip()


def test_a_range_is_adopted_and_each_update_binds_ports_of_it(
    ranged: tuple[ComposeProject, int],
    h1: DockerHost,
    engine: docker.DockerClient,
    testenv: TestEnv,
) -> None:
    project, first = ranged
    in_range = set(range(first, first + 3))
    before = host_ports(engine, project.project)
    assert len(before) == 2 and set(before.values()) <= in_range

    m = project.manifest()
    (port,) = m.service("web").ports
    assert (port.host_port, m.service("web").order) == (f"{first}-{first + 2}", "stop-first")
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {"web": ("unchanged", ("up to date",))}

    # the range is compared: another range is a change of `ports`
    web = engine.api.inspect_container(next(iter(before)))
    image = engine.api.inspect_image(web["Image"])
    driver = engine.api.info()["LoggingDriver"]
    svc = m.service("web")
    wider = replace(svc, ports=(replace(port, published_end=first + 5),))
    parts = adopt.config_parts(wider, web, image, project.project, driver, m.engine_names())
    assert adopt.differing(parts, wider) == ["ports"]

    project.set_env(WEB_IMAGE=testenv.image_v2)
    deploy(h1, project.manifest())
    after = host_ports(engine, project.project)
    running = {
        cid: p for cid, p in after.items() if engine.api.inspect_container(cid)["State"]["Running"]
    }
    assert len(running) == 2 and not set(running) & set(before)
    assert set(running.values()) <= in_range and len(set(running.values())) == 2
    assert {version_at(p) for p in running.values()} == {"v2"}
    plan, _ = plan_of(h1, project.manifest())
    assert not plan.changes, actions(plan)
