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
from deployer.manifest import load_manifest
from tests.docker.compose_app import (
    ENV,
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


def test_the_volumes_of_a_container_of_the_host(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    """`volumes_from: ["container:NAME:ro"]`: a container the host runs outside the app
    lends its volumes, read-only as written."""
    holder = engine.containers.run(
        testenv.image_v1,
        ["sh", "-c", "echo shared > /srv/tools/note; sleep 600"],
        name=f"{app}-holder",
        volumes=[f"{app}-tools:/srv/tools"],
        detach=True,
    )
    try:
        for _ in range(50):
            if exec_ok(engine, holder.id):
                break
            time.sleep(0.1)
        (tmp_path / "deploy.yml").write_text(
            f"app: {app}\nenvironments:\n  {ENV}: {{}}\n"
            "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
            f"services:\n  web:\n    image: {testenv.image_v1}\n"
            f"    volumes_from: ['container:{app}-holder:ro']\n"
        )
        m = load_manifest(tmp_path / "deploy.yml", ENV, {})
        assert m.service("web").volumes_from == (f"container:{app}-holder:ro",)
        deploy(h1, m)
        (web,) = engine.api.containers(filters={"label": f"{L.APP}={app}"})
        assert exec_out(engine, web["Id"], "cat", "/srv/tools/note") == "shared"
        (mount,) = [
            m
            for m in engine.api.inspect_container(web["Id"])["Mounts"]
            if m["Destination"] == "/srv/tools"
        ]
        assert mount["RW"] is False
    finally:
        for c in engine.api.containers(all=True, filters={"label": f"{L.APP}={app}"}):
            engine.api.remove_container(c["Id"], force=True)  # they hold the volume too
        holder.remove(force=True)
        engine.volumes.get(f"{app}-tools").remove(force=True)


def exec_ok(engine: docker.DockerClient, cid: str) -> bool:
    res = engine.containers.get(cid).exec_run(["cat", "/srv/tools/note"])
    return bool(res.exit_code == 0)
