"""post_start / pre_stop hooks where docker compose runs them beyond a deploy, on the real
engine: `deployer down` runs each running container's pre_stop, then stops it gracefully
(dependents first), as `docker compose down`; a pre_stop that fails is logged (its output
masked) and the stop goes on; `deployer restart` runs pre_stop in the old container and
post_start in the new one; a rollback that starts an old container again runs its
post_start, as `docker compose start` does, and says so when that hook fails; a rollback
runs a new container's pre_stop before it stops it (stop-first and start-first)."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.cli import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

# web depends on db; both log their hooks and their SIGTERM to /hooks/log. db's pre_stop
# fails (and prints its secret) when /hooks/fail-pre exists; web's post_start fails when
# /hooks/fail-post exists; web's health fails when MARK is "bad". web publishes a fixed host
# port: it rolls stop-first, so a failed deploy starts the old container again.
MANIFEST = """\
app: {app}
environments:
  prod:
    hosts: ["{host}"]
services:
  db:
    image: {base}
    init: true
    stop_grace_period: 5s
    command: ["sh", "-c", "{loop}"]
    volumes: ["{hooks}:/hooks"]
    pre_stop:
      - command:
          - sh
          - -c
          - >-
            [ ! -e /hooks/fail-pre ] || {{ echo "cannot flush token=$$TOKEN"; exit 3; }};
            echo pre_stop db $$HOSTNAME >> /hooks/log
        environment: {{TOKEN: "hook-secret-{app}"}}
  web:
    image: {base}
    init: true
    stop_grace_period: 5s
    command: ["sh", "-c", "{loop}"]
    environment: {{MARK: "{mark}"}}
    ports: ["127.0.0.1:{port}:8080"]
    volumes: ["{hooks}:/hooks"]
    depends_on: [db]
    healthcheck:
      test: ["CMD-SHELL", "[ \\"$$MARK\\" != bad ]"]
      interval: 500ms
      retries: 2
    post_start:
      - command:
          - sh
          - -c
          - "[ ! -e /hooks/fail-post ] || exit 7; echo post_start web $$HOSTNAME >> /hooks/log"
    pre_stop:
      - command: ["sh", "-c", "echo pre_stop web $$HOSTNAME >> /hooks/log"]
rollout:
  health_timeout: 20s
  healthy_after: 1s
  drain: 0s
"""
PORTS = '    ports: ["127.0.0.1:{port}:8080"]\n'
# PID 2 under init: a SIGTERM (a graceful stop, not a kill) is written down before it exits
LOOP = "trap 'echo term $$HOSTNAME >> /hooks/log; exit 0' TERM; while true; do sleep 0.2; done"


class App:
    def __init__(self, app: str, path: Path, hooks: Path, testenv: TestEnv, port: int) -> None:
        self.app, self.path, self.hooks = app, path, hooks
        self.testenv, self.port = testenv, port

    def write(self, mark: str = "1", ports: bool = True) -> None:
        start_first = "    deploy: {{update_config: {{order: start-first}}}}\n"  # beside its bind
        text = MANIFEST if ports else MANIFEST.replace(PORTS, start_first)
        self.path.write_text(
            text.format(
                app=self.app,
                host=self.testenv.engine_host,
                base=self.testenv.image_base,
                hooks=self.hooks,
                loop=LOOP,
                mark=mark,
                port=self.port,
            )
        )

    def run(self, *argv: str) -> tuple[int, str]:
        return cli(argv[0], "-f", str(self.path), "--env", "prod", *argv[1:])

    def log(self) -> list[str]:
        """The hooks' and the SIGTERMs' lines since the last read (the log is emptied)."""
        path = self.hooks / "log"
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        path.write_text("")
        return lines


def current(engine: docker.DockerClient, app: str, service: str) -> str:
    """The hostname (12 characters of the id) of the service's one current container."""
    (c,) = [
        c
        for c in engine.api.containers(
            filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}"]}
        )
        if "--" not in c["Names"][0]
    ]
    return str(c["Id"][:12])


