"""`deployer restart` on two hosts (socket or SSH, and tcp+TLS): every replica replaced by
a new container of the same digest through the health-gated rollout, no release
recorded; a replica that does not come back healthy is rolled back (exit 1) and the old
ones keep serving."""

from __future__ import annotations

import docker
import pytest

from deployer import labels as L
from tests.ops.conftest import ONE_TRANSPORT, Fleet


def replicas(client: docker.DockerClient, app: str, service: str) -> dict[str, str]:
    """container id -> image digest label, of the running replicas of ``service``."""
    found = client.api.containers(
        filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}", f"{L.ROLE}=current"]}
    )
    return {c["Id"]: c["Labels"][L.DIGEST] for c in found if "--" not in c["Names"][0]}


def releases(client: docker.DockerClient, app: str) -> int:
    vols = client.api.volumes(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=release"]})
    return len(vols.get("Volumes") or [])


@ONE_TRANSPORT
@pytest.mark.integration
def test_restart_replaces_with_the_same_image_and_rolls_back_when_unhealthy(
    fleet: Fleet,
) -> None:
    fleet.deploy()
    before = {i: replicas(c, fleet.app, "api") for i, c in enumerate(fleet.clients)}
    workers = {i: replicas(c, fleet.app, "worker") for i, c in enumerate(fleet.clients)}

    code, out = fleet.run("restart", "api", "--report-dir", str(fleet.path.parent))
    assert code == 0, out
    assert "no release recorded" in out
    for i, client in enumerate(fleet.clients):
        after = replicas(client, fleet.app, "api")
        assert len(after) == 2 and not set(after) & set(before[i])  # new containers
        assert set(after.values()) == set(before[i].values())  # the same digest
        assert replicas(client, fleet.app, "worker") == workers[i]  # untouched
        assert releases(client, fleet.app) == 1

    # Broken: a replica started now never becomes healthy. The restart rolls back.
    serving = {i: replicas(c, fleet.app, "api") for i, c in enumerate(fleet.clients)}
    for i in range(len(fleet.clients)):
        host = "2376" if i else fleet.hosts[0]
        code, out = fleet.run("exec", "--host", host, "api", "--", "sh", "-c", "touch /data/broken")
        assert code == 0, out
    code, out = fleet.run("restart", "api", "--report-dir", str(fleet.path.parent))
    assert code == 1, out
    for i, client in enumerate(fleet.clients):
        assert replicas(client, fleet.app, "api") == serving[i]  # the old ones still serve

    code, _ = fleet.run("restart", "nosuch")
    assert code == 2
