"""A Swarm macvlan network (``--scope swarm --config-from`` a config-only network naming
the parent interface) puts the stack's tasks on the host's LAN: an ``external`` one, whose
driver the manifest never states, needs ``policy.allow: [host-lan]`` as on a host
(``tests/docker/test_lan_networks.py``), refused before anything changes (exit 2).

The parent is a veth pair of the test's own, linked to nothing."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.swarm.helpers import cli
from tests.swarm.test_volume_owners import services_of
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
{allow}services:
  web:
    image: {image}
    init: true
    networks: [lan]
networks:
  lan: {{external: true, name: {network}}}
"""


@pytest.fixture
def swarm_lan(swarm: docker.DockerClient, testenv: TestEnv) -> Iterator[tuple[str, str]]:
    """(the Swarm's macvlan network, its parent): made with the docker CLI (docker-py
    cannot make a config-only network), removed after."""
    name = "rt" + secrets.token_hex(4)
    made = subprocess.run(
        ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot make a veth pair here: {made.stderr.strip()}")
    env = {"DOCKER_HOST": testenv.engine_host, "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def docker_(*args: str) -> None:
        subprocess.run(["docker", *args], env=env, check=True, capture_output=True)

    try:
        docker_("network", "create", "--config-only", "-o", f"parent={name}", f"{name}-cfg")
        docker_("network", "create", "-d", "macvlan", "--scope", "swarm", "--config-from",
                f"{name}-cfg", f"{name}-lan")  # fmt: skip
        yield f"{name}-lan", name
    finally:
        for net in (f"{name}-lan", f"{name}-cfg"):
            subprocess.run(
                ["docker", "network", "rm", net], env=env, capture_output=True, check=False
            )
        subprocess.run(["ip", "link", "del", name], check=False)


def test_an_external_swarm_macvlan_network_needs_host_lan(
    swarm: docker.DockerClient,
    swarm_app: str,
    swarm_lan: tuple[str, str],
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    network, parent = swarm_lan
    env = {"DOCKER_HOST": testenv.engine_host}
    f = tmp_path / "deploy.yml"
    fields = {"app": swarm_app, "image": testenv.image_v1, "network": network}
    f.write_text(MANIFEST.format(**fields, allow=""))
    for args in (["plan"], ["deploy", "--report-dir", str(tmp_path)]):
        code, out = cli(*args, "-f", str(f), env=env)
        out += capsys.readouterr().err  # plan says it on stderr, deploy in its job log
        assert code == 2, out
        assert "deploy.yml:11:" in out and "networks.lan" in out, out
        assert f'the network "{network}" (as it is on the host)' in out, out
        said = "its driver macvlan puts the containers on the network of the host's interface"
        assert f"{said} {parent}," in out, out
        assert '"host-lan"' in out, out
    assert services_of(swarm, swarm_app) == []
    f.write_text(MANIFEST.format(**fields, allow="policy: {allow: [host-lan]}\n"))
    code, out = cli("plan", "-f", str(f), env=env)
    assert code == 0, out + capsys.readouterr().err


@pytest.fixture
def swarm_routed(swarm: docker.DockerClient, testenv: TestEnv) -> Iterator[str]:
    """A Swarm bridge network (``--scope swarm --config-from`` a config-only network)
    whose options say ``gateway_mode_ipv4=routed``, removed after."""
    name = "rt" + secrets.token_hex(4)
    env = {"DOCKER_HOST": testenv.engine_host, "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def docker_(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, check=False
        )

    try:
        mode = "com.docker.network.bridge.gateway_mode_ipv4=routed"
        assert (
            docker_("network", "create", "--config-only", "-o", mode, f"{name}-cfg").returncode == 0
        )
        made = docker_("network", "create", "-d", "bridge", "--scope", "swarm",
                       "--config-from", f"{name}-cfg", f"{name}-br")  # fmt: skip
        if made.returncode != 0:
            pytest.skip(f"cannot make a Swarm bridge network here: {made.stderr.strip()}")
        yield f"{name}-br"
    finally:
        for net in (f"{name}-br", f"{name}-cfg"):
            docker_("network", "rm", net)


def test_an_external_swarm_bridge_network_in_routed_mode_needs_host_lan(
    swarm: docker.DockerClient,
    swarm_app: str,
    swarm_routed: str,
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its options are the config-only network's: judged as a host's bridge network's
    (``tests/docker/test_bridge_options.py``)."""
    env = {"DOCKER_HOST": testenv.engine_host}
    f = tmp_path / "deploy.yml"
    fields = {"app": swarm_app, "image": testenv.image_v1, "network": swarm_routed}
    f.write_text(MANIFEST.format(**fields, allow=""))
    for args in (["plan"], ["deploy", "--report-dir", str(tmp_path)]):
        code, out = cli(*args, "-f", str(f), env=env)
        out += capsys.readouterr().err
        assert code == 2, out
        assert "deploy.yml:11:" in out and "networks.lan" in out, out
        assert f'the network "{swarm_routed}" (as it is on the host)' in out, out
        assert "gateway_mode_ipv4=routed turns off NAT" in out and '"host-lan"' in out, out
    assert services_of(swarm, swarm_app) == []
    f.write_text(MANIFEST.format(**fields, allow="policy: {allow: [host-lan]}\n"))
    code, out = cli("plan", "-f", str(f), env=env)
    assert code == 0, out + capsys.readouterr().err
