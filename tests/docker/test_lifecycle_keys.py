"""post_start / pre_stop hooks, label_file, use_api_socket and a network's priority on the
real engine, with Docker Compose v2 as the peer.

One app is started with ``docker compose up -d`` (v2): compose runs its post_start hook and
gives its container the labels of the label files, the engine's socket and the network of
the highest priority first. The deployer adopts it with nothing to do; each key changed
alone names itself; a deploy of a new image runs pre_stop in compose's container before it
stops and post_start in the new one, whose container carries every key again; a change of
any key replaces it naming that key; a post_start that fails rolls the deploy back (a
pre_stop that fails is logged, the stop goes on).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker import adopt
from deployer.docker.host import DockerHost
from deployer.manifest.model import Service
from deployer.rollout import PrintLog, Rollout
from tests.docker.compose_app import ENV, ComposeProject, actions, compose_up, exec_out, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  web:
    image: ${{WEB_IMAGE}}
    init: true
    labels: {{tier: front}}
    label_file: [./base.labels]
    use_api_socket: true
    volumes: ["{hooks}:/hooks"]
    post_start:
      - command: ["sh", "-c", '{post}']
        user: "1000:1000"
        working_dir: /hooks
        environment: {{MODE: warm}}
    pre_stop:
      - command: ["sh", "-c", "echo stop $$HOSTNAME >> /hooks/pre_stop.log"]
    networks:
      front: {{}}
      back: {{priority: 100}}
networks:
  front: {{}}
  back: {{}}
"""
# post_start, as the uid 1000 the hook runs as: its variable, directory, host and uid
POST = (
    '[ "$$MODE" != fail ] || exit 5; u=; '
    'while read k v r; do [ "$$k" = Uid: ] && u=$$v; done < /proc/self/status; '
    'echo "$$MODE $$(pwd) $$HOSTNAME $$u" >> post_start.log'
)
DEPLOY = (
    f"app: {{app}}\ncompose: [docker-compose.yml]\nenvironments:\n  {ENV}: {{{{}}}}\n"
    "policy:\n  allow: [docker-socket]\n"
    "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n"
)


def lines(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def keys_app(app: str, testenv: TestEnv, tmp_path: Path) -> Iterator[tuple[ComposeProject, Path]]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    os.chmod(hooks, 0o777)  # the hook's uid 1000 writes there
    path = tmp_path / "app"
    path.mkdir()
    (path / "base.labels").write_text("owner=shop\ntier=back\nsite=${owner}-site\n")
    compose = COMPOSE.format(hooks=hooks, post=POST)
    with compose_up(app, path, testenv.engine_host, compose, {"WEB_IMAGE": testenv.image_v1}) as cp:
        (path / "deploy.yml").write_text(DEPLOY.format(app=app))
        yield cp, hooks


def web_id(cp: ComposeProject, engine: docker.DockerClient) -> str:
    labels = [f"{L.COMPOSE_PROJECT}={cp.project}", f"{L.COMPOSE_SERVICE}=web"]
    (found,) = engine.api.containers(filters={"label": labels})
    return str(found["Id"])


def check_keys(c: dict[str, Any], cp: ComposeProject, engine: docker.DockerClient) -> None:
    """The container carries label_file's labels, the socket and the priority's order."""
    labels = c["Config"]["Labels"]
    assert (labels["owner"], labels["site"], labels["tier"]) == ("shop", "shop-site", "front")
    sockets = [m for m in c["Mounts"] if m["Destination"] == "/var/run/docker.sock"]
    assert [(m["Type"], m["Source"]) for m in sockets] == [("bind", "/var/run/docker.sock")]
    assert "DOCKER_CONFIG=/run/secrets/docker" in c["Config"]["Env"]
    # created on the network of the highest priority, the other connected after it
    assert c["HostConfig"]["NetworkMode"] == f"{cp.project}_back"
    assert sorted(c["NetworkSettings"]["Networks"]) == [f"{cp.project}_back", f"{cp.project}_front"]
    assert exec_out(engine, c["Id"], "ls", "/var/run/docker.sock") == "/var/run/docker.sock"


def check_post_start(hooks: Path, c: dict[str, Any]) -> None:
    """post_start ran in the container: as uid 1000 in /hooks, with its variable."""
    host = c["Config"]["Hostname"]
    assert ["warm", "/hooks", host, "1000"] in lines(hooks / "post_start.log")


def changes(svc: Service) -> list[tuple[str, Service]]:
    """Each key changed alone, as adoption of compose's container sees it."""
    back, front = [next(a for a in svc.networks if a.name == n) for n in ("back", "front")]
    return [
        ("labels", replace(svc, labels=(("owner", "shop"), ("tier", "front")))),
        ("use_api_socket", replace(svc, use_api_socket=False)),
        (
            "networks",
            replace(svc, networks=(replace(back, priority=0), replace(front, priority=200))),
        ),
    ]


def test_compose_v2_app_with_the_keys_is_adopted_and_each_key_is_compared(
    keys_app: tuple[ComposeProject, Path], h1: DockerHost, engine: docker.DockerClient
) -> None:
    cp, hooks = keys_app
    web = engine.api.inspect_container(web_id(cp, engine))
    check_keys(web, cp, engine)
    check_post_start(hooks, web)  # compose ran it

    m = cp.manifest()
    svc = m.service("web")
    plan, _ = plan_of(h1, m)
    assert actions(plan) == {"web": ("unchanged", ("up to date",))}
    image = engine.api.inspect_image(web["Image"])
    driver = engine.api.info()["LoggingDriver"]
    parts = adopt.config_parts(svc, web, image, cp.project, driver, m.engine_names())
    assert adopt.differing(parts, svc) == []
    for key, changed in changes(svc):
        parts = adopt.config_parts(changed, web, image, cp.project, driver, m.engine_names())
        assert adopt.differing(parts, changed) == [key], key


def rollout(h1: DockerHost, cp: ComposeProject, log: list[str]) -> Rollout:
    m = cp.manifest()
    plan, observed = plan_of(h1, m)
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(log.append))
    r.run()
    return r


