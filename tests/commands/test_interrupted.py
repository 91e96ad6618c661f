"""A deploy killed (SIGKILL) at a chosen step, then run again, on the real engine.

The killed deploy is a real `python -m deployer deploy` process; it is killed the moment
it prints the log line of its step (pull, a new container started, the health wait, the
drain, retention), so the kill point does not depend on the machine's speed. A probe on
the app's network asks the service alias every 10 ms; once the rerun has reported
success, no request may reach a version that should no longer serve, `status` must list
every running container of the app, and nothing may be left over.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import docker
import pytest

from bench.rollout_probe import ensure_base, wait_serving
from deployer import labels as L
from deployer.engine import NEXT_MARK, default_network
from tests.cli import cli, signal_at
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


MANIFEST = """\
app: {app}
environments:
  test:
    hosts: ["{host}"]
services:
  web:
    image: ${{WEB_IMAGE}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 500ms
      timeout: 5s
      retries: 3
    deploy:
      replicas: 2
      update_config:
        monitor: 1s
rollout:
  health_timeout: 60s
  healthy_after: 1s
  drain: 4s
  lock_ttl: 10s
  keep_releases: 2
"""

# Every response after the marker: "after <body>" (empty body: the request failed).
PROBE = r"""
n=0
while [ $n -lt 30000 ] && [ ! -f /tmp/stop ]; do
  v=$(timeout 3 wget -q -O - {url} 2>/dev/null)
  [ -f /tmp/after ] && echo "after $v"
  n=$((n + 1)); sleep 0.01
done
echo "requests=$n"
"""

KILL_AT = {
    "pull": r"== Pulling images",
    "after-start": r"started the new container beside the old one",
    "health-wait": r"waiting until healthy",
    "drain": r"draining the old container",
    "retention": r"release \S+ recorded on",
}


@pytest.fixture
def project(app: str, testenv: TestEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST.format(app=app, host=testenv.engine_host))
    return f


def deploy(project: Path, image: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("WEB_IMAGE", image)
    return cli("deploy", "-f", str(project), "--env", "test", "--wait-lock", "120s")


def kill_at(project: Path, image: str, pattern: str) -> str:
    """Run a deploy in its own process and SIGKILL it when it prints ``pattern``."""
    code, out = signal_at(project, image, pattern, deadline=180)
    assert code == -signal.SIGKILL, out
    return out


class Probe:
    def __init__(self, engine: docker.DockerClient, app: str, image: str) -> None:
        self.engine = engine
        url = "http://web:8080/version"
        net = default_network(app, "test")
        wait_serving(engine, url, net, image=image)
        created = engine.api.create_container(
            image,
            ["sh", "-c", PROBE.replace("{url}", url)],
            labels={L.APP: app},
            host_config=engine.api.create_host_config(network_mode=net),
        )
        self.cid: str = created["Id"]
        engine.api.start(self.cid)

    def _exec(self, cmd: str) -> None:
        ex = self.engine.api.exec_create(self.cid, ["sh", "-c", cmd])
        self.engine.api.exec_start(ex)

    def mark(self) -> None:
        """From now on, every answer is counted."""
        self._exec("echo > /tmp/after")

    def wait_answers(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` answers were counted since ``mark`` (bounded: a loaded machine
        runs the probe's loop slowly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = bytes(self.engine.api.logs(self.cid)).decode()
            if sum(line[:5] == "after" for line in out.splitlines()) >= count:
                return
            time.sleep(0.5)

    def stop(self) -> list[str]:
        """The bodies of the answers since ``mark`` ("" for a failed request)."""
        try:
            self._exec("echo > /tmp/stop")
            self.engine.api.wait(self.cid, timeout=60)
            out = bytes(self.engine.api.logs(self.cid)).decode()
        finally:
            self.engine.api.remove_container(self.cid, force=True)
        assert "requests=" in out, out[-500:]
        return [line[len("after ") :].strip() for line in out.splitlines() if line[:5] == "after"]


def running_of_app(engine: docker.DockerClient, app: str) -> set[str]:
    found = engine.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}=test"]})
    return {
        c["Names"][0].lstrip("/")
        for c in found
        if (c.get("Labels") or {}).get(L.SERVICE)
        and (c.get("Labels") or {}).get(L.ROLE) not in (L.ROLE_LOCK, L.ROLE_TASK)
    }


@pytest.mark.parametrize(
    ("point", "rerun", "retired"),
    [
        ("pull", "v2", "v1"),
        ("after-start", "v2", "v1"),
        ("health-wait", "v2", "v1"),
        ("drain", "v2", "v1"),
        ("retention", "v2", "v1"),
        ("drain", "v1", "v2"),  # back to the previous version: the killed one must not serve
    ],
)
def test_rerun_after_kill_converges(
    point: str,
    rerun: str,
    retired: str,
    app: str,
    cleanup: Cleanup,
    project: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = {"v1": testenv.image_v1, "v2": testenv.image_v2}
    if point != "drain":
        # 4 s leave the kill time to land inside the drain; the other points spend the
        # drain of both replicas only waiting (the probe counts after the rerun)
        text = project.read_text()
        assert "drain: 4s" in text
        project.write_text(text.replace("drain: 4s", "drain: 500ms"))
    code, out = deploy(project, images["v1"], monkeypatch)
    assert code == 0, out
    probe_image = ensure_base(engine, f"deployer-test-probe/{app}:1")
    cleanup.later(lambda: engine.api.remove_image(probe_image, force=True))
    probe = Probe(engine, app, probe_image)
    stopped = False
    try:
        killed = kill_at(project, images["v2"], KILL_AT[point])
        if point in ("after-start", "health-wait", "drain"):
            left = [n for n in running_of_app(engine, app) if NEXT_MARK in n]
            assert left, killed  # the interrupted deploy left its replacement running
            code, out = cli("plan", "-f", str(project), "--env", "test", "--format", "json")
            assert code == 0, out
            data = json.loads(out)
            assert data["changes"] is True
            assert {c["name"] for c in data["hosts"][0]["leftovers"]} >= set(left)
            code, text = cli("status", "-f", str(project), "--env", "test")
            assert code == 0 and all(n in text for n in left), text
        code, out = deploy(project, images[rerun], monkeypatch)
        assert code == 0, out
        probe.mark()
        probe.wait_answers(50)
        stopped = True
        answers = probe.stop()
    finally:
        if not stopped:
            engine.api.remove_container(probe.cid, force=True)
    if point in ("after-start", "health-wait", "drain"):
        assert "cleanup: " in out and "removed" in out, out
    assert answers.count(retired) == 0, (answers.count(retired), len(answers), out)
    assert answers.count(rerun) > 10, answers[-20:]

    code, js = cli("status", "-f", str(project), "--env", "test", "--format", "json")
    assert code == 0, js
    host = json.loads(js)["hosts"][0]
    assert host["leftovers"] == []
    listed = {r["container"] for r in host["services"] if r["running"]}
    assert listed == running_of_app(engine, app) == {f"{app}-test-web-1", f"{app}-test-web-2"}
    assert len({r["digest"] for r in host["services"]}) == 1
    code, out = cli("plan", "-f", str(project), "--env", "test")
    assert code == 0 and "No changes" in out, out
