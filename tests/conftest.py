"""Shared fixtures: the real test peers (scripts/testenv.sh) and per-test isolation.

Fixtures (stable; see tests/testenv/README.md):

``testenv``        session: ``tests.testenv.TestEnv`` read from .testenv/env; fails with
                   "run scripts/testenv.sh up" when the environment is not up.
``engine``         session: docker.DockerClient on the main engine (unix socket).
``engine2``        session: docker.DockerClient on the second engine (its unix socket; the
                   same engine is the tcp+TLS host ``testenv.tls_host``).
``app_name``       function: a unique app name (``t`` + 10 hex digits), nothing else.
``cleanup``        function: after the test, even when it fails, removes every container,
                   network and volume labelled io.deployer.app=<app_name> or
                   com.docker.compose.project=<app_name> on both engines. Yields a
                   ``Cleanup`` to register more (``cleanup.later(fn)``).
``app``            function: ``app_name`` with ``cleanup`` active: what most tests want.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest

from tests.testenv import TestEnv, TestEnvNotUp, client, unique_app
from tests.testenv import cleanup as remove_app


@pytest.fixture(scope="session")
def testenv() -> TestEnv:
    try:
        return TestEnv.load()
    except TestEnvNotUp as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def engine(testenv: TestEnv) -> Iterator[docker.DockerClient]:
    dc = client(testenv.engine_host)
    yield dc
    dc.close()


@pytest.fixture(scope="session")
def engine2(testenv: TestEnv) -> Iterator[docker.DockerClient]:
    dc = client(testenv.engine2_host)
    yield dc
    dc.close()


@pytest.fixture
def app_name() -> str:
    return unique_app()


class Cleanup:
    """Runs registered callbacks (last first), then removes the app from both engines."""

    def __init__(self, app: str) -> None:
        self.app = app
        self._later: list[Callable[[], object]] = []

    def later(self, fn: Callable[[], object]) -> None:
        self._later.append(fn)

    def run(self, engines: dict[str, docker.DockerClient]) -> None:
        errors: list[str] = []
        for fn in reversed(self._later):
            try:
                fn()
            except Exception as e:  # cleanup must go on
                errors.append(repr(e))
        remove_app(engines, self.app)
        if errors:
            raise RuntimeError(f"cleanup of {self.app} had errors: {errors}")


@pytest.fixture
def cleanup(
    app_name: str, engine: docker.DockerClient, engine2: docker.DockerClient
) -> Iterator[Cleanup]:
    c = Cleanup(app_name)
    try:
        yield c
    finally:
        c.run({"engine": engine, "engine2": engine2})


@pytest.fixture
def app(app_name: str, cleanup: Cleanup) -> str:
    return app_name