def test_the_deployer_runs_the_hooks_and_its_container_keeps_every_key(
    keys_app: tuple[ComposeProject, Path],
    h1: DockerHost,
    engine: docker.DockerClient,
    testenv: TestEnv,
) -> None:
    cp, hooks = keys_app
    before = engine.api.inspect_container(web_id(cp, engine))
    cp.set_env(WEB_IMAGE=testenv.image_v2)
    log: list[str] = []
    r = rollout(h1, cp, log)
    assert r.error is None, r.result.error

    new = engine.api.inspect_container(web_id(cp, engine))
    assert new["Id"] != before["Id"] and new["State"]["Running"]
    check_keys(new, cp, engine)
    check_post_start(hooks, new)
    # pre_stop ran in compose's container before the deployer stopped it
    assert ["stop", before["Config"]["Hostname"]] in lines(hooks / "pre_stop.log")
    assert any("pre_stop[0] done" in ln for ln in log), log
    plan, _ = plan_of(h1, cp.manifest())
    assert not plan.changes, actions(plan)

    # each key changed in the files plans a replace naming it (the labels record them)
    compose_file = cp.path / "docker-compose.yml"
    original = compose_file.read_text()
    edits = [
        ("post_start", "working_dir: /hooks", "working_dir: /"),
        ("pre_stop", "echo stop", "echo stopping"),
        ("use_api_socket", "use_api_socket: true", "use_api_socket: false"),
        ("networks", "priority: 100", "priority: -1"),
    ]
    for key, old, changed in edits:
        compose_file.write_text(original.replace(old, changed))
        plan, _ = plan_of(h1, cp.manifest())
        assert actions(plan)["web"] == ("replace", (f"config changed: {key}",)), key
    compose_file.write_text(original)
    labels_file = cp.path / "base.labels"
    labels_file.write_text("owner=shop\nsite=other\n")
    plan, _ = plan_of(h1, cp.manifest())
    assert actions(plan)["web"] == ("replace", ("config changed: labels",))
    labels_file.write_text("owner=shop\ntier=back\nsite=${owner}-site\n")

    # a post_start that fails fails the rollout: rolled back, the container before serves;
    # the pre_stop that failed before it was logged and the stop went on
    compose_file.write_text(
        original.replace("echo stop $$HOSTNAME >> /hooks/pre_stop.log", "exit 4").replace(
            "MODE: warm", "MODE: fail"
        )
    )
    log.clear()
    failed = rollout(h1, cp, log)
    assert failed.error is not None
    assert "post_start hook [0]" in failed.result.error, failed.result.error
    assert any("pre_stop[0] exited with code 4; stopping it anyway" in ln for ln in log), log
    after = engine.api.inspect_container(web_id(cp, engine))
    assert after["Id"] == new["Id"] and after["State"]["Running"]
