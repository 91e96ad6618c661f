"""The Swarm deploy lock judged on the manager's clock, not on a CI runner's."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest

from deployer.errors import Blocked
from deployer.swarm import lock
from deployer.swarm.api import SwarmApi
from tests.swarm.helpers import manifest


class _Clock:
    """``time`` as a runner whose clock is ``skew`` seconds off sees it."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def time(self) -> float:
        return time.time() + self.skew

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_runner_clocks_that_disagree_judge_the_swarm_lease_on_the_managers_clock(
    swarm: docker.DockerClient, swarm_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner 2 minutes ahead took a live 60 s lease (two deploys of one environment at
    once); a runner 2 minutes behind stayed blocked by one that had expired."""
    sw = SwarmApi(manifest(swarm_app), swarm, "swarm manager")
    held = lock.acquire_lock(sw, "deploy on time", 60)
    monkeypatch.setattr(lock, "time", _Clock(120))
    with pytest.raises(Blocked, match="deploy on time"):
        lock.acquire_lock(sw, "deploy ahead", 60)
    monkeypatch.setattr(lock, "time", time)
    lock.release_lock(sw, held)
    # a killed deploy's lease, written by a runner 2 minutes ahead, expires after its ttl
    monkeypatch.setattr(lock, "time", _Clock(120))
    lock.acquire_lock(sw, "killed deploy ahead", 1)
    time.sleep(2.5)
    monkeypatch.setattr(lock, "time", _Clock(-120))
    taken = lock.acquire_lock(sw, "deploy behind", 60)
    monkeypatch.setattr(lock, "time", time)
    lock.release_lock(sw, taken)
    assert not swarm.api.configs(filters={"name": lock.lock_name(sw)})
