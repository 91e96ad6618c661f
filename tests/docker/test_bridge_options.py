"""A bridge network's driver options can take an interface of the host or open the
containers past Docker's port publishing (``deployer.manifest.policy.bridge_options``):
``com.docker.network.bridge.name`` of an interface that exists (a LAN bridge ``br0``)
makes the engine take that interface as the network's bridge, with the app's containers
on it; the gateway modes ``routed`` and ``nat-unprotected`` and
``trusted_host_interfaces`` open the containers to the machines the host routes for. Each
needs ``policy.allow: [host-lan]``, whether the manifest declares the network or it
already exists on the host and is joined as it is (the engine 20.10 here ignores the
gateway-mode options but stores them, as it stores any option: such a network is what a
newer engine would run). Refused with exit 2 before anything is created.

The bridge interfaces here are the test's own (``ip link add ... type bridge``), linked to
nothing; no test names a bridge of a network of the engine (engine 20.10 drops its default
network when a network is made on ``docker0``)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest

from deployer.errors import EXIT_INVALID
from tests.conftest import Cleanup
from tests.docker.hostif import own_bridge
from tests.docker.test_lan_networks import _containers, _remove_network, _run, _write
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

ROUTED = {"com.docker.network.bridge.gateway_mode_ipv4": "routed"}
UNPROTECTED = {"com.docker.network.bridge.gateway_mode_ipv6": "nat-unprotected"}
TRUSTED = {"com.docker.network.bridge.trusted_host_interfaces": "eth0"}


def _addresses(name: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return [
        f"{a['local']}/{a['prefixlen']}" for i in json.loads(out.stdout) for a in i["addr_info"]
    ]


def _bridge(cleanup: Cleanup) -> tuple[str, str]:
    """(a bridge interface of the test's own, up, with an address of its own; that
    address): removed after the app (last)."""
    name, net = own_bridge("rb", cleanup.later)
    return name, f"{net[1]}/24"


@pytest.mark.parametrize("options", [ROUTED, UNPROTECTED, TRUSTED, "bridge"])
def test_an_existing_network_with_such_options_needs_host_lan(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: dict[str, str] | str,
) -> None:
    if options == "bridge":
        options = {"com.docker.network.bridge.name": _bridge(cleanup)[0]}
    assert isinstance(options, dict)
    name = f"{app}-ext"
    engine.networks.create(name, driver="bridge", options=options)
    cleanup.later(lambda: _remove_network(engine, app, name))
    # the engine keeps the options it does not know (20.10: the gateway modes)
    assert options.items() <= engine.networks.get(name).attrs["Options"].items()
    monkeypatch.chdir(tmp_path)
    network = f"{{external: true, name: {name}}}"
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=False))
    assert _run(["validate", "-f", f], monkeypatch, testenv, capsys)[0] == 0
    ((option, value),) = options.items()
    for args in (["plan", "-f", f], ["deploy", "-f", f]):
        code, out = _run(args, monkeypatch, testenv, capsys)
        assert code == EXIT_INVALID, out
        assert "deploy.yml:10:" in out and "networks.lan" in out, out
        assert f'the network "{name}" (as it is on the host) is refused' in out, out
        assert f"its option {option}={value} " in out and '"host-lan"' in out, out
    assert _containers(engine, app) == []
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=True))
    code, out = _run(["plan", "-f", f], monkeypatch, testenv, capsys)
    assert code == 0, out


def test_the_engines_default_bridge_is_joined_without_an_entry(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The network ``bridge`` names its interface (``docker0``) in its options: it is the
    engine's own, where every ``docker run`` lands, not a bridge the app chose."""
    monkeypatch.chdir(tmp_path)
    f = str(_write(tmp_path, app, testenv.image_v1, "{external: true, name: bridge}", False))
    code, out = _run(["plan", "-f", f], monkeypatch, testenv, capsys)
    assert code == 0, out


def test_a_bridge_name_of_the_manifest_needs_host_lan_and_the_engine_takes_that_bridge(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bridge, address = _bridge(cleanup)
    real = f"{app}-prod-lan"
    cleanup.later(lambda: _remove_network(engine, app, real))
    monkeypatch.chdir(tmp_path)
    network = f"{{driver_opts: {{com.docker.network.bridge.name: {bridge}}}}}"
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=False))
    for args in (["validate", "-f", f], ["deploy", "-f", f]):
        code, out = _run(args, monkeypatch, testenv, capsys)
        assert code == EXIT_INVALID, out
        assert 'deploy.yml:10:55: networks.lan.driver_opts["com.docker.network.bridge.name"]' in out
        assert f"the host's interface {bridge} when there is one" in out, out
        assert '"host-lan"' in out, out
    assert _containers(engine, app) == []
    with pytest.raises(docker.errors.NotFound):
        engine.networks.get(real)
    assert _addresses(bridge) == [address]
    # allowed: what the engine does with it (measured on 20.10)
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=True))
    code, out = _run(["deploy", "-f", f], monkeypatch, testenv, capsys)
    assert code == 0, out
    (running,) = _containers(engine, app)
    ports = subprocess.run(
        ["ip", "-o", "link", "show", "master", bridge],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert ports.count("veth") == 1, ports  # the container is on the test's bridge
    (ipam,) = engine.networks.get(real).attrs["IPAM"]["Config"]
    gateway = ipam.get("Gateway") or ipam["Subnet"].rsplit(".", 1)[0] + ".1"
    prefix = ipam["Subnet"].split("/")[1]
    # the bridge's own address is gone, the network's gateway in its place
    assert _addresses(bridge) == [f"{gateway}/{prefix}"], (address, ipam)
    with contextlib.suppress(docker.errors.NotFound):
        engine.containers.get(running).remove(force=True)


def test_a_bridge_name_of_another_network_of_the_host_is_refused_whatever_the_policy(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its bridge is ``br-<ID[:12]>`` (the engine's name): a network of the manifest made
    on it would put the app's containers with that network's."""
    other = engine.networks.create(f"{app}-other", driver="bridge")
    cleanup.later(lambda: _remove_network(engine, app, f"{app}-other"))
    bridge = f"br-{other.id[:12]}"
    monkeypatch.chdir(tmp_path)
    network = f"{{driver_opts: {{com.docker.network.bridge.name: {bridge}}}}}"
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=True))
    assert _run(["validate", "-f", f], monkeypatch, testenv, capsys)[0] == 0
    for args in (["plan", "-f", f], ["deploy", "-f", f]):
        code, out = _run(args, monkeypatch, testenv, capsys)
        assert code == EXIT_INVALID, out
        assert 'networks.lan.driver_opts["com.docker.network.bridge.name"]' in out, out
        assert f'would be made on the bridge {bridge} of the network "{app}-other"' in out
        assert "the engine names the bridge itself" in out, out
    assert _containers(engine, app) == []
    with pytest.raises(docker.errors.NotFound):
        engine.networks.get(f"{app}-prod-lan")
