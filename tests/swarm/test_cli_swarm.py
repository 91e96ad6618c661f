"""`deployer plan/deploy/status/rollback` on an ``engine: swarm`` environment, end to end
through the CLI (manifest file, job log, reports, exit codes) on the single-node swarm."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.swarm.helpers import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  web:
    image: {image}
    init: true
    stop_grace_period: 2s
    ports:
      - "8080"
    deploy:
      replicas: {replicas}
      update_config:
        order: start-first
        parallelism: 1
        monitor: 2s
tasks:
  hello:
    service: web
    command: ["/bin/sh", "-c", "echo hello from $$HOSTNAME"]
    when: before-deploy
rollout:
  health_timeout: 20s
  healthy_after: 2s
"""


def write(tmp: Path, app: str, image: str, replicas: int = 1) -> str:
    path = tmp / "deploy.yml"
    path.write_text(MANIFEST.format(app=app, image=image, replicas=replicas))
    return str(path)


def test_plan_deploy_status_rollback_through_the_cli(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    f = write(tmp_path, swarm_app, testenv.image_v1)
    code, out = cli("plan", "-f", f, "--format", "json", env=env)
    assert code == 0, out
    plan = json.loads(out)
    assert json.dumps(plan).count('"create"') >= 1

    code, out = cli("deploy", "-f", f, "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    assert "hello | hello from" in out
    report: dict[str, Any] = json.loads((tmp_path / "deploy-report.json").read_text())
    assert report["outcome"] == "deployed"

    f2 = write(tmp_path, swarm_app, testenv.image_v2, replicas=2)
    code, out = cli("plan", "-f", f2, "--detailed-exitcode", env=env)
    assert code == 10, out
    code, out = cli("deploy", "-f", f2, "--report-dir", str(tmp_path), env=env)
    assert code == 0, out

    code, out = cli("status", "-f", f2, "--format", "json", env=env)
    assert code == 0, out
    status = json.loads(out)
    assert status["engine"] == "swarm"
    (row,) = status["hosts"][0]["services"]
    assert (row["service"], row["running"], row["desired"], row["update_state"]) == (
        "web",
        2,
        2,
        "completed",
    )
    v2 = row["digest"]
    code, text = cli("status", "-f", f2, env=env)
    assert code == 0 and f"{swarm_app}_web" in text and "2/2" in text

    # A failing image: Swarm rolls back, the deploy exits 1, the report says so.
    bad = write(tmp_path, swarm_app, testenv.image_unhealthy, replicas=2)
    code, out = cli("deploy", "-f", bad, "--report-dir", str(tmp_path), env=env)
    assert code == 1, out
    report = json.loads((tmp_path / "deploy-report.json").read_text())
    assert report["outcome"] == "rolled-back"
    code, out = cli("status", "-f", bad, "--format", "json", env=env)
    (row,) = json.loads(out)["hosts"][0]["services"]
    assert row["digest"] == v2 and row["running"] == 2

    # Back to the release before the latest (v1), with today's manifest (2 replicas).
    code, out = cli("rollback", "-f", f2, "--report-dir", str(tmp_path), env=env)
    assert code == 0, out
    assert "hello from" not in out  # tasks do not run on a rollback
    code, out = cli("status", "-f", f2, "--format", "json", env=env)
    (row,) = json.loads(out)["hosts"][0]["services"]
    assert row["digest"] != v2 and row["running"] == 2


def test_a_non_swarm_engine_is_refused_with_a_fix(
    swarm: docker.DockerClient, testenv: TestEnv, tmp_path: Path, swarm_app: str
) -> None:
    # The second engine is not part of a swarm.
    env = {"DOCKER_HOST": testenv.engine2_host}
    f = write(tmp_path, swarm_app, testenv.image_v1)
    code, _ = cli("plan", "-f", f, env=env)
    assert code == 2


WAITING = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  api:
    image: {image}
    init: true
    stop_grace_period: 1s
    command: ["sleep", "86400"]
    environment: {{MARK: "{mark}"}}
  worker:
    image: {image}
    init: true
    stop_grace_period: 1s
    command: ["sleep", "86400"]
rollout:
  health_timeout: 20s
  healthy_after: 1s
"""


def test_a_deploy_that_waited_for_the_lock_plans_again_from_what_runs_now(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: TestEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--wait-lock` on Swarm: the deploy plans (api changes, worker unchanged), then waits
    while another deploy holds the lock and changes worker (2 replicas). It applied the
    plan made before: worker stayed as that deploy left it, and the deploy said it
    deployed. It now sees the services changed, plans again, and worker runs as the
    manifest says (1 replica)."""
    import io
    import threading

    from deployer.cli import main
    from deployer.swarm import lock
    from deployer.swarm.api import SwarmApi
    from tests.swarm.helpers import manifest

    env = {"DOCKER_HOST": testenv.engine_host}
    path = tmp_path / "deploy.yml"
    base = testenv.image_base
    path.write_text(WAITING.format(app=swarm_app, image=base, mark=1))
    code, out = cli("deploy", "-f", str(path), env=env)
    assert code == 0, out
    path.write_text(WAITING.format(app=swarm_app, image=base, mark=2))

    sw = SwarmApi(manifest(swarm_app), swarm, "swarm manager")
    lease = lock.acquire_lock(sw, "https://gitlab.example/g/p/-/jobs/98", 60)
    out_io = io.StringIO()

    def other_deploy() -> None:
        """Holds the lock until the waiting deploy has planned, changes worker as a
        deploy would, then lets the waiting deploy go on."""
        try:
            deadline = time.monotonic() + 60
            while "\nwaves: " not in out_io.getvalue() and time.monotonic() < deadline:
                time.sleep(0.1)
            swarm.services.get(f"{swarm_app}_worker").scale(2)
        finally:
            lock.release_lock(sw, lease)

    holder = threading.Thread(target=other_deploy)
    holder.start()
    try:
        for k in ("CI", "GITLAB_CI", "CI_JOB_URL", "CI_ENVIRONMENT_NAME"):
            monkeypatch.delenv(k, raising=False)
        monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
        code = main(["deploy", "-f", str(path), "--wait-lock", "60s"], out_io)
    finally:
        holder.join()
    text = out_io.getvalue()
    assert code == 0, text
    assert "changed while this run waited for the lock" in text, text
    assert "planning again" in text, text
    spec = swarm.api.inspect_service(f"{swarm_app}_worker")["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 1, text
