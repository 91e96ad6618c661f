"""Adopting an app Docker Compose v2 (`docker compose up -d`, the compose teams run today)
started, on the real engine: nothing changed recreates nothing, a new image replaces only its
service (volume data kept), `docker compose ps` still lists every service, and
`docker compose up -d` takes the app back. The same fixtures as the compose 1.29 tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer.docker.host import DockerHost
from tests import composev2
from tests.docker.compose_app import actions, deploy, exec_out, plan_of
from tests.docker.test_adopt import ComposeApp, copy_fixture, replace_web_keeping_data, up
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


class ComposeV2App(ComposeApp):
    docker_host: str = ""

    def compose(self, *args: str) -> str:
        cmd = ["-p", self.project, "--project-directory", str(self.path)]
        for f in self.files:
            cmd += ["-f", str(self.path / f)]
        done = composev2.run([*cmd, *args], cwd=self.path, docker_host=self.docker_host)
        return done.stdout

    def running(self) -> list[str]:
        return sorted(self.compose("ps", "--services", "--status", "running").split())


def start_v2(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    fixture: str,
    files: tuple[str, ...],
    *,
    wait: bool = True,
) -> Iterator[ComposeV2App]:
    path = copy_fixture(app, tmp_path, fixture, files, "60s")
    ca = ComposeV2App(app, path, files, {})
    ca.docker_host = testenv.engine_host
    yield from up(ca, testenv, *(("--wait", "--wait-timeout", "120") if wait else ()))


@pytest.fixture
def shop(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeV2App]:
    yield from start_v2(app, testenv, tmp_path, "shop", ("docker-compose.yml",))


@pytest.fixture
def voting(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeV2App]:
    yield from start_v2(
        app,
        testenv,
        tmp_path,
        "voting",
        ("docker-compose.yml", "docker-compose.prod.yml"),
        wait=False,  # its result service is never healthy on purpose
    )


ALL = ["cache", "db", "web", "worker"]


def test_an_app_compose_v2_started_plans_unchanged(
    shop: ComposeV2App, h1: DockerHost, engine: docker.DockerClient
) -> None:
    before = shop.ids(engine)
    assert sorted(before) == ALL
    plan = deploy(h1, shop.manifest()).plan
    assert actions(plan) == {name: ("unchanged", ("up to date",)) for name in ALL}
    assert all(s.adopted for s in plan.hosts[0].steps)
    assert shop.ids(engine) == before


def test_the_voting_app_with_an_override_file_plans_unchanged(
    voting: ComposeV2App, h1: DockerHost, engine: docker.DockerClient
) -> None:
    before = voting.ids(engine)
    plan, _ = plan_of(h1, voting.manifest())
    assert not plan.changes, actions(plan)
    assert {k: v[0] for k, v in actions(plan).items()} == dict.fromkeys(sorted(before), "unchanged")


def test_a_new_image_replaces_only_its_service_and_compose_v2_can_take_the_app_back(
    shop: ComposeV2App, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    after = replace_web_keeping_data(shop, h1, engine, testenv)

    # `docker compose ps` still lists every service, the deployer's web among them
    assert set(after.values()) <= set(shop.compose("ps", "-q", "--no-trunc").split())
    assert shop.running() == ALL
    plan, _ = plan_of(h1, shop.manifest())
    assert not plan.changes, actions(plan)

    # a team can go back: `docker compose up -d` takes the app over again, data kept
    shop.compose("up", "-d", "--wait", "--wait-timeout", "120")
    assert shop.running() == ALL
    back = shop.ids(engine)
    assert [k for k in ALL if back[k] != after[k]] in ([], ["web"])
    assert exec_out(engine, back["web"], "cat", "/srv/uploads/f") == "kept"
    assert (
        exec_out(engine, back["web"], "wget", "-q", "-O", "-", "http://127.0.0.1:8080/version")
        == "v2"
    )
