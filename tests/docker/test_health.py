"""Health gating on a real engine (deployer/docker/health.py): the deployer's own checks
while a container starts, which engines below API 1.44 do not run (``start_interval``)."""

from __future__ import annotations

import time

import docker
import pytest

from deployer import labels as L
from deployer.docker import health
from deployer.docker.host import DockerHost
from deployer.manifest.model import Environment, Healthcheck, Manifest, Service
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MINUTE = Healthcheck(interval=60.0)  # the image's test; Docker's first check a minute away


def started(h: DockerHost, app: str, image: str, hc: Healthcheck) -> str:
    svc = Service("web", image, healthcheck=hc, init=True)
    m = Manifest(path="deploy.yml", app=app, environment=Environment("test"), services=(svc,))
    h.ensure_infrastructure(m)
    cid = h.create(m, svc, image, 1, {L.APP: app}, f"{app}-web-1")
    h.start(cid)
    return cid


def test_a_check_due_in_a_minute_passes_now_by_the_deployer_s_own_run(
    app: str, h1: DockerHost, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    cid = started(h1, app, testenv.image_v1, MINUTE)
    out = h1.wait_healthy(cid, timeout=30, stable=1.0)
    assert out.healthy and out.status == "healthy", out
    assert "run by the deployer" in out.detail
    state = engine.api.inspect_container(cid)["State"]["Health"]
    assert state["Status"] == "starting" and not state["Log"]  # Docker has not checked yet


def test_a_failing_check_never_passes_and_docker_s_verdict_is_awaited(
    app: str, h1: DockerHost, testenv: TestEnv
) -> None:
    cid = started(h1, app, testenv.image_unhealthy, MINUTE)
    out = h1.wait_healthy(cid, timeout=2.5, stable=1.0, start_interval=0.5)
    assert not out.healthy
    assert out.status.startswith("timeout (starting"), out


def test_a_check_slower_than_its_timeout_is_a_failed_check_not_a_hang(
    app: str, h1: DockerHost, testenv: TestEnv
) -> None:
    slow = Healthcheck(test=("CMD-SHELL", "sleep 30"), interval=60.0, timeout=0.5)
    cid = started(h1, app, testenv.image_v1, slow)
    check = health.start_check(h1.api.inspect_container(cid))
    assert check == (["/bin/sh", "-c", "sleep 30"], 0.5, 60.0)
    began = time.monotonic()
    assert health.run_check(h1.api, cid, check[0], check[1]) is False
    assert time.monotonic() - began < 25  # bounded by the check's timeout, not the sleep


def test_the_start_check_follows_docker_s_test_shapes() -> None:
    def info(**hc: object) -> dict[str, object]:
        return {"Config": {"Healthcheck": hc}}

    assert health.start_check({"Config": {}}) is None
    assert health.start_check(info(Test=["NONE"])) is None
    assert health.start_check(info(Test=["CMD", "true"])) == (["true"], 30.0, 30.0)
    shell = info(Test=["CMD-SHELL", "exit 0"], Timeout=2_000_000_000, Interval=500_000_000)
    assert health.start_check(shell) == (["/bin/sh", "-c", "exit 0"], 2.0, 0.5)
    # an engine with API >= 1.44 keeps StartInterval and runs the start checks itself
    native = info(Test=["CMD", "true"], StartInterval=500_000_000, StartPeriod=10_000_000_000)
    assert health.start_check(native) is None