@pytest.fixture
def hooked(app: str, testenv: TestEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST", "CI_JOB_URL"):
        monkeypatch.delenv(var, raising=False)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    os.chmod(hooks, 0o777)
    import socket

    with socket.socket() as s:  # a free port of this machine for web's fixed host port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "app").mkdir()  # hooks/ outside the checkout: bound as it is, not shipped
    a = App(app, tmp_path / "app" / "deploy.yml", hooks, testenv, port)
    a.write()
    return a


def test_down_runs_pre_stop_then_stops_gracefully_dependents_first(
    hooked: App, engine: docker.DockerClient
) -> None:
    code, out = hooked.run("deploy")
    assert code == 0, out
    web, db = current(engine, hooked.app, "web"), current(engine, hooked.app, "db")
    assert hooked.log() == [f"post_start web {web}"]
    (hooked.hooks / "fail-pre").write_text("")  # db's pre_stop fails: the stop goes on

    code, out = hooked.run("down")
    assert code == 0, out
    # as `docker compose down`: web (the dependent) first, its pre_stop before its SIGTERM
    assert hooked.log() == [f"pre_stop web {web}", f"term {web}", f"term {db}"], out
    assert "pre_stop[0] done" in out
    assert "pre_stop[0] exited with code 3; stopping it anyway" in out
    assert "cannot flush token=" in out and f"hook-secret-{hooked.app}" not in out
    assert not engine.api.containers(all=True, filters={"label": f"{L.APP}={hooked.app}"})


def test_restart_and_a_rollback_run_the_hooks_of_what_they_start_and_stop(
    hooked: App, engine: docker.DockerClient
) -> None:
    code, out = hooked.run("deploy")
    assert code == 0, out
    first = current(engine, hooked.app, "web")
    hooked.log()

    # `docker compose restart`: pre_stop before the stop, post_start after the start
    code, out = hooked.run("restart", "web")
    assert code == 0, out
    second = current(engine, hooked.app, "web")
    assert second != first
    assert hooked.log() == [f"pre_stop web {first}", f"term {first}", f"post_start web {second}"]

    # a failed deploy (stop-first) starts the old container again: its post_start runs
    hooked.write(mark="bad")
    code, out = hooked.run("deploy")
    assert code == 1, out
    assert current(engine, hooked.app, "web") == second
    lines = hooked.log()
    assert len(lines) == 6, lines
    new = lines[2].split()[-1]
    assert lines == [
        f"pre_stop web {second}",
        f"term {second}",
        f"post_start web {new}",  # the new container, then unhealthy
        f"pre_stop web {new}",  # the rollback stops it as a stop does
        f"term {new}",
        f"post_start web {second}",  # and starts the old one again as a start does
    ]

    # its post_start failing then: the rollback says so (the container runs again)
    (hooked.hooks / "fail-post").write_text("")
    code, out = hooked.run("deploy")
    assert code == 5, out
    assert "could not undo restart" in out and "post_start hook [0]" in out, out
    assert "exited with code 7" in out
    state = engine.api.inspect_container(current(engine, hooked.app, "web"))["State"]
    assert state["Running"]


def test_a_rollback_of_a_start_first_service_runs_the_new_containers_pre_stop(
    hooked: App, engine: docker.DockerClient
) -> None:
    hooked.write(ports=False)  # no fixed host port, order start-first: web rolls so
    code, out = hooked.run("deploy")
    assert code == 0, out
    old = current(engine, hooked.app, "web")
    hooked.log()

    hooked.write(mark="bad", ports=False)
    code, out = hooked.run("deploy")
    assert code == 1, out
    assert current(engine, hooked.app, "web") == old
    lines = hooked.log()
    assert len(lines) == 3, lines
    new = lines[0].split()[-1]
    # the new container, unhealthy, is stopped after its pre_stop before it is removed; the
    # old one was never stopped
    assert new != old and lines == [f"post_start web {new}", f"pre_stop web {new}", f"term {new}"]
