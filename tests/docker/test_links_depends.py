"""``links`` and ``depends_on.<service>.restart`` / ``.required`` on the real engine, with
Docker Compose v2 as the peer.

The app is started with ``docker compose up -d`` (v2): web links to db as ``database`` and
depends on a service of an inactive profile with ``required: false``; worker depends on db
with ``restart: true``. The deployer adopts it with nothing to do, and a changed ``restart``
or an optional dependency that becomes present plans a replace naming the key. When the
deployer replaces db: db's new container carries the alias (inspect), compose's web (whose
link names compose's db container) is replaced and reaches db by the alias, and worker
restarts. On the deployer's own containers a changed alias replaces db naming
``link_aliases``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from deployer import labels as L
from deployer.docker.host import DockerHost
from tests import composev2
from tests.docker.compose_app import ENV, ComposeProject, actions, deploy, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  db:
    image: ${DB_IMAGE}
    init: true
  web:
    image: ${WEB_IMAGE}
    init: true
    links: ["db:database"]
    depends_on:
      cache: {condition: service_started, required: false}
  worker:
    image: ${WEB_IMAGE}
    init: true
    depends_on:
      db: {condition: service_started, restart: true}
  cache:
    image: ${WEB_IMAGE}
    init: true
    profiles: [extra]
"""


class App(ComposeProject):
    def env(self, db: str, web: str, extra: str = "") -> None:
        (self.path / ".env").write_text(
            f"COMPOSE_PROJECT_NAME={self.project}\nDB_IMAGE={db}\nWEB_IMAGE={web}\n{extra}"
        )

    def container(self, engine: docker.DockerClient, service: str) -> dict[str, Any]:
        found = engine.api.containers(
            filters={
                "label": [f"{L.COMPOSE_PROJECT}={self.project}", f"{L.COMPOSE_SERVICE}={service}"],
                "status": "running",
            }
        )
        assert len(found) == 1, found
        return dict(engine.api.inspect_container(found[0]["Id"]))


@pytest.fixture
def linked_app(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[App]:
    path = tmp_path / "app"
    path.mkdir()
    (path / "docker-compose.yml").write_text(COMPOSE)
    (path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  {ENV}: {{}}\n"
        "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
    )
    la = App(app, path, testenv.engine_host)
    la.env(testenv.image_v1, testenv.image_v1)
    try:
        la.compose("up", "-d")
        yield la
    finally:
        composev2.run(
            ["-p", app, "--profile", "extra", "down", "-v", "--timeout", "1"],
            cwd=path,
            docker_host=testenv.engine_host,
            check=False,
        )


UNCHANGED = ("unchanged", ("up to date",))


def test_compose_v2_app_with_links_and_depends_on_is_adopted_and_changes_are_named(
    linked_app: App, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    web = linked_app.container(engine, "web")
    (net,) = web["NetworkSettings"]["Networks"].values()
    assert any(link.endswith(":database") for link in net["Links"])  # compose's own link
    worker = linked_app.container(engine, "worker")
    assert worker["Config"]["Labels"]["com.docker.compose.depends_on"] == "db:service_started:true"
    m = linked_app.manifest()
    assert m.service_names == ("db", "web", "worker")
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {"db": UNCHANGED, "web": UNCHANGED, "worker": UNCHANGED}

    compose_file = linked_app.path / "docker-compose.yml"
    compose_file.write_text(COMPOSE.replace("restart: true", "restart: false"))
    plan, _ = plan_of(h1, linked_app.manifest())
    assert actions(plan)["worker"] == ("replace", ("config changed: depends_restart",))
    compose_file.write_text(COMPOSE)
    linked_app.env(testenv.image_v1, testenv.image_v1, "COMPOSE_PROFILES=extra\n")
    plan, _ = plan_of(h1, linked_app.manifest())  # cache is there now: web depends on it
    assert actions(plan)["web"] == ("replace", ("config changed: depends_on",))


def test_replacing_the_linked_service_keeps_the_link_and_restarts_the_dependent(
    linked_app: App, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    worker_before = linked_app.container(engine, "worker")
    linked_app.env(testenv.image_v2, testenv.image_v1)
    m = linked_app.manifest()
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "db": ("replace", ("new image digest",)),
        "web": (
            "replace",
            ("links to db, which is replaced (compose's link names its container)",),
        ),
        "worker": UNCHANGED,
    }
    r = deploy(h1, m)

    db = linked_app.container(engine, "db")
    (net,) = db["NetworkSettings"]["Networks"].values()
    assert "database" in net["Aliases"] and "db" in net["Aliases"]
    web = linked_app.container(engine, "web")
    code, out = engine.containers.get(str(web["Id"])).exec_run(
        ["wget", "-q", "-O", "-", "http://database:8080/version"]
    )
    assert (code, out.decode().strip()) == (0, "v2"), out
    worker = linked_app.container(engine, "worker")
    assert worker["Id"] == worker_before["Id"]  # the same container, restarted
    assert worker["State"]["StartedAt"] != worker_before["State"]["StartedAt"]
    assert [s.detail for s in r.result.steps if s.name == "restart worker"] == [
        "db replaced (depends_on restart: true)"
    ]
    plan, _ = plan_of(h1, linked_app.manifest())
    assert not plan.changes, actions(plan)

    # on the deployer's own containers, a changed alias replaces db naming the key
    compose_file = linked_app.path / "docker-compose.yml"
    compose_file.write_text(COMPOSE.replace('"db:database"', '"db:database2"'))
    plan, _ = plan_of(h1, linked_app.manifest())
    assert actions(plan)["db"] == ("replace", ("config changed: link_aliases",))
    assert actions(plan)["web"] == UNCHANGED
