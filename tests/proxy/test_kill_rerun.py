"""Faults during the rollout of a public service, on the real engine and a real edge
proxy (one replica): the deploy killed (SIGKILL) or cancelled (SIGTERM) at a step of the
replica's rollout, the proxy stopped during a deploy or removed between two, the new
container exiting once it passed its healthcheck. After each: what the public route
answers, and that the next deploy converges (one container per replica, the route on
it, no leftovers).

The fault comes when the deploy prints the log line of its step, never after a sleep.
The plain start-first service (network alias) under the same kills:
tests/commands/test_interrupted.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from bench.proxy_probe import get
from deployer import labels as L
from deployer.docker.host import connect_host
from deployer.errors import EXIT_BLOCKED, EXIT_OK, EXIT_ROLLED_BACK
from deployer.proxy import routes as R
from tests.cli import signal_at, start_deploy
from tests.conftest import Cleanup
from tests.proxy.conftest import Edge, free_port, make_edge
from tests.proxy.test_edge import deploy, wait_body, write_manifest
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_name() -> str:
    return "fx" + secrets.token_hex(4)


def running(engine: docker.DockerClient, app: str) -> list[str]:
    found = engine.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}=test"]})
    return sorted(
        c["Names"][0].lstrip("/")
        for c in found
        if (c.get("Labels") or {}).get(L.SERVICE)
        and (c.get("Labels") or {}).get(L.ROLE) not in (L.ROLE_LOCK, L.ROLE_TASK)
    )


def cli(manifest: Path, *args: str, image: str = "") -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "GITLAB"))}
    env.pop("DOCKER_HOST", None)
    env["WEB_IMAGE"] = image
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", *args, "-f", str(manifest), "--env", "test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def upstreams(engine: docker.DockerClient, edge: Edge, app: str) -> dict[str, str]:
    """This app's upstream files in the proxy: path -> address."""
    rdir = R.upstream_dir(R.route_id(app, "test", "web"))
    code, out = engine.containers.get(edge.name).exec_run(
        ["sh", "-c", f'for f in {rdir}/*; do [ -f "$f" ] && echo "$f $(cat "$f")"; done']
    )
    assert code == 0, out
    return dict(line.split(" ", 1) for line in out.decode().splitlines() if " " in line)


def address_of(engine: docker.DockerClient, name: str, app: str) -> str:
    c = engine.containers.get(name)
    return str(c.attrs["NetworkSettings"]["Networks"][f"{app}-test"]["IPAddress"]) + ":8080"


def converged(
    engine: docker.DockerClient,
    edge: Edge,
    app: str,
    manifest: Path,
    public: str,
    want: str,
    image: str,
) -> None:
    """One container per replica, the route on it and answering ``want``, no leftovers."""
    assert running(engine, app) == [f"{app}-test-web-1"]
    assert engine.containers.get(f"{app}-test-web-1").status == "running"
    assert upstreams(engine, edge, app) == {
        R.upstream_file(R.route_id(app, "test", "web"), 1): address_of(
            engine, f"{app}-test-web-1", app
        )
    }
    assert get(edge.address, public) == (200, want)
    code, js = cli(manifest, "status", "--format", "json", image=image)
    assert code == EXIT_OK, js
    assert json.loads(js)["hosts"][0]["leftovers"] == [], js


KILL_AT = {
    "started": r"started the new container beside the old one",
    "healthy": r"web-1: healthy after",  # the switch is journalled next, then made
    "switched": r"edge proxy: .* replica 1 now ",  # switched and drained, old still runs
    "stopped": r"web-1: switched",  # the old one stopped, the release not recorded yet
}


@dataclass(frozen=True)
class Proxied:
    """The app deployed at v1 behind its own edge proxy (one replica)."""

    app: str
    edge: Edge
    manifest: Path
    public: str
    engine: docker.DockerClient
    testenv: TestEnv

    def converged(self, want: str, image: str) -> None:
        converged(self.engine, self.edge, self.app, self.manifest, self.public, want, image)


@pytest.fixture
def proxied(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    cleanup: Cleanup,
    proxy_image: str,
) -> Proxied:
    """An edge proxy on a port nothing listens on (runs of the suite side by side never
    share one) and the app deployed at v1 behind it (one replica)."""
    edge = make_edge(engine, cleanup, app, free_port(), proxy_image)
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public, replicas=1)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    wait_body(edge, public, "v1")
    return Proxied(app, edge, manifest, public, engine, testenv)


@pytest.mark.parametrize("point", ["healthy", "stopped"])
def test_killed_deploy_then_rerun(point: str, proxied: Proxied) -> None:
    """SIGKILL before the switch and after the old container stopped: the p.public route
    answers right after; the rerun is refused on the dead deploy's lock and names
    `deployer unlock`; after it, the rerun converges and removes the killed deploy's
    container."""
    p = proxied
    code, killed = signal_at(p.manifest, p.testenv.image_v2, KILL_AT[point])
    assert code == -signal.SIGKILL, killed
    assert get(p.edge.address, p.public) == (200, "v1" if point == "healthy" else "v2"), killed

    code, out = deploy(p.manifest, p.testenv.image_v2)
    assert code == EXIT_BLOCKED, out
    assert "`deployer unlock` breaks its lock" in out, out
    code, out = cli(p.manifest, "unlock", "--force", image=p.testenv.image_v2)
    assert code == EXIT_OK, out
    code, out = deploy(p.manifest, p.testenv.image_v2)
    assert code == EXIT_OK, out
    if point == "healthy":
        assert "cleanup: " in out and "removed" in out, out
    p.converged("v2", p.testenv.image_v2)


