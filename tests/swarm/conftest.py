"""Fixtures for the Swarm engine: a single-node swarm on the main engine, per-test apps.

``swarm``        session: the main engine's client, with Swarm mode active (initialised
                 with ``--advertise-addr 127.0.0.1`` when it was not, under a lock: one
                 process at a time; left active, never left: plain containers of other
                 tests are unaffected).
``swarm_app``    function: a unique app name whose services, jobs, networks and lock
                 configs are removed after the test, even when it fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.swarm.helpers import remove_from_swarm
from tests.testenv import TestEnv, exclusive, unique_app


@pytest.fixture(scope="session")
def swarm(testenv: TestEnv, engine: docker.DockerClient) -> docker.DockerClient:
    with exclusive("swarm-init"):  # the workers of a parallel run, and other runs
        state = engine.info().get("Swarm", {}).get("LocalNodeState")
        if state != "active":
            try:
                engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
            except docker.errors.APIError as e:
                # A run that takes no lock may have initialised it a moment ago.
                if engine.info().get("Swarm", {}).get("LocalNodeState") != "active":
                    raise RuntimeError(f"cannot initialise a single-node swarm: {e}") from e
    return engine


@pytest.fixture
def swarm_app(swarm: docker.DockerClient) -> Iterator[str]:
    app = unique_app()
    try:
        yield app
    finally:
        remove_from_swarm(swarm, app)
