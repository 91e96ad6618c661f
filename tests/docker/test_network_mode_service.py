"""``network_mode: service:NAME`` (a Tailscale or VPN sidecar whose network the app shares),
on the real engine with Docker Compose v2 as the peer: the dependent's container joins the
network namespace of NAME's container (it reaches NAME at 127.0.0.1); a deploy that
replaces NAME replaces the dependent too, in the new namespace; a rollback brings the old
ones back together; compose's app (which names the container by id) is adopted with
nothing to do."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.manifest import load_manifest
from deployer.manifest.model import Manifest
from deployer.result import Outcome
from deployer.rollout import PrintLog, Rollout
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

# net serves /version on 8080; side serves on 8081 in the same namespace, and its
# healthcheck reaches net at 127.0.0.1:8080 (only possible in net's namespace)
SIDE_CHECK = (
    "wget -q -O /dev/null http://127.0.0.1:8080/version"
    " && wget -q -O /dev/null http://127.0.0.1:8081/version"
)


def write_manifest(path: Path, app: str, net: str, side: str) -> Manifest:
    (path / "deploy.yml").write_text(
        f"app: {app}\nenvironments:\n  {ENV}: {{}}\n"
        "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
        "services:\n"
        f"  net:\n    image: {net}\n    init: true\n"
        f"  side:\n    image: {side}\n    init: true\n"
        "    network_mode: service:net\n"
        # written without restart: true, so nothing restarts side when net alone is replaced
        "    depends_on: [net]\n"
        "    environment: {PORT: '8081'}\n"
        f"    healthcheck: {{test: ['CMD-SHELL', '{SIDE_CHECK}'], interval: 1s, retries: 3}}\n"
    )
    return load_manifest(path / "deploy.yml", ENV, {})


def containers(engine: docker.DockerClient, label: str, service: str) -> list[str]:
    """The running containers of ``service`` (``label``: the app's or compose's)."""
    key = L.SERVICE if label.startswith(L.APP) else L.COMPOSE_SERVICE
    found = engine.api.containers(filters={"label": [label, f"{key}={service}"]})
    return [str(c["Id"]) for c in found]


def namespace(engine: docker.DockerClient, cid: str) -> str:
    """The network namespace the container's processes run in (``net:[inode]``)."""
    return exec_out(engine, cid, "ls", "-l", "/proc/self/ns/net").rsplit(" ", 1)[-1]


def assert_shared(engine: docker.DockerClient, label: str, version: str) -> tuple[str, str]:
    """net and side share one namespace: side reaches net at 127.0.0.1:8080 and net reaches
    side at 127.0.0.1:8081; (net, side) ids."""
    (net,) = containers(engine, label, "net")
    (side,) = containers(engine, label, "side")
    assert engine.api.inspect_container(side)["HostConfig"]["NetworkMode"] == f"container:{net}"
    assert namespace(engine, side) == namespace(engine, net)
    url = "http://127.0.0.1:{}/version"
    assert exec_out(engine, side, "wget", "-q", "-O", "-", url.format(8080)) == version
    assert exec_out(engine, net, "wget", "-q", "-O", "-", url.format(8081)) == "v1"
    return net, side


def test_the_dependent_shares_the_network_and_is_replaced_with_it(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    label = f"{L.APP}={app}"
    m = write_manifest(tmp_path, app, testenv.image_v1, testenv.image_v1)
    plan, _ = plan_of(h1, m)
    assert plan.waves == (("net",), ("side",))
    assert plan.hosts[0].step("side").strategy_reason == "shares the network of net"
    deploy(h1, m)
    net, side = assert_shared(engine, label, "v1")

    # a new image of net: its namespace goes with its old container, side follows it
    m = write_manifest(tmp_path, app, testenv.image_v2, testenv.image_v1)
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "net": ("replace", ("new image digest",)),
        "side": (
            "replace",
            ("shares the network of net, which is replaced (its containers join the new one)",),
        ),
    }
    deploy(h1, m)
    net2, side2 = assert_shared(engine, label, "v2")
    assert net2 != net and side2 != side
    plan, _ = plan_of(h1, m)
    assert not plan.changes, actions(plan)

    # net replaced again, side's new container crashes: the rollback brings the old net
    # back, and side's old container in its (new) namespace
    m = write_manifest(tmp_path, app, testenv.image_v1, testenv.image_crash)
    plan, observed = plan_of(h1, m)
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.result.outcome is Outcome.ROLLED_BACK, r.result.error
    assert assert_shared(engine, label, "v2") == (net2, side2)
    m = write_manifest(tmp_path, app, testenv.image_v2, testenv.image_v1)
    plan, observed = plan_of(h1, m)
    assert not plan.changes, actions(plan)
    assert [c.joined for c in observed[h1.name].of_service("side")] == [net2]

    # a deploy interrupted between net's switch and side's step (its step left out here):
    # side's container is left in the namespace of net's old container; the next plan
    # replaces it, joining net's current one
    m = write_manifest(tmp_path, app, testenv.image_v1, testenv.image_v1)
    plan, observed = plan_of(h1, m)
    (hp,) = plan.hosts
    steps = tuple(s for s in hp.steps if s.service == "net")
    plan = dataclasses.replace(plan, hosts=(dataclasses.replace(hp, steps=steps),))
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.error is None, r.result.error
    (net3,) = containers(engine, label, "net")
    assert engine.api.inspect_container(side2)["HostConfig"]["NetworkMode"] == f"container:{net2}"
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "net": ("unchanged", ("up to date",)),
        "side": (
            "replace",
            ("shares the network of a container of net that is no longer its current one",),
        ),
    }
    deploy(h1, m)
    assert assert_shared(engine, label, "v1")[0] == net3


