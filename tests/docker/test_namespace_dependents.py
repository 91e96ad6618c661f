"""The dependents of ``network_mode`` / ``pid`` / ``ipc: service:NAME`` where a deploy does
not end as planned, on the real engine, with compose-style apps (a compose file and a
deploy.yml naming it):

- a deploy killed (SIGKILL) right after NAME's switch leaves the dependent in the namespace
  of NAME's old container; the rerun replaces it, joining NAME's current container. The
  listing names the network mode only: PID and IPC joins are read by inspect. A
  PID-joined dependent dies with the old container's first process (the kernel ends a
  PID namespace with it): it is replaced as "not running" too. Killed right after NAME's
  new container started (before the switch), the rerun replaces NAME and the dependent
  with it.
- a rollback that restarts the dependent's old container to follow NAME's old one back
  runs its hooks, as ``docker compose restart`` does: ``pre_stop`` while it still runs (in
  a PID namespace it died already), ``post_start`` after the start.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.manifest import load_manifest
from deployer.result import Outcome
from deployer.rollout import PrintLog, Rollout
from tests.cli import cli, signal_at
from tests.docker.compose_app import ENV, deploy, exec_out, plan_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

DEPLOY = """\
app: {app}
compose: [docker-compose.yml]
environments:
  {env}:
    hosts: ["{host}"]
rollout:
  health_timeout: 60s
  healthy_after: 1s
  drain: 0s
  lock_ttl: 10s
"""

COMPOSE = """\
name: {app}
services:
  main:
    image: {main}
    init: true
    ipc: shareable
  side:
    image: {side}
    init: true
{joins}
    environment: {{PORT: "8081", MARK: "{mark}"}}
    volumes: ["{hooks}:/hooks"]
    deploy: {{update_config: {{order: start-first}}}}  # beside its writable bind
    healthcheck:
      test: ["CMD-SHELL", "[ \\"$$MARK\\" != bad ]"]
      interval: 1s
      retries: 2
    post_start:
      - command: ["sh", "-c", "echo post_start side $$MARK >> /hooks/log"]
    pre_stop:
      - command: ["sh", "-c", "echo pre_stop side $$MARK >> /hooks/log"]
"""

FIELD = {"network_mode": "NetworkMode", "pid": "PidMode", "ipc": "IpcMode"}
NS = {"network_mode": "net", "pid": "pid", "ipc": "ipc"}


def write(
    path: Path,
    app: str,
    testenv: TestEnv,
    joins: tuple[str, ...],
    main: str = "${WEB_IMAGE}",
    mark: str = "1",
) -> Path:
    hooks = path / "hooks"  # outside the app's folder: bound as it is, not shipped
    hooks.mkdir(exist_ok=True)
    os.chmod(hooks, 0o777)
    (path / "app").mkdir(exist_ok=True)
    (path / "app" / "docker-compose.yml").write_text(
        COMPOSE.format(
            app=app,
            main=main,
            side=testenv.image_v1,
            joins="\n".join(f"    {key}: service:main" for key in joins),
            mark=mark,
            hooks=hooks,
        )
    )
    f = path / "app" / "deploy.yml"
    f.write_text(DEPLOY.format(app=app, env=ENV, host=testenv.engine_host))
    return f


def current(engine: docker.DockerClient, app: str, service: str) -> str:
    """The id of the service's one running current container."""
    found = engine.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}"]})
    (cid,) = [c["Id"] for c in found if "--" not in c["Names"][0]]
    return str(cid)


def namespace(engine: docker.DockerClient, cid: str, kind: str) -> str:
    """The namespace of ``kind`` the container's first process runs in."""
    return exec_out(engine, cid, "ls", "-l", f"/proc/1/ns/{kind}").rsplit(" ", 1)[-1]


