"""A small version of bench/rollout_load.py: 6 services x 2 replicas in one wave on one
host, the last one failing. The deploy exits 1, every old container runs again, and no
step meets "Address already in use"."""

from __future__ import annotations

import docker
import pytest

from bench.rollout_load import run_load
from deployer.docker.host import DockerHost
from tests.conftest import Cleanup

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_wave_with_one_failing_service_rolls_back_every_old_container(
    app: str, h1: DockerHost, engine: docker.DockerClient, cleanup: Cleanup
) -> None:
    res = run_load(engine, h1, app, services=6, replicas=2)
    assert res.exit_code == 1, res
    assert res.old_running == res.old_expected == 12, res
    assert res.address_in_use == 0, res