def test_cancelled_after_the_switch_the_route_comes_back(proxied: Proxied) -> None:
    """SIGTERM (a cancelled job) once the route names the new container: rolled back, the
    route on the old container again, the new one gone, the lock released."""
    p = proxied
    code, out = signal_at(p.manifest, p.testenv.image_v2, KILL_AT["switched"], signal.SIGTERM)
    assert code == EXIT_ROLLED_BACK, out
    assert "undone: route of web replica 1" in out, out
    p.converged("v1", p.testenv.image_v1)
    code, out = cli(p.manifest, "unlock", image=p.testenv.image_v1)
    assert code == EXIT_OK and "no deploy lock is held" in out, out


def test_the_proxy_stopped_during_a_deploy(proxied: Proxied) -> None:
    """The proxy killed by someone between its preparation and the switch: the deploy
    says so and rolls back (nothing was switched: nothing to put back in a proxy that
    does not run); the next deploy starts the proxy again and converges. It was: "exec in
    <name> failed: Container ... is not running", and the rollback reported as failed
    (exit 5) for want of undoing a switch that never happened."""
    p = proxied
    code, out = act_at(
        p.manifest,
        p.testenv.image_v2,
        KILL_AT["started"],
        lambda: p.engine.containers.get(p.edge.name).kill(),
    )
    assert code == EXIT_ROLLED_BACK, out
    assert f"the edge proxy {p.edge.name} does not run: it is exited" in out, out
    assert running(p.engine, p.app) == [f"{p.app}-test-web-1"]
    code, out = deploy(p.manifest, p.testenv.image_v2)
    assert code == EXIT_OK, out
    assert "started again" in out, out
    p.converged("v2", p.testenv.image_v2)


def test_a_proxy_removed_by_hand_is_made_again(proxied: Proxied) -> None:
    p = proxied
    p.engine.containers.get(p.edge.name).remove(force=True)
    code, out = deploy(p.manifest, p.testenv.image_v2)
    assert code == EXIT_OK, out
    p.converged("v2", p.testenv.image_v2)


@pytest.mark.parametrize("point", ["healthy", "switched"])
def test_a_new_container_that_exits_after_its_healthcheck(point: str, proxied: Proxied) -> None:
    """Killed once healthy, before the switch: the switch fails at once saying so (it
    was: the switch retried for the whole health timeout, then blamed the route's
    port). Killed after the switch: the watch after the switch rolls back. Either way
    the route is on the old container again."""
    p = proxied

    def kill_new() -> None:
        name = next(n for n in running(p.engine, p.app) if "--next-" in n)
        p.engine.containers.get(name).kill()

    code, out = act_at(p.manifest, p.testenv.image_v2, KILL_AT[point], kill_new)
    assert code == EXIT_ROLLED_BACK, out
    if point == "healthy":
        assert "the new container is exited (code 137) after it passed its healthcheck" in out
    else:
        assert "after the switch (update_config.monitor)" in out, out
    p.converged("v1", p.testenv.image_v1)


def act_at(manifest: Path, image: str, pattern: str, act: Callable[[], None]) -> tuple[int, str]:
    """Run a deploy in its own process, call ``act`` (once) when it prints ``pattern``;
    its exit code and its whole output."""
    proc = start_deploy(manifest, image)
    assert proc.stdout is not None
    seen: list[str] = []
    done = False
    for line in proc.stdout:
        seen.append(line)
        if not done and re.search(pattern, line):
            act()
            done = True
    proc.wait(timeout=120)
    assert done, "the deploy ended before the line:\n" + "".join(seen)
    return proc.returncode, "".join(seen)


def test_rollback_after_a_deploy_killed_after_its_switch(proxied: Proxied) -> None:
    """Releases v1 then v2; a deploy of v1 killed once the old container stopped: v1
    runs, never recorded. `deployer rollback` goes back to the last release recorded
    (v2, what ran before the killed deploy). It went to the one before it (v1): the
    killed deploy's version stayed, rolled back to itself."""
    p = proxied
    code, out = deploy(p.manifest, p.testenv.image_v2)
    assert code == EXIT_OK, out
    code, killed = signal_at(p.manifest, p.testenv.image_v1, KILL_AT["stopped"])
    assert code == -signal.SIGKILL, killed
    assert get(p.edge.address, p.public) == (200, "v1"), killed
    code, out = cli(p.manifest, "unlock", "--force", image=p.testenv.image_v1)
    assert code == EXIT_OK, out
    code, out = cli(p.manifest, "rollback", image=p.testenv.image_v1)
    assert code == EXIT_OK, out
    assert "runs a release that was never recorded" in out, out
    p.converged("v2", p.testenv.image_v2)


def test_a_deploy_waiting_for_the_proxy_lock_says_so(proxied: Proxied, cleanup: Cleanup) -> None:
    """The proxy lock left by a deploy killed while it held it (its lease: 25 s here, 300 s
    in a deploy): the next deploy says what it waits for, then goes on once it expired.
    It waited without a word."""
    p = proxied
    host = connect_host(p.testenv.engine_host, {})
    lease = host.acquire_lock(f"edge/{p.edge.name}", "a killed deploy", 25.0)
    cleanup.later(lambda: host.release_lock(lease))
    code, out = deploy(p.manifest, p.testenv.image_v2)
    assert code == EXIT_OK, out
    assert (
        f"edge proxy: waiting for its lock (another deploy of edge/{p.edge.name} holds the "
        "lock: a killed deploy"
    ) in out, out
    p.converged("v2", p.testenv.image_v2)
