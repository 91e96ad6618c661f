"""A MAC address per network (``networks: {NET: {mac_address: ...}}``, Docker API 1.44) and
``gw_priority`` (API 1.48, compose 2.33+), against the real engine (20.10, API 1.41) with
Docker Compose v2 as the peer. compose refuses the first there on the container's
first network ("requires API version 1.44") and drops it without a word on another, and
drops the second without a word (the engine ignores GwPriority). The deployer refuses
both before anything changes, naming the key and the engine they need, rather than
dropping one."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.docker.host import DockerHost
from deployer.errors import InvalidInput
from deployer.manifest import load_manifest
from deployer.targets import check_engine_api
from tests import composev2
from tests.docker.compose_app import ENV
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
name: {app}
services:
  web:
    image: {image}
    init: true
    networks:
      front: {{{key}}}
      back: {{}}
networks:
  front: {{}}
  back: {{}}
"""


def compose_and_manifest(app: str, image: str, key: str, path: Path) -> None:
    (path / "compose.yaml").write_text(COMPOSE.format(app=app, image=image, key=key))
    (path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [compose.yaml]\nenvironments:\n  {ENV}: {{}}\n"
    )


def compose_up(path: Path, host: str) -> tuple[int, str]:
    proc = composev2.run(["up", "-d"], cwd=path, docker_host=host, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def compose_down(path: Path, host: str) -> None:
    composev2.run(["down", "-t", "1"], cwd=path, docker_host=host, check=False)


def macs(h1: DockerHost, app: str) -> dict[str, str]:
    """The MAC address of each network of the app's container compose started."""
    (c,) = h1.client.api.containers(filters={"label": f"com.docker.compose.project={app}"})
    nets = h1.client.api.inspect_container(c["Id"])["NetworkSettings"]["Networks"]
    return {n: str(ep.get("MacAddress")) for n, ep in nets.items()}


def refusal(path: Path, h1: DockerHost) -> str:
    m = load_manifest(path / "deploy.yml", ENV, {})
    with pytest.raises(InvalidInput) as e:
        check_engine_api(m, [(h1.name, h1.conn.api_version)])
    return str(e.value)


def test_a_mac_address_per_network_needs_api_1_44_as_compose_says(
    app: str, h1: DockerHost, testenv: TestEnv, tmp_path: Path
) -> None:
    assert h1.conn.api_version == "1.41"
    compose_and_manifest(app, testenv.image_v1, 'mac_address: "02:42:0a:00:00:42"', tmp_path)
    try:
        # front is not compose's first network (back is: by name): it starts the
        # container, with another MAC address there
        code, out = compose_up(tmp_path, testenv.engine_host)
        assert code == 0, out
        assert macs(h1, app)[f"{app}_front"] != "02:42:0a:00:00:42"
    finally:
        compose_down(tmp_path, testenv.engine_host)
    # on its first network, compose refuses it (the engine is too old)
    (tmp_path / "compose.yaml").write_text(
        COMPOSE.format(app=app, image=testenv.image_v1, key="").replace(
            "back: {}\nnetworks", 'back: {mac_address: "02:42:0a:00:00:42"}\nnetworks'
        )
    )
    try:
        code, out = compose_up(tmp_path, testenv.engine_host)
        assert code != 0 and "requires API version 1.44" in out, out
    finally:
        compose_down(tmp_path, testenv.engine_host)
    compose_and_manifest(app, testenv.image_v1, 'mac_address: "02:42:0a:00:00:42"', tmp_path)
    text = refusal(tmp_path, h1)
    assert "services.web.networks.front.mac_address" in text, text
    assert "needs Docker API 1.44" in text and "Docker Engine 25" in text, text
    assert "speaks 1.41" in text, text
    m = load_manifest(tmp_path / "deploy.yml", ENV, {})
    (front,) = [a for a in m.service("web").networks if a.name == "front"]
    assert front.mac_address == "02:42:0a:00:00:42"


def test_gw_priority_needs_api_1_48_where_compose_drops_it(
    app: str, h1: DockerHost, testenv: TestEnv, tmp_path: Path
) -> None:
    compose_and_manifest(app, testenv.image_v1, "gw_priority: 10", tmp_path)
    try:
        code, out = compose_up(tmp_path, testenv.engine_host)
        assert code == 0, out
        engine = h1.client.api
        (c,) = engine.containers(filters={"label": f"com.docker.compose.project={app}"})
        nets = engine.inspect_container(c["Id"])["NetworkSettings"]["Networks"]
        assert {n: ep.get("GwPriority", 0) for n, ep in nets.items()} == {
            f"{app}_front": 0,
            f"{app}_back": 0,
        }  # dropped without a word
    finally:
        compose_down(tmp_path, testenv.engine_host)
    text = refusal(tmp_path, h1)
    assert "services.web.networks.front.gw_priority" in text, text
    assert "needs Docker API 1.48" in text and "Docker Engine 28.0" in text, text


def test_the_service_mac_and_its_first_networks_must_agree(app: str, tmp_path: Path) -> None:
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\nenvironments:\n  {ENV}: {{}}\n"
        "services:\n"
        "  web:\n    image: busybox\n    mac_address: 02:42:0a:00:00:01\n"
        "    networks:\n      front: {mac_address: 02:42:0a:00:00:02}\n"
        "networks:\n  front: {}\n"
    )
    with pytest.raises(InvalidInput) as e:
        load_manifest(tmp_path / "deploy.yml", ENV, {})
    text = str(e.value)
    assert "deploy.yml:9" in text and "services.web.networks.front.mac_address" in text, text
    assert "its MAC address on its first network" in text, text
