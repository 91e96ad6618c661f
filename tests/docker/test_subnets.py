"""An explicit ipam subnet the host already routes: `plan` and `deploy` refuse it at its
line (exit 2) before anything of the app changes. Without the check the engine created the
bridge as asked and it took the host's route (here an interface of the test's own
stands for the host's LAN: the route moved from it to the new bridge)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.docker.subnets import local_routes, url_addresses
from tests.cli import cli
from tests.docker.hostif import own_bridge
from tests.relay import Relay
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  web:
    image: {image}
    networks: [lan, other]
networks:
  other: {{}}
  lan:
    ipam:
      config:
        - subnet: {subnet}
"""


@pytest.fixture
def lan() -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    """An interface of the test's own with a /24: a network the host routes, as a LAN."""
    undo: list[Callable[[], object]] = []
    try:
        yield own_bridge("dsub", undo.append)
    finally:
        for f in undo:
            f()


def _routes_to(net: ipaddress.IPv4Network) -> list[str]:
    return sorted(i for i, n in local_routes() if n == net)


def _app_networks(engine: docker.DockerClient, app: str) -> list[str]:
    return sorted(n.name for n in engine.networks.list(filters={"label": f"{L.APP}={app}"}))


def _write(tmp_path: Path, app: str, host: str, image: str, subnet: str) -> Path:
    (tmp_path / "compose.yml").write_text(COMPOSE.format(image=image, subnet=subnet))
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        f"app: {app}\ncompose: [compose.yml]\nenvironments:\n  production:\n    hosts: [{host}]\n"
    )
    return manifest


def test_a_subnet_the_host_routes_is_refused_before_any_change(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    lan: tuple[str, ipaddress.IPv4Network],
    capsys: pytest.CaptureFixture[str],
) -> None:
    iface, net = lan
    assert _routes_to(net) == [iface]
    manifest = _write(tmp_path, app, testenv.engine_host, testenv.image_v1, str(net))
    for command in ("plan", "deploy"):
        code, _ = cli(command, "-f", str(manifest))
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        assert "Traceback" not in err
        assert (
            f"compose.yml:10:19: networks.lan.ipam.config[0].subnet: on {testenv.engine_host}, "
            f"the subnet {net} of the network"
        ) in err, err
        assert f"the route of the host's interface {iface} ({net})" in err, err
        assert "remove `ipam.config`" in err, err
        # nothing created: not the other network either, and the route is the LAN's still
        assert _app_networks(engine, app) == [], command
        assert _routes_to(net) == [iface], command

    # a part of it (a /26 inside the /24) takes part of the route: refused the same way
    manifest = _write(tmp_path, app, testenv.engine_host, testenv.image_v1, f"{net[64]}/26")
    code, _ = cli("plan", "-f", str(manifest))
    assert code == 2
    assert f"({net})" in capsys.readouterr().err


def test_a_subnet_holding_the_address_the_host_is_reached_at_over_ssh_is_refused(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    lan: tuple[str, ipaddress.IPv4Network],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reached over SSH at an address of its own, the host's routes are not visible: the
    address it is reached at is, and a subnet holding it would cut the host off from it."""
    iface, net = lan
    real = urllib.parse.urlsplit(testenv.ssh_host)
    relay = Relay(real.port or 22, bind=str(net[1]))
    try:
        env = testenv.ssh_environ()
        env["SSH_KNOWN_HOSTS"] = env["SSH_KNOWN_HOSTS"].replace(
            f"[127.0.0.1]:{real.port}", f"[{net[1]}]:{relay.port}"
        )
        for k, v in env.items():
            if k != "DOCKER_HOST":
                monkeypatch.setenv(k, v)
        monkeypatch.delenv("DOCKER_HOST", raising=False)
        host = f"ssh://{real.username}@{net[1]}:{relay.port}"
        manifest = _write(tmp_path, app, host, testenv.image_v1, f"{net[0]}/28")
        code, _ = cli("deploy", "-f", str(manifest))
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"the host's own address {net[1]} ({net[1]}/32)" in err, err
        assert _app_networks(engine, app) == []
        assert _routes_to(net) == [iface]
    finally:
        relay.close()


def test_the_addresses_known_for_a_host_url() -> None:
    assert url_addresses("unix:///var/run/docker.sock") == []
    assert url_addresses("tcp://192.0.2.7:2376") == [ipaddress.ip_address("192.0.2.7")]
    assert url_addresses("ssh://deploy@[2001:db8::5]:22") == [ipaddress.ip_address("2001:db8::5")]
    assert ipaddress.ip_address("127.0.0.1") in url_addresses("ssh://deploy@localhost")
    # a name that does not resolve here (a jump host's) gives none: not a refusal
    assert url_addresses("ssh://deploy@no-such-host.invalid") == []


def test_this_machines_routes_are_read_as_ip_route_shows_them() -> None:
    if shutil.which("ip") is None:
        pytest.skip("needs ip(8)")
    shown = subprocess.run(
        ["ip", "-4", "route", "show", "table", "main"], capture_output=True, text=True, check=True
    ).stdout
    expected = set()
    for line in shown.splitlines():
        f = line.split()
        if f and f[0] != "default" and "dev" in f:
            expected.add((f[f.index("dev") + 1], ipaddress.ip_network(f[0], strict=False)))
    got = {(i, n) for i, n in local_routes() if n.version == 4}
    assert expected and expected <= got, (expected, got)