COMPOSE = """\
services:
  net:
    image: ${NET_IMAGE}
    init: true
  side:
    image: ${SIDE_IMAGE}
    init: true
    network_mode: service:net
    environment: {PORT: "8081"}
    healthcheck:
      test: ["CMD-SHELL", "SIDE_CHECK"]
      interval: 1s
      retries: 3
""".replace("SIDE_CHECK", SIDE_CHECK)


@pytest.fixture
def shared(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    variables = {"NET_IMAGE": testenv.image_v1, "SIDE_IMAGE": testenv.image_v1}
    with compose_up(app, tmp_path, testenv.engine_host, COMPOSE, variables) as project:
        yield project


def test_compose_v2s_shared_network_is_adopted_unchanged(
    shared: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    label = f"{L.COMPOSE_PROJECT}={shared.project}"
    net, side = assert_shared(engine, label, "v1")
    plan, observed = plan_of(h1, shared.manifest())
    assert [c.joined for c in observed[h1.name].of_service("side")] == [net]
    assert actions(plan) == {
        "net": ("unchanged", ("up to date",)),
        "side": ("unchanged", ("up to date",)),
    }

    shared.set_env(NET_IMAGE=testenv.image_v2, SIDE_IMAGE=testenv.image_v1)
    plan, _ = plan_of(h1, shared.manifest())
    assert str(plan.hosts[0].step("side").action) == "replace"
    deploy(h1, shared.manifest())
    net2, side2 = assert_shared(engine, label, "v2")
    assert net2 != net and side2 != side
    plan, _ = plan_of(h1, shared.manifest())
    assert not plan.changes, actions(plan)


def test_another_environment_of_the_same_compose_project_is_never_joined(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    """Two environments (or two apps) whose compose files give one project name: the
    deployer's containers of each carry that project's labels. side of "test", deployed
    alone, finds no net of its own: it must fail, not join the namespace of "prod"'s net
    (nor, by volumes_from, take its volumes)."""
    (tmp_path / "docker-compose.yml").write_text(f"name: {app}\n" + COMPOSE)
    (tmp_path / ".env").write_text(f"NET_IMAGE={testenv.image_v1}\nSIDE_IMAGE={testenv.image_v1}\n")
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\n"
        f"environments:\n  prod: {{}}\n  {ENV}: {{}}\n"
        "rollout:\n  health_timeout: 30s\n  healthy_after: 1s\n"
    )
    prod = load_manifest(tmp_path / "deploy.yml", "prod", {})
    deploy(h1, dataclasses.replace(prod, services=(prod.service("net"),)))
    prod_labels = [f"{L.APP}={app}", f"{L.ENVIRONMENT}=prod", f"{L.SERVICE}=net"]
    (prod_net,) = [c["Id"] for c in engine.api.containers(filters={"label": prod_labels})]

    m = load_manifest(tmp_path / "deploy.yml", ENV, {})
    plan, observed = plan_of(h1, m)
    (hp,) = plan.hosts
    steps = tuple(s for s in hp.steps if s.service == "side")
    plan = dataclasses.replace(plan, hosts=(dataclasses.replace(hp, steps=steps),))
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    joined = [
        c["Id"]
        for c in engine.api.containers(
            all=True, filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}={ENV}"]}
        )
        if engine.api.inspect_container(c["Id"])["HostConfig"]["NetworkMode"]
        == f"container:{prod_net}"
    ]
    assert joined == []
    assert r.error is not None
    assert "names the service net, which has no container on this host" in str(r.result.error)
