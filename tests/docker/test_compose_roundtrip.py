"""Back and forth between Docker Compose v2 and the deployer, on the real engine.

The first deploy over what `docker compose up -d` started records compose's state as
release 0, so `rollback` can return to it. A team that goes back to compose
(`docker compose up -d`) and then deploys again must not fail: compose may have started
the deployer's kept container again, which already has its kept name and is not renamed
to itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.releases import choose, release_digests
from deployer.rollout import PrintLog, Rollout
from tests.docker.compose_app import ENV, exec_out, plan_of
from tests.docker.test_adopt_v2 import ComposeV2App, start_v2
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def shop(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeV2App]:
    """start_v2's app, taken down patiently: a loaded engine frees a removed container's
    network endpoint a moment after the removal, and `compose down` then fails once."""
    started = start_v2(app, testenv, tmp_path, "shop", ("docker-compose.yml",))
    ca = next(started)
    try:
        yield ca
    finally:
        for _ in range(10):
            try:
                ca.compose("down", "-v", "--timeout", "1")
                break
            except AssertionError:
                time.sleep(2)
        with contextlib.suppress(AssertionError):
            started.close()


def version(engine: docker.DockerClient, cid: str) -> str:
    return exec_out(engine, cid, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/version")


def deploy(h: DockerHost, app: ComposeV2App, only: dict[str, str] | None = None) -> Rollout:
    from deployer.plan import make_plan

    m = app.manifest()
    plan, observed = plan_of(h, m)
    if only is not None:  # a rollback: the release's digests
        plan = make_plan(m, list(observed.values()), only, sorted(only))
    lines: list[str] = []
    kind = "deploy" if only is None else "rollback"
    r = Rollout(m, plan, {h.name: h}, observed, Context(), PrintLog(lines.append), kind=kind)
    r.run()
    assert r.error is None, "\n".join(lines)
    return r


def test_compose_state_is_release_0_and_compose_and_the_deployer_take_turns(
    shop: ComposeV2App, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    shop.write_env(WEB_IMAGE=testenv.image_v2)
    deploy(h1, shop)
    assert version(engine, shop.ids(engine)["web"]) == "v2"
    releases = list(h1.releases(shop.project, ENV))
    assert [r.id for r in releases][:1] == ["0"] and len(releases) == 2
    assert releases[0].user == "docker compose"
    assert set(releases[0].digests) == {"cache", "db", "web", "worker"}

    # `deployer rollback` (the previous release) returns to what compose ran
    target = choose(releases, None, h1.name)
    assert target.id == "0"
    digests, _ = release_digests(target, shop.manifest())
    deploy(h1, shop, {s: d for s, d in digests.items() if s == "web"})
    assert version(engine, shop.ids(engine)["web"]) == "v1"

    # back to compose, then deploy again
    shop.write_env(WEB_IMAGE=testenv.image_v2)
    shop.compose("up", "-d", "--wait", "--wait-timeout", "120")
    assert version(engine, shop.ids(engine)["web"]) == "v2"
    shop.write_env(WEB_IMAGE=testenv.image_v1)
    deploy(h1, shop)
    assert version(engine, shop.ids(engine)["web"]) == "v1"
    shop.write_env(WEB_IMAGE=testenv.image_v2)
    deploy(h1, shop)
    assert version(engine, shop.ids(engine)["web"]) == "v2"
