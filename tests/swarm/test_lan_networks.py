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
