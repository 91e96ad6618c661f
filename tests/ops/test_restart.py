"""`deployer restart` on two hosts (socket or SSH, and tcp+TLS): every replica replaced by
a new container of the same digest through the health-gated rollout, no release
recorded; a replica that does not come back healthy is rolled back (exit 1) and the old
ones keep serving. The restarted containers keep the release they run."""

from __future__ import annotations

import docker
import pytest

from deployer import labels as L
from tests.ops.conftest import ONE_TRANSPORT, Fleet
from tests.testenv import TestEnv


def replicas(client: docker.DockerClient, app: str, service: str) -> dict[str, str]:
    """container id -> image digest label, of the running replicas of ``service``."""
    found = client.api.containers(
        filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}", f"{L.ROLE}=current"]}
    )
    return {c["Id"]: c["Labels"][L.DIGEST] for c in found if "--" not in c["Names"][0]}


def releases(client: docker.DockerClient, app: str) -> int:
    return len(release_ids(client, app))


def release_ids(client: docker.DockerClient, app: str) -> list[str]:
    """The releases recorded on the engine, oldest first."""
    vols = client.api.volumes(filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=release"]})
    return sorted(v["Labels"][L.RELEASE] for v in vols.get("Volumes") or [])


def release_labels(client: docker.DockerClient, app: str, service: str) -> set[str]:
    found = client.api.containers(
        filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}", f"{L.ROLE}=current"]}
    )
    return {c["Labels"][L.RELEASE] for c in found if "--" not in c["Names"][0]}


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


@pytest.mark.integration
@pytest.mark.parametrize("fleet", ["unix+tls"], indirect=True)
def test_a_restart_keeps_the_release_it_restarts(fleet: Fleet, testenv: TestEnv) -> None:
    """Releases R1 (base image) and R2 (v1 image), then api restarted: its new containers
    still say R2, which `rollback --to` takes, and `rollback` goes back to R1. Before,
    they got a release id nobody recorded: `rollback --to` it was refused (exit 2), and
    `rollback` took them for a killed deploy's and went "back" to R2. The restart's old
    containers are removed (nothing takes them back)."""
    fleet.deploy()
    base = {i: set(replicas(c, fleet.app, "api").values()) for i, c in enumerate(fleet.clients)}
    fleet.deploy(image=testenv.image_v1)
    r1, r2 = release_ids(fleet.clients[0], fleet.app)
    code, out = fleet.run("restart", "api", "--report-dir", str(fleet.path.parent))
    assert code == 0, out
    shown = release_labels(fleet.clients[0], fleet.app, "api")
    for client in fleet.clients:
        assert release_labels(client, fleet.app, "api") == {r2}
        assert release_ids(client, fleet.app) == [r1, r2]
        # its old containers are gone: each restart left one more, stopped, kept as long
        # as R2 was
        labels = [f"{L.APP}={fleet.app}", f"{L.SERVICE}=api", f"{L.RELEASE}={r2}"]
        found = client.api.containers(all=True, filters={"label": labels})
        assert [c["Names"][0] for c in found if "--" in c["Names"][0]] == []

    (restarted,) = shown
    code, out = fleet.run("rollback", "--to", restarted, "--report-dir", str(fleet.path.parent))
    assert code == 0, out
    code, out = fleet.run("rollback", "--report-dir", str(fleet.path.parent))
    assert code == 0, out
    assert f"to release {r1}" in out and "never recorded" not in out, out
    for i, client in enumerate(fleet.clients):
        assert set(replicas(client, fleet.app, "api").values()) == base[i]
