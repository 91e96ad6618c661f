"""``pid: service:NAME`` and ``ipc: service:NAME`` (a debugger or profiler sidecar, a
process sharing memory segments with the app), on the real engine with Docker Compose v2
as the peer: the dependent's container joins the PID and IPC namespaces of NAME's
container (``container:<id>``, as compose sends it), NAME starting first; a deploy that
replaces NAME replaces the dependent too, in the new namespaces; a rollback brings the old
ones back together; compose's app is adopted with nothing to do. compose does not make
NAME's IPC namespace shareable: the engine (private by default since 20.10) refuses the
join at start, so the manifest must say ``ipc: shareable`` on NAME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.errors import InvalidInput
from deployer.manifest import load_manifest
from deployer.manifest.model import Manifest
from deployer.result import Outcome
from deployer.rollout import PrintLog, Rollout
from tests import composev2
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

# app serves on 8080 in its own network; side serves on 8081 in another, and sees app's
# httpd among its processes only in app's PID namespace
SIDE_CHECK = "ps | grep -q '[h]ttpd -f -p 8080'"


def write_manifest(path: Path, app: str, main: str, side: str) -> Manifest:
    (path / "deploy.yml").write_text(
        f"app: {app}\nenvironments:\n  {ENV}: {{}}\n"
        "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
        "services:\n"
        f"  main:\n    image: {main}\n    init: true\n    ipc: shareable\n"
        f"  side:\n    image: {side}\n    init: true\n"
        "    pid: service:main\n    ipc: service:main\n"
        "    environment: {PORT: '8081'}\n"
        f'    healthcheck: {{test: ["CMD-SHELL", "{SIDE_CHECK}"], interval: 1s, retries: 3}}\n'
    )
    return load_manifest(path / "deploy.yml", ENV, {})


def running(engine: docker.DockerClient, label: str, service: str) -> list[str]:
    key = L.SERVICE if label.startswith(L.APP) else L.COMPOSE_SERVICE
    found = engine.api.containers(filters={"label": [label, f"{key}={service}"]})
    return [str(c["Id"]) for c in found]


def ns(engine: docker.DockerClient, cid: str, kind: str) -> str:
    """The namespace of ``kind`` (pid, ipc) the container's processes run in."""
    return exec_out(engine, cid, "ls", "-l", f"/proc/self/ns/{kind}").rsplit(" ", 1)[-1]


def assert_joined(engine: docker.DockerClient, label: str) -> tuple[str, str]:
    """side runs in main's PID and IPC namespaces (and not in its network); (main, side)."""
    (main,) = running(engine, label, "main")
    (side,) = running(engine, label, "side")
    host = engine.api.inspect_container(side)["HostConfig"]
    assert (host["PidMode"], host["IpcMode"]) == (f"container:{main}",) * 2
    for kind in ("pid", "ipc"):
        assert ns(engine, side, kind) == ns(engine, main, kind)
    assert ns(engine, side, "net") != ns(engine, main, "net")
    assert "httpd -f -p 8080" in exec_out(engine, side, "ps")  # main's server, seen by side
    return main, side


def test_the_dependent_joins_the_namespaces_and_is_replaced_with_them(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    label = f"{L.APP}={app}"
    m = write_manifest(tmp_path, app, testenv.image_v1, testenv.image_v1)
    assert m.service("side").depends_on == (("main", "service_started"),)
    plan, _ = plan_of(h1, m)
    assert plan.waves == (("main",), ("side",))
    deploy(h1, m)
    main, side = assert_joined(engine, label)

    # a new image of main: its namespaces go with its old container, side follows it
    m = write_manifest(tmp_path, app, testenv.image_v2, testenv.image_v1)
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {
        "main": ("replace", ("new image digest",)),
        "side": (
            "replace",
            (
                "shares the PID namespace of main, which is replaced (its containers join "
                "the new one)",
            ),
        ),
    }
    deploy(h1, m)
    main2, side2 = assert_joined(engine, label)
    assert main2 != main and side2 != side
    plan, _ = plan_of(h1, m)
    assert not plan.changes, actions(plan)

    # main replaced again, side's new container crashes: the rollback brings the old main
    # back, and side's old container in its namespaces
    m = write_manifest(tmp_path, app, testenv.image_v1, testenv.image_crash)
    plan, observed = plan_of(h1, m)
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.result.outcome is Outcome.ROLLED_BACK, r.result.error
    assert assert_joined(engine, label) == (main2, side2)


def test_ipc_of_a_service_that_is_not_shareable_is_refused_at_its_line(
    app: str, tmp_path: Path
) -> None:
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\nenvironments:\n  {ENV}: {{}}\n"
        "services:\n"
        "  main:\n    image: busybox\n"
        "  side:\n    image: busybox\n    ipc: service:main\n"
    )
    with pytest.raises(InvalidInput) as e:
        load_manifest(tmp_path / "deploy.yml", ENV, {})
    text = str(e.value)
    assert "deploy.yml:9" in text and "services.side.ipc" in text, text
    assert "add `ipc: shareable` to main" in text, text


COMPOSE = """\
services:
  main:
    image: ${MAIN_IMAGE}
    init: true
    ipc: shareable
  side:
    image: ${SIDE_IMAGE}
    init: true
    pid: service:main
    ipc: service:main
    environment: {PORT: "8081"}
    healthcheck:
      test: ["CMD-SHELL", "SIDE_CHECK"]
      interval: 1s
      retries: 3
""".replace("SIDE_CHECK", SIDE_CHECK)


@pytest.fixture
def shared(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[ComposeProject]:
    variables = {"MAIN_IMAGE": testenv.image_v1, "SIDE_IMAGE": testenv.image_v1}
    with compose_up(app, tmp_path, testenv.engine_host, COMPOSE, variables) as project:
        yield project


def test_compose_v2s_shared_namespaces_are_adopted_unchanged(
    shared: ComposeProject, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    label = f"{L.COMPOSE_PROJECT}={shared.project}"
    main, side = assert_joined(engine, label)  # what compose made
    plan, _ = plan_of(h1, shared.manifest())
    assert actions(plan) == {
        "main": ("unchanged", ("up to date",)),
        "side": ("unchanged", ("up to date",)),
    }

    shared.set_env(MAIN_IMAGE=testenv.image_v2, SIDE_IMAGE=testenv.image_v1)
    deploy(h1, shared.manifest())
    main2, side2 = assert_joined(engine, label)
    assert main2 != main and side2 != side
    plan, _ = plan_of(h1, shared.manifest())
    assert not plan.changes, actions(plan)


def test_compose_v2_refuses_to_start_a_join_of_a_private_ipc_namespace(
    app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    """The evidence for the manifest's refusal above: compose does not make the target's
    IPC namespace shareable, and the engine refuses the join."""
    (tmp_path / "compose.yaml").write_text(
        f"name: {app}\nservices:\n"
        f"  main: {{image: {testenv.image_v1}, init: true}}\n"
        f"  side: {{image: {testenv.image_v1}, init: true, ipc: 'service:main'}}\n"
    )
    try:
        proc = composev2.run(
            ["up", "-d"], cwd=tmp_path, docker_host=testenv.engine_host, check=False
        )
        assert proc.returncode != 0
        assert "non-shareable IPC" in proc.stderr, proc.stderr
    finally:
        composev2.run(
            ["down", "-t", "1"], cwd=tmp_path, docker_host=testenv.engine_host, check=False
        )
