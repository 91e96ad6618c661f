"""A route that names an address no container holds any more is repaired by the next
deploy, even one with nothing to change: after an engine restart the containers may come
back with other addresses (here: the container leaves its network, another one takes
its address, and it joins again with a new one), and the proxy's upstream still names
the old address."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from bench.proxy_probe import get
from deployer import labels as L
from deployer.errors import EXIT_OK
from deployer.naming import default_network
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
