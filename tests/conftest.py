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

Parallel runs (pytest-xdist, ``-n N --dist loadgroup``, as scripts/test runs the suite): the
tests of one ``xdist_group`` run in one worker, one after another; every other test may run
beside any other. ``pytest_collection_modifyitems`` below puts a test in a group when it
shares state that two workers must not use at once (see ``GROUPS``). Session-scoped fixtures
run once per worker: each must be safe to run in several processes at once (locks in
``.testenv``, unique names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.testenv import TestEnv, TestEnvNotUp, client, unique_app
from tests.testenv import cleanup as remove_app

ROOT = Path(__file__).resolve().parents[1]

# (fixture name or path under tests/, group): the first that matches a test gives its group.
GROUPS: tuple[tuple[str, str], ...] = (
    # pebble and its edge proxy on fixed host ports (18370-18375); the other proxy tests
    # each run their own edge proxy on a free port
    ("tests/proxy/test_acme.py", "acme-ports"),
    # the single-node swarm of the main engine: services converge on one manager
    ("swarm", "swarm"),
    # gitlab-ci-local pipelines: each job a node process and a deployer, heavy on CPU
    ("gitlab_ci_local", "gitlab-ci-local"),
    # a webhook server on fixed port 18451 (and 18452 closed); the scheduling test runs
    # test_notify.py's tests in a pytest of its own, which binds that port too
    ("tests/test_notify.py", "port-18451"),
    ("tests/test_parallel.py", "port-18451"),
    # a fake GitLab on fixed port 18100
    ("tests/report/test_secrets.py", "port-18100"),
    # the deployer's image, built once per worker by a session fixture
    ("tests/test_image.py", "deployer-image"),
    # a module fixture runs compose on the whole corpus, once per worker that runs the module
    ("tests/manifest/test_compose_corpus.py", "compose-corpus"),
    # fixed subnets, one of 200 picked from the app name: two at once could collide
    ("tests/docker/test_compose_keys.py", "fixed-subnets"),
)


def xdist_group(item: pytest.Item) -> str | None:
    path = item.path.relative_to(ROOT).as_posix()
    fixtures = set(getattr(item, "fixturenames", ()))
    for key, group in GROUPS:
        if key in fixtures or (key.startswith("tests/") and path.startswith(key)):
            return group
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = xdist_group(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


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
