"""`deployer down` on two hosts (socket or SSH, and tcp+TLS): removes the environment's
containers, networks, releases and lock, keeps the volumes unless `--volumes --yes`, and
is refused while another deploy holds the lock."""

from __future__ import annotations

import io
import time

import docker
import pytest

from deployer import labels as L
from deployer.commands.down import confirm_volumes
from deployer.docker import lock as _lock
from deployer.errors import EXIT_LEFT_BEHIND, InvalidInput
from tests.ops.conftest import ONE_TRANSPORT, Fleet
from tests.testenv import TestEnv


def left(client: docker.DockerClient, app: str) -> dict[str, list[str]]:
    flt = {"label": f"{L.APP}={app}"}
    vols = client.api.volumes(filters=flt).get("Volumes") or []
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=flt)),
        "networks": sorted(n.name for n in client.networks.list(filters=flt)),
        "releases": sorted(
            v["Name"] for v in vols if (v.get("Labels") or {}).get(L.ROLE) == L.ROLE_RELEASE
        ),
        "volumes": sorted(
            v["Name"] for v in vols if (v.get("Labels") or {}).get(L.ROLE) != L.ROLE_RELEASE
        ),
    }


@ONE_TRANSPORT
@pytest.mark.integration
def test_down_removes_everything_but_volumes_then_volumes_too(fleet: Fleet) -> None:
    fleet.deploy(mark="1")
    fleet.deploy(mark="2")  # a second release: kept containers of the first one exist
    for client in fleet.clients:
        before = left(client, fleet.app)
        assert len(before["containers"]) >= 6, before  # 4 current + kept ones
        assert before["networks"] and len(before["releases"]) == 2 and before["volumes"]

    code, out = fleet.run("down")
    assert code == 0, out
    assert "kept volume(s)" in out
    for client in fleet.clients:
        after = left(client, fleet.app)
        assert after == {
            "containers": [],
            "networks": [],
            "releases": [],
            "volumes": [f"{fleet.app}-prod-data"],
        }, after
        assert not client.api.containers(
            all=True, filters={"label": f"{_lock.KEY}={fleet.app}/prod"}
        )

    code, out = fleet.run("down", "--volumes")  # not confirmed: refused, nothing removed
    assert code == 2, out
    assert left(fleet.clients[0], fleet.app)["volumes"] == [f"{fleet.app}-prod-data"]

    code, out = fleet.run("down", "--volumes", "--yes")
    assert code == 0, out
    for client in fleet.clients:
        assert left(client, fleet.app) == {
            "containers": [],
            "networks": [],
            "releases": [],
            "volumes": [],
        }


@ONE_TRANSPORT
@pytest.mark.integration
def test_down_is_refused_while_another_deploy_holds_the_lock(fleet: Fleet) -> None:
    fleet.deploy()
    second = fleet.clients[1]
    lease = _lock.acquire(second, "engine2", f"{fleet.app}/prod", "https://x/-/jobs/1", 600)
    try:
        code, out = fleet.run("down")
        assert code == 4, out
    finally:
        _lock.release(second, "engine2", lease)
    for client in fleet.clients:  # nothing was removed, on either host
        assert len(left(client, fleet.app)["containers"]) == 4


@ONE_TRANSPORT
@pytest.mark.integration
def test_down_leaves_a_network_another_container_uses_and_says_what_to_run(
    fleet: Fleet, testenv: TestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """A container that is not the app's is on the app's network: `down` removes all the
    rest on both hosts, leaves that container and the network alone, and ends naming
    both with the commands to run (exit 6), without waiting for the container to go."""
    fleet.deploy()
    client = fleet.clients[0]
    (net,) = client.networks.list(filters={"label": f"{L.APP}={fleet.app}"})
    debug = client.containers.run(
        testenv.image_base,
        ["sleep", "600"],
        name=f"{fleet.app}-debug",
        network=net.name,
        init=True,
        detach=True,
    )
    try:
        started = time.monotonic()
        code, out = fleet.run("down")
        took = time.monotonic() - started
        out += capsys.readouterr().err  # the error and its fix
        debug.reload()
        assert debug.status == "running"  # not the app's: untouched
        assert net.name in debug.attrs["NetworkSettings"]["Networks"]
    finally:
        debug.remove(force=True)
    print(f"down took {took:.1f}s")
    assert code == EXIT_LEFT_BEHIND, out
    assert f"network {net.name}" in out and debug.name in out, out
    assert f"docker network disconnect {net.name} {debug.name}" in out, out
    assert f"docker network rm {net.name}" in out, out
    assert "Traceback" not in out, out
    first, second = (left(c, fleet.app) for c in fleet.clients)
    assert first == {
        "containers": [],
        "networks": [net.name],
        "releases": [],
        "volumes": [f"{fleet.app}-prod-data"],
    }, first
    assert second["containers"] == second["networks"] == second["releases"] == [], second


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_volumes_need_a_confirmation() -> None:
    confirm_volumes("prod", yes=True, stdin=io.StringIO(""))
    confirm_volumes("prod", yes=False, stdin=_Tty("prod\n"))
    with pytest.raises(InvalidInput, match="not confirmed"):
        confirm_volumes("prod", yes=False, stdin=_Tty("yes\n"))
    with pytest.raises(InvalidInput, match="needs a confirmation"):
        confirm_volumes("prod", yes=False, stdin=io.StringIO(""))
