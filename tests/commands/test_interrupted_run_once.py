"""A deploy killed (SIGKILL) while it waits for a service that runs once (a migration),
then run again at once, on the real engine: the run the killed deploy started is still
at work, and the rerun must let it end rather than kill it midway (a migration cut short
can leave data half changed). The killed deploy's lock expires after 10 s, so the run
outlasts it. Each run writes "start" and, after a while, "end" into a
volume: every start must be followed by its end, never by another start.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.engine import NEXT_MARK
from tests.cli import cli
from tests.commands.test_interrupted import kill_at
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  test:
    hosts: ["{host}"]
services:
  migrate:
    image: ${{WEB_IMAGE}}
    command: ["sh", "-c", "echo start >> /state/log; sleep $$RUN_SECONDS; echo end >> /state/log"]
    environment: {{RUN_SECONDS: "${{RUN_SECONDS}}"}}
    healthcheck: {{disable: true}}
    volumes: ["state:/state"]
  web:
    image: ${{WEB_IMAGE}}
    depends_on:
      migrate: {{condition: service_completed_successfully}}
volumes:
  state: {{name: {app}-state}}
rollout:
  health_timeout: {timeout}s
  healthy_after: 1s
  lock_ttl: 10s
"""


def project(tmp_path: Path, app: str, testenv: TestEnv, timeout: int) -> Path:
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST.format(app=app, host=testenv.engine_host, timeout=timeout))
    return f


def deploy_then_kill_mid_run(
    f: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    seconds: int,
) -> tuple[int, str]:
    """v1 deployed (its migration runs 1 s); a deploy of v2 killed while it waits for its
    migration, which runs ``seconds``; then v2 deployed again at once: (exit code, output)."""
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    monkeypatch.setenv("RUN_SECONDS", "1")
    code, out = cli("deploy", "-f", str(f), "--env", "test")
    assert code == 0, out
    assert runs(engine, app, testenv.image_v1) == ["start", "end"]
    monkeypatch.setenv("RUN_SECONDS", str(seconds))
    kill_at(f, testenv.image_v2, r"migrate-1: waiting until it completes")
    monkeypatch.setenv("WEB_IMAGE", testenv.image_v2)
    return cli("deploy", "-f", str(f), "--env", "test", "--wait-lock", "120s")


def runs(engine: docker.DockerClient, app: str, image: str) -> list[str]:
    out = engine.containers.run(
        image, ["cat", "/state/log"], volumes={f"{app}-state": {"bind": "/state"}}, remove=True
    )
    return bytes(out).decode().split()


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("quiet_env")
def test_rerun_waits_for_the_migration_the_killed_deploy_started(
    app: str,
    tmp_path: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = project(tmp_path, app, testenv, timeout=60)
    code, out = deploy_then_kill_mid_run(f, app, testenv, engine, monkeypatch, seconds=20)
    assert code == 0, out
    assert "still at work: waiting until it exits" in out, out
    assert "cleanup: " in out and "removed" in out, out
    # v1's run, the killed deploy's run (ended, not cut short), the rerun's own run
    assert runs(engine, app, testenv.image_v1) == ["start", "end"] * 3, out
    code, out = cli("plan", "-f", str(f), "--env", "test")
    assert code == 0 and "No changes" in out, out


@pytest.mark.usefixtures("quiet_env")
def test_a_migration_still_running_past_the_timeout_blocks_the_rerun_untouched(
    app: str,
    tmp_path: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = project(tmp_path, app, testenv, timeout=3)
    code, out = deploy_then_kill_mid_run(f, app, testenv, engine, monkeypatch, seconds=30)
    assert code == 4, out
    assert "still running after 3s; it is left at work" in out, out
    assert "stopped before any change" in out, out
    running = engine.containers.list(
        filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=migrate"]}
    )
    assert [c.name for c in running if NEXT_MARK in c.name], [c.name for c in running]
    web = engine.containers.get(f"{app}-test-web-1")
    assert web.image.id == engine.images.get(testenv.image_v1).id  # untouched