def assert_joined(engine: docker.DockerClient, app: str, joins: tuple[str, ...]) -> str:
    """side runs in the namespaces of main's current container; side's id."""
    main, side = current(engine, app, "main"), current(engine, app, "side")
    host = engine.api.inspect_container(side)["HostConfig"]
    for key in joins:
        assert host[FIELD[key]] == f"container:{main}", (key, host[FIELD[key]], main)
        assert namespace(engine, side, NS[key]) == namespace(engine, main, NS[key]), key
    return side


KILL_AT = {
    "started": "main-1: started the new container beside the old one",
    "switched": "main-1: switched",
}


@pytest.mark.parametrize(
    ("point", "joins"),
    [("switched", ("ipc",)), ("switched", ("pid", "ipc")), ("started", ("pid", "ipc"))],
)
def test_a_rerun_after_a_kill_rejoins_the_dependent(
    point: str,
    joins: tuple[str, ...],
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    project = write(tmp_path, app, testenv, joins)

    def run(image: str, *argv: str) -> tuple[int, str]:
        monkeypatch.setenv("WEB_IMAGE", image)
        return cli(argv[0], "-f", str(project), "--env", ENV, *argv[1:])

    code, out = run(testenv.image_v1, "deploy")
    assert code == 0, out
    main1 = current(engine, app, "main")
    side1 = assert_joined(engine, app, joins)

    # killed the moment main's new container started beside the old one, or took the
    # name (the old one stopped): side's step never ran
    code, out = signal_at(project, testenv.image_v2, f"{app}-{ENV}-{KILL_AT[point]}", deadline=180)
    assert code == -signal.SIGKILL, out
    switched = point == "switched"
    assert (current(engine, app, "main") != main1) is switched
    if switched and "pid" in joins:  # killed with the first process of main's old container
        engine.api.wait(side1, timeout=30)
    left = engine.api.inspect_container(side1)
    assert left["HostConfig"]["IpcMode"] == f"container:{main1}"
    assert left["State"]["Running"] is not (switched and "pid" in joins), left["State"]

    code, out = run(testenv.image_v2, "plan")
    assert code == 0, out
    if not switched:
        assert "shares the PID namespace of main, which is replaced" in out, out
    elif "pid" in joins:
        assert "1 container(s) not running" in out, out
    else:
        why = "shares the IPC namespace of a container of main that is no longer its current one"
        assert why in out, out
    code, out = run(testenv.image_v2, "deploy", "--wait-lock", "120s")
    assert code == 0, out
    side2 = assert_joined(engine, app, joins)
    assert side2 != side1 and current(engine, app, "main") != main1
    code, out = run(testenv.image_v2, "plan")
    assert code == 0 and "No changes" in out, out


@pytest.mark.parametrize("joins", [("network_mode",), ("pid", "ipc")])
def test_a_rollback_runs_the_hooks_of_the_dependent_it_restarts(
    joins: tuple[str, ...],
    app: str,
    h1: DockerHost,
    engine: docker.DockerClient,
    testenv: TestEnv,
    tmp_path: Path,
) -> None:
    log = tmp_path / "hooks" / "log"
    f = write(tmp_path, app, testenv, joins, main=testenv.image_v1)
    deploy(h1, load_manifest(f, ENV, {}))
    side = assert_joined(engine, app, joins)
    assert log.read_text().splitlines() == ["post_start side 1"]
    log.write_text("")

    # main replaced, side's new container unhealthy: the rollback brings main's old
    # container back, and side's old one (restarted) into its namespaces
    write(tmp_path, app, testenv, joins, main=testenv.image_v2, mark="bad")
    m = load_manifest(f, ENV, {})
    plan, observed = plan_of(h1, m)
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.result.outcome is Outcome.ROLLED_BACK, r.result.error
    assert assert_joined(engine, app, joins) == side
    # the new one: started, stopped by the rollback; the old one: in a PID namespace it
    # died with main's old container (no pre_stop to run), else stopped after its pre_stop
    old_stop = [] if "pid" in joins else ["pre_stop side 1"]
    assert log.read_text().splitlines() == [
        "post_start side bad",
        "pre_stop side bad",
        *old_stop,
        "post_start side 1",
    ]
