"""The rollback never depends on an address it cannot hold, on the real engine.

Draining reconnects the old container with its IP address pinned (connections in flight
survive). Once it is stopped, that address is free, and under load a new container of
another service can take it. Here another container takes it deterministically, between
the old container's stop and the rollback: the old container must start again anyway.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest

from deployer import labels as L
from deployer.docker.host import DockerHost
from deployer.engine import default_network
from deployer.result import Outcome
from tests.conftest import Cleanup
from tests.docker.test_host_rollout import ENV, deploy, manifest, running, web
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


class Squatter(DockerHost):
    """A host on which, right after the old web container stops, another container is
    started on the address it had."""

    def __init__(self, host: DockerHost, app: str, image: str, victim: str) -> None:
        super().__init__(host.conn)
        self.app, self.image, self.victim = app, image, victim
        self.net = default_network(app, ENV)
        self.squatted: str | None = None

    def stop(self, container_id: str, timeout: float) -> None:
        ip = ""
        if container_id == self.victim and self.squatted is None:
            nets: dict[str, Any] = self.api.inspect_container(container_id)["NetworkSettings"][
                "Networks"
            ]
            ip = str(nets[self.net]["IPAddress"])
        super().stop(container_id, timeout)
        if ip:
            created = self.api.create_container(
                self.image,
                ["sleep", "300"],
                labels={L.APP: self.app},
                host_config=self.api.create_host_config(network_mode=self.net),
                networking_config=self.api.create_networking_config(
                    {self.net: self.api.create_endpoint_config(ipv4_address=ip)}
                ),
            )
            self.api.start(created["Id"])
            self.squatted = ip


def test_rollback_starts_the_old_container_when_its_address_was_taken(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, cleanup: Cleanup
) -> None:
    m1 = manifest(app, web(testenv.image_v1), drain=0.5)
    r = deploy(m1, [h1])
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    before = running(engine, app)
    old = engine.api.containers(filters={"name": f"^/{app}-{ENV}-web-1$"})[0]["Id"]

    # web moves to v2 (its old container drains and stops), then a later service fails
    late = web(testenv.image_crash, name="late", depends_on=(("web", "service_started"),))
    m2 = manifest(app, web(testenv.image_v2), late)
    host = Squatter(h1, app, testenv.image_v1, old)
    r = deploy(m2, [host])
    assert host.squatted, r.lines  # type: ignore[attr-defined]
    assert r.result.outcome is Outcome.ROLLED_BACK, r.lines  # type: ignore[attr-defined]
    assert r.error is not None and r.error.exit_code == 1
    assert "Address already in use" not in "\n".join(r.lines)  # type: ignore[attr-defined]
    assert running(engine, app) == before
