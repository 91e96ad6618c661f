"""A route that names an address no container holds any more is repaired by the next
deploy, even one with nothing to change: after an engine restart the containers may come
back with other addresses (here: the container leaves its network, another one takes
its address, and it joins again with a new one), and the proxy's upstream still names
the old address."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from bench.proxy_probe import get
from deployer import labels as L
from deployer.errors import EXIT_OK
from deployer.naming import default_network
from tests.commands.test_interrupted import kill_at
from tests.proxy.conftest import Edge
from tests.proxy.test_edge import deploy, wait_body, write_manifest
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def test_a_deploy_with_nothing_to_change_repairs_a_stale_route(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public, replicas=1)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    wait_body(edge, public, "v1")

    web = engine.containers.get(f"{app}-test-web-1")
    network = engine.networks.get(default_network(app, "test"))
    before = web.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    network.disconnect(web)
    # another container takes the freed address first, as after a restart in another order
    engine.containers.run(
        testenv.image_v1,
        ["sleep", "600"],
        name=f"{app}-other",
        network=network.name,
        labels={L.APP: app},
        detach=True,
    )
    network.connect(web, aliases=["web"])
    web.reload()
    after = web.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    assert after != before
    assert get(edge.address, public)[0] != 200  # the route names the old address

    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    assert "nothing to do" in out, out
    assert f"named {before}:8080, not its container's address: now {after}:8080" in out, out
    assert get(edge.address, public) == (200, "v1")


def test_a_deploy_killed_after_its_switch_then_the_previous_version_again(
    app: str, edge: Edge, testenv: TestEnv, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """Killed once the route names the new container, before the old one stops; then the
    previous version deployed again: its container never stopped, so nothing is replaced,
    the cleanup removes the killed deploy's container, and the route must come back to the
    container that serves (it named the removed one)."""
    public = f"{app}.example.test"
    manifest = write_manifest(tmp_path, app, testenv, edge, public, replicas=1)
    manifest.write_text(manifest.read_text() + "  lock_ttl: 10s\n")
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    wait_body(edge, public, "v1")

    kill_at(manifest, testenv.image_v2, r"edge proxy: .* replica 1 now ")
    assert get(edge.address, public) == (200, "v2")  # the killed deploy's container

    time.sleep(11)  # the killed deploy's lock expires (lock_ttl 10s)
    code, out = deploy(manifest, testenv.image_v1)
    assert code == EXIT_OK, out
    assert "cleanup: " in out and "removed" in out, out
    assert "not its container's address: now" in out, out
    assert get(edge.address, public) == (200, "v1")
