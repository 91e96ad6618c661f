"""`deployer deploy`, `rollback` and `status` through the CLI, on the real engine.

A manifest file per test (unique app name), images from the test registry; a load probe
(bench/rollout_probe.py) hits the service alias every 10 ms during a start-first update.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from bench.rollout_probe import ensure_base, start_probe, stop_probe, wait_serving
from deployer import labels as L
from deployer.docker.host import connect_host
from deployer.docker.lock import lock_name
from deployer.engine import default_network
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
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 500ms
      timeout: 10s  # a check under load can take seconds: not what these tests are about
      retries: 2
    deploy:
      replicas: 2
      update_config: {{monitor: 1s}}  # short: these tests are not about the watch
rollout:
  health_timeout: 20s
  healthy_after: 1s
  drain: 1500ms  # > the 1 s TCP SYN retransmission: a connection opened as it left is answered
  keep_releases: 3
"""


@pytest.fixture
def project(app: str, testenv: TestEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST.format(app=app, host=testenv.engine_host))
    return f


def deploy(
    project: Path, image: str, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> tuple[int, str]:
    monkeypatch.setenv("WEB_IMAGE", image)
    return cli(
        "deploy",
        "-f",
        str(project),
        "--env",
        "test",
        "--report-dir",
        str(project.parent / "reports"),
        *extra,
    )


def serving(client: docker.DockerClient, app: str) -> set[str]:
    return {
        c["Labels"][L.DIGEST]
        for c in client.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})
    }


def test_deploy_update_under_load_status_and_rollback(
    app: str,
    cleanup: Cleanup,
    project: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out = deploy(project, testenv.image_v1, monkeypatch)
    assert code == 0, out
    assert "Plan:" in out and "outcome: deployed" in out
    # job-log sections (plain headers outside GitLab CI): connect, pull, each service
    for header in ("== Connecting to test's host(s)", "== Pulling images", "== Rollout of web"):
        assert header in out, out
    report = (project.parent / "reports" / "deploy-report.json").read_text()
    assert '"deployed"' in report
    v1 = serving(engine, app)
    assert len(v1) == 1

    url, net = "http://web:8080/version", default_network(app, "test")
    probe_image = ensure_base(engine, f"deployer-test-probe/{app}:1")  # removed afterwards
    cleanup.later(lambda: engine.api.remove_image(probe_image, force=True))
    wait_serving(engine, url, net, image=probe_image)
    probe = start_probe(
        engine, url, network=net, labels={L.APP: app}, max_requests=3000, image=probe_image
    )
    try:
        code, out = deploy(project, testenv.image_v2, monkeypatch)
    finally:
        result = stop_probe(engine, probe)
    assert code == 0, out
    assert result.requests > 50
    assert result.failed == 0, result
    v2 = serving(engine, app)
    assert v2 != v1 and len(v2) == 1

    deadline = time.monotonic() + 15
    while True:  # right after the deploy, Docker's own first check may still be due
        code, out = cli("status", "-f", str(project), "--env", "test", "--format", "json")
        assert code == 0, out
        data = json.loads(out)
        rows = data["hosts"][0]["services"]
        assert all(r["health"] in ("healthy", "starting") for r in rows), rows
        if all(r["health"] == "healthy" for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [r["container"] for r in rows] == [f"{app}-test-web-1", f"{app}-test-web-2"]
    assert {r["digest"] for r in rows} == v2
    assert all(r["health"] == "healthy" for r in rows)
    assert len(data["hosts"][0]["releases"]) == 2
    code, text = cli("status", "-f", str(project), "--env", "test")
    assert code == 0 and f"{app}-test-web-1" in text

    code, out = cli("rollback", "-f", str(project), "--env", "test")
    assert code == 0, out
    assert serving(engine, app) == v1  # the exact digests of the previous release


def test_bad_image_exit_1_and_lock_exit_4(
    app: str,
    project: Path,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert deploy(project, testenv.image_v1, monkeypatch)[0] == 0
    before = serving(engine, app)

    # (the manifest's healthcheck passes on the "unhealthy" image: it serves; use a crash)
    code, out = deploy(project, testenv.image_crash, monkeypatch)
    assert code == 1, out
    assert "rolled back" in out or "rolled-back" in out
    assert serving(engine, app) == before

    host = connect_host(testenv.engine_host, {})
    try:
        lease = host.acquire_lock(f"{app}/test", "https://gitlab.example/g/p/-/jobs/99", 60)
        try:
            code, out = deploy(project, testenv.image_v2, monkeypatch)
            assert code == 4
            code, _ = deploy(project, testenv.image_v2, monkeypatch, "--wait-lock", "1s")
            assert code == 4
        finally:
            host.release_lock(lease)
        assert lock_name(f"{app}/test")
    finally:
        host.close()
    assert serving(engine, app) == before


def test_nothing_to_do_and_unknown_release(
    app: str, project: Path, testenv: TestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(project, testenv.image_v1, monkeypatch)[0] == 0
    code, out = deploy(project, testenv.image_v1, monkeypatch)
    assert code == 0
    assert "nothing to do" in out
    code, _ = cli("rollback", "-f", str(project), "--env", "test")
    assert code == 2  # only one release: nothing to roll back to
    code, _ = cli("rollback", "-f", str(project), "--env", "test", "--to", "19990101")
    assert code == 2


def test_a_deploy_that_waited_for_the_lock_plans_again_from_what_runs_now(
    app: str,
    project: Path,
    engine: docker.DockerClient,
    testenv: TestEnv,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--wait-lock` (README: "waits with --wait-lock"): the deploy plans, then waits
    while another deploy holds the lock and replaces containers. Applying the plan made
    before failed on the containers that deploy removed ("No such container", exit 1,
    rolled back); the deploy now sees the hosts changed, plans again and deploys."""
    import io
    import threading

    from deployer.cli import main

    assert deploy(project, testenv.image_v1, monkeypatch)[0] == 0
    v1 = serving(engine, app)
    host = connect_host(testenv.engine_host, {})
    lease = host.acquire_lock(f"{app}/test", "https://gitlab.example/g/p/-/jobs/98", 60)
    out = io.StringIO()

    def other_deploy() -> None:
        """Holds the lock until the waiting deploy has planned, changes a container as a
        deploy would, then lets the waiting deploy go on."""
        try:
            deadline = time.monotonic() + 60
            while "\nPlan: " not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
            (second,) = engine.containers.list(
                filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web", f"{L.REPLICA}=2"]}
            )
            second.remove(force=True)
        finally:
            host.release_lock(lease)

    holder = threading.Thread(target=other_deploy)
    holder.start()
    try:
        monkeypatch.setenv("WEB_IMAGE", testenv.image_v2)
        code = main(["deploy", "-f", str(project), "--env", "test", "--wait-lock", "60s"], out)
    finally:
        holder.join()
        host.close()
    text = out.getvalue()
    assert code == 0, text
    assert "changed while this run waited for the lock" in text
    assert "planning again" in text
    v2 = serving(engine, app)
    assert len(v2) == 1 and v2 != v1, text
    assert (
        len(engine.containers.list(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})) == 2
    )
