"""Fixtures of the tests that drive DockerHost against the real engines of tests/testenv."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deployer.docker.host import DockerHost, connect_host
from tests.testenv import TestEnv


@pytest.fixture
def h1(testenv: TestEnv) -> Iterator[DockerHost]:
    """The main engine (unix socket)."""
    h = connect_host(testenv.engine_host, {})
    yield h
    h.close()


@pytest.fixture
def h2(testenv: TestEnv) -> Iterator[DockerHost]:
    """The second engine (tcp with TLS)."""
    h = connect_host(testenv.engine2_host, {})
    yield h
    h.close()
