"""Post-switch monitoring in container mode, on the real engine.

A new container that passes its first healthcheck and then flaps (``retries: 1``, every
other run failing), or one that crashes 4 s after its first passing check, must not count
as deployed: the deploy exits 1 and the previous version serves again. Both manifests
leave ``update_config.monitor`` unset: the default watch does it.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.cli import cli
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
{extra}
    deploy:
      replicas: 1
      update_config:
        {monitor}
rollout:
  health_timeout: 60s
  healthy_after: 1s
  drain: 500ms
"""

STEADY = """\
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 3"""

# Passes, then fails, then passes... (the deployer's own first check passes too).
FLAPPING = """\
    healthcheck:
      test: ["CMD-SHELL", "if [ -f /tmp/f ]; then rm /tmp/f; exit 1; fi; touch /tmp/f"]
      interval: 1s
      timeout: 5s
      retries: 1"""

# Serves, and exits 1 four seconds after its first passing healthcheck.
CRASHING = """\
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www &
      while [ ! -f /tmp/h ]; do sleep 0.2; done; sleep 4; exit 1"]
    healthcheck:
      test: ["CMD-SHELL", "touch /tmp/h; wget -q -O /dev/null http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 3"""


def deploy(
    f: Path, app: str, testenv: TestEnv, extra: str, monitor: str = "delay: 0s"
) -> tuple[int, str]:
    f.write_text(MANIFEST.format(app=app, host=testenv.engine_host, extra=extra, monitor=monitor))
    return cli("deploy", "-f", str(f), "--env", "test")


def running(engine: docker.DockerClient, app: str) -> set[str]:
    found = engine.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})
    return {c["Labels"][L.DIGEST] for c in found}


@pytest.fixture
def manifest_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST", "WEB_IMAGE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "deploy.yml"


@pytest.mark.parametrize("bad", [FLAPPING, CRASHING], ids=["flapping", "crash-after-4s"])
def test_failing_after_the_switch_exits_1_with_the_old_version_serving(
    bad: str,
    app: str,
    cleanup: Cleanup,
    manifest_file: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    code, out = deploy(manifest_file, app, testenv, STEADY)
    assert code == 0, out
    v1 = running(engine, app)
    assert len(v1) == 1

    monkeypatch.setenv("WEB_IMAGE", testenv.image_v2)
    code, out = deploy(manifest_file, app, testenv, bad)
    assert code == 1, out
    assert "after the switch" in out and "update_config.monitor" in out, out
    deadline = time.monotonic() + 30
    while running(engine, app) != v1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running(engine, app) == v1


def test_monitor_0s_turns_the_watch_off(
    app: str,
    cleanup: Cleanup,
    manifest_file: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    code, out = deploy(manifest_file, app, testenv, STEADY, "monitor: 0s")
    assert code == 0, out
    assert "watching the new container" not in out
