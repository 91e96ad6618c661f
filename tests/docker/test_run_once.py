"""A service that runs once (a migration another service waits for with `depends_on:
condition: service_completed_successfully`), on the real engine with Docker Compose v2 as
the peer: compose's exited container is adopted as done; a deploy runs the new one to
completion before its dependents start; a failed or endless run fails the deploy, rolls
back, and leaves the dependents as they were."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.docker.status import collect
from deployer.rollout import PrintLog, Rollout
from tests.docker.compose_app import ComposeProject, actions, compose_up, deploy, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  migrate:
    image: ${WEB_IMAGE}
    command: ["sh", "-c", "${MIGRATION}"]
    healthcheck: {disable: true}
  web:
    image: ${WEB_IMAGE}
    depends_on:
      migrate: {condition: service_completed_successfully}
"""


@pytest.fixture
def once_app(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    variables = {"WEB_IMAGE": testenv.image_v1, "MIGRATION": "echo migrated v1"}
    with compose_up(
        app, tmp_path, testenv.engine_host, COMPOSE, variables, health_timeout="20s"
    ) as project:
        yield project


def containers(engine: docker.DockerClient, project: str, service: str) -> list[dict[str, str]]:
    found = engine.api.containers(
        all=True,
        filters={"label": [f"{L.COMPOSE_PROJECT}={project}", f"{L.COMPOSE_SERVICE}={service}"]},
    )
    return [{"id": c["Id"], "state": c["State"], "status": c["Status"]} for c in found]


def failed_deploy(h1: DockerHost, project: ComposeProject) -> Rollout:
    plan, observed = plan_of(h1, project.manifest())
    r = Rollout(project.manifest(), plan, {h1.name: h1}, observed, Context(), PrintLog(print))
    r.run()
    assert r.error is not None
    return r


def test_a_run_once_service_is_adopted_done_and_runs_before_its_dependents(
    once_app: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    (migration,) = containers(engine, once_app.project, "migrate")
    assert migration["status"].startswith("Exited (0)")
    m = once_app.manifest()
    assert m.service("migrate").completes and not m.service("web").completes
    assert m.service("migrate").order == "stop-first"
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "migrate": ("unchanged", ("up to date",)),
        "web": ("unchanged", ("up to date",)),
    }

    once_app.set_env(WEB_IMAGE=testenv.image_v2, MIGRATION="echo v2")
    deploy(h1, once_app.manifest())
    runs = containers(engine, once_app.project, "migrate")
    new = [c for c in runs if c["id"] != migration["id"]]
    assert len(new) == 1 and new[0]["status"].startswith("Exited (0)")
    assert engine.api.logs(new[0]["id"]).decode().strip() == "v2"
    # it completed before web's new container was created
    finished = engine.api.inspect_container(new[0]["id"])["State"]["FinishedAt"]
    (web,) = [c for c in containers(engine, once_app.project, "web") if c["state"] == "running"]
    assert engine.api.inspect_container(web["id"])["Created"] > finished

    plan, _ = plan_of(h1, once_app.manifest())
    assert not plan.changes, actions(plan)
    rows = {r["service"]: r for r in collect(once_app.manifest(), [h1])["hosts"][0]["services"]}
    assert rows["migrate"]["health"] == "completed"


@pytest.mark.parametrize(
    ("migration", "status"),
    [
        ("echo broken; exit 3", "exited (code 3)"),
        # ends on SIGTERM: the rollback's stop of the endless run takes no 10 s stop timeout
        ("trap exit TERM; sleep 60 & wait", "timeout (still running"),
    ],
)
def test_a_failed_run_rolls_back_before_its_dependents_change(
    once_app: ComposeProject,
    h1: DockerHost,
    engine: docker.DockerClient,
    testenv: TestEnv,
    migration: str,
    status: str,
) -> None:
    (web_before,) = containers(engine, once_app.project, "web")
    if "sleep" in migration:
        text = (once_app.path / "deploy.yml").read_text()
        (once_app.path / "deploy.yml").write_text(text.replace("20s", "3s"))
    once_app.set_env(WEB_IMAGE=testenv.image_v2, MIGRATION=migration)
    r = failed_deploy(h1, once_app)
    assert status in str(r.error)
    assert "migrate" in str(r.error)
    (web_after,) = containers(engine, once_app.project, "web")
    assert web_after["id"] == web_before["id"] and web_after["state"] == "running"
    assert (
        engine.api.inspect_image(engine.api.inspect_container(web_after["id"])["Image"])[
            "RepoDigests"
        ]
        == engine.api.inspect_image(testenv.image_v1)["RepoDigests"]
    )


MAY_EXIT = """\
services:
  fix-permissions:
    image: ${WEB_IMAGE}
    command: ["sh", "-c", "echo fixed"]
    restart: "no"
    healthcheck: {disable: true}
  migrations:
    image: ${WEB_IMAGE}
    command: ["sh", "-c", "echo migrated"]
    restart: on-failure
    healthcheck: {disable: true}
  web:
    image: ${WEB_IMAGE}
    restart: on-failure
"""


def test_a_job_nothing_waits_for_may_exit_0_when_its_restart_policy_says_so(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    """kong's migrations and zammad's init (`restart: on-failure`), rocket.chat's permission
    fix (`restart: "no"`): compose runs them on `up` and nothing waits for them. Exit 0 is
    their success; a long-running service with the same policy is still gated on health."""
    variables = {"WEB_IMAGE": testenv.image_v1}
    # `--wait` fails on a container that exited, even 0
    with compose_up(app, tmp_path, testenv.engine_host, MAY_EXIT, variables, ("-d",)) as project:
        for _ in range(100):
            jobs = containers(engine, app, "fix-permissions") + containers(
                engine, app, "migrations"
            )
            if all(c["state"] == "exited" for c in jobs):
                break
            time.sleep(0.1)
        m = project.manifest()
        assert [s.name for s in m.services if s.may_exit] == [
            "fix-permissions",
            "migrations",
            "web",
        ]
        assert not any(s.completes for s in m.services)
        plan, _ = plan_of(h1, m)
        assert {s: a for s, (a, _) in actions(plan).items()} == dict.fromkeys(
            ("fix-permissions", "migrations", "web"), "unchanged"
        )

        project.set_env(WEB_IMAGE=testenv.image_v2)
        deploy(h1, project.manifest())
        for service in ("fix-permissions", "migrations"):
            runs = containers(engine, app, service)
            assert sum(c["status"].startswith("Exited (0)") for c in runs) == 2, runs
        (web,) = [c for c in containers(engine, app, "web") if c["state"] == "running"]
        assert (
            engine.api.inspect_image(engine.api.inspect_container(web["id"])["Image"])[
                "RepoDigests"
            ]
            == engine.api.inspect_image(testenv.image_v2)["RepoDigests"]
        )
        plan, _ = plan_of(h1, project.manifest())
        assert not plan.changes, actions(plan)
        rows = collect(project.manifest(), [h1])["hosts"][0]["services"]
        health = {r["service"]: r["health"] for r in rows}
        assert health == {
            "fix-permissions": "completed",
            "migrations": "completed",
            "web": "healthy",
        }
