"""Stateful services roll stop-first by default, on the real engine.

A service with a writable named volume must never run two containers on that volume
(two database servers on one data directory); the plan says why it stops first. An
explicit ``order: start-first`` is kept, and then the overlap is there to see.
"""

from __future__ import annotations

import threading
import time

import docker
import pytest

from deployer.docker.host import DockerHost
from deployer.engine import volume_name
from deployer.manifest.model import Mount, UpdateConfig
from deployer.plan import make_plan
from deployer.report.plan import render
from tests.conftest import Cleanup
from tests.docker.test_host_rollout import ENV, deploy, manifest, web
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def most_on_volume(
    engine: docker.DockerClient, volume: str, stop: threading.Event, seen: list[int]
) -> None:
    """The most running containers that mounted ``volume`` at one look, every 50 ms."""
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        found = engine.api.containers(filters={"volume": volume, "status": "running"})
        seen.append(len(found))
        time.sleep(0.05)


@pytest.mark.parametrize("order", [None, "start-first"])
def test_at_most_one_container_on_the_volume_unless_start_first_is_written(
    order: str | None,
    app: str,
    cleanup: Cleanup,
    h1: DockerHost,
    engine: docker.DockerClient,
    testenv: TestEnv,
) -> None:
    vols = (Mount("volume", "/data", "data"),)
    uc = UpdateConfig(order=order, monitor=1.0)  # type: ignore[arg-type]
    m1 = manifest(app, web(testenv.image_v1, volumes=vols, update_config=uc), drain=1.0)
    r = deploy(m1, [h1])
    assert r.error is None, r.lines  # type: ignore[attr-defined]

    m2 = manifest(app, web(testenv.image_v2, volumes=vols, update_config=uc), drain=1.0)
    digests = {"web": h1.resolve(testenv.image_v2, None)}
    plan = make_plan(m2, [h1.observe(app, ENV)], digests)
    step = plan.hosts[0].steps[0]
    text = render(plan, "text")
    if order is None:
        assert step.strategy == "stop-first"
        assert step.strategy_reason == "stateful: volume data at /data is writable"
        assert "stop-first (stateful: volume data at /data is writable)" in text
    else:
        assert step.strategy == "start-first"
        assert step.strategy_reason == "written in update_config.order"

    seen: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(
        target=most_on_volume, args=(engine, volume_name(m2, "data"), stop, seen)
    )
    sampler.start()
    try:
        r = deploy(m2, [h1])
    finally:
        stop.set()
        sampler.join(timeout=60)
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    assert seen, "the sampler saw nothing"
    if order is None:
        assert max(seen) <= 1, seen
    else:
        assert max(seen) == 2, seen  # the written start-first runs both for the overlap
