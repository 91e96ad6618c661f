"""A macvlan (or ipvlan) network puts the app's containers on the host's LAN, each with its
own address there, past the host's firewall and Docker's port publishing: it needs
``policy.allow: [host-lan]``, whether the manifest declares it or it already exists on
the host and the manifest joins it as ``external: true`` (whose driver the manifest never
states). Refused with exit 2 before any container exists.

Found this way: ``networks: {lan: {driver: macvlan, driver_opts: {parent: eth0}}}``, and
an external network another team made with ``docker network create -d macvlan``, both
validated and deployed without a word.

The networks here use a veth pair the test makes (linked to nothing) as their parent,
never one of the machine's interfaces."""

from __future__ import annotations

import contextlib
import io
import secrets
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def _parent(cleanup: Cleanup) -> str:
    """A veth pair of the test's own, up, removed after the app (last)."""
    name = "rt" + secrets.token_hex(4)
    made = subprocess.run(
        ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot make a veth pair here: {made.stderr.strip()}")
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    cleanup.later(lambda: subprocess.run(["ip", "link", "del", name], check=False))
    return name


def _remove_network(engine: docker.DockerClient, app: str, name: str) -> None:
    for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
        c.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        engine.networks.get(name).remove()


def _write(tmp_path: Path, app: str, image: str, network: str, allow: bool) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\nenvironments:\n  prod: {{}}\n"
        + ("policy: {allow: [host-lan]}\n" if allow else "")
        + f"services:\n  web:\n    image: {image}\n    init: true\n    networks: [lan]\n"
        + f"networks:\n  lan: {network}\n"
    )
    return path


def _run(
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    testenv: TestEnv,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """The exit code, and what was said (plan says it on stderr, deploy in its job log)."""
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue() + capsys.readouterr().err


def _containers(engine: docker.DockerClient, app: str) -> list[str]:
    flt = {"label": f"{L.APP}={app}"}
    return [c.name for c in engine.containers.list(all=True, filters=flt)]


def test_an_external_macvlan_network_needs_host_lan(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parent = _parent(cleanup)
    name = f"{app}-lan"
    engine.networks.create(name, driver="macvlan", options={"parent": parent})
    cleanup.later(lambda: _remove_network(engine, app, name))
    monkeypatch.chdir(tmp_path)
    network = f"{{external: true, name: {name}}}"
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=False))
    # the file says nothing of the driver
    assert _run(["validate", "-f", f], monkeypatch, testenv, capsys)[0] == 0
    for args in (["plan", "-f", f], ["deploy", "-f", f]):
        code, out = _run(args, monkeypatch, testenv, capsys)
        assert code == EXIT_INVALID, out
        assert "deploy.yml:10:" in out and "networks.lan" in out, out
        assert f'the network "{name}" (as it is on the host)' in out, out
        said = "its driver macvlan puts the containers on the network of the host's interface"
        assert f"{said} {parent}," in out, out
        assert '"host-lan"' in out, out
    assert _containers(engine, app) == []
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=True))
    code, out = _run(["plan", "-f", f], monkeypatch, testenv, capsys)
    assert code == 0, out


def test_a_macvlan_network_of_the_manifest_needs_host_lan(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parent = _parent(cleanup)
    cleanup.later(lambda: _remove_network(engine, app, f"{app}-prod-lan"))
    monkeypatch.chdir(tmp_path)
    network = f"{{driver: macvlan, driver_opts: {{parent: {parent}}}}}"
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=False))
    for args in (["validate", "-f", f], ["deploy", "-f", f]):
        code, out = _run(args, monkeypatch, testenv, capsys)
        assert code == EXIT_INVALID, out
        assert "deploy.yml:10:" in out and "networks.lan.driver" in out, out
        assert f"the host's interface {parent}" in out and '"host-lan"' in out, out
    assert _containers(engine, app) == []
    with pytest.raises(docker.errors.NotFound):
        engine.networks.get(f"{app}-prod-lan")
    # allowed, the engine makes it and the container joins it
    f = str(_write(tmp_path, app, testenv.image_v1, network, allow=True))
    code, out = _run(["deploy", "-f", f], monkeypatch, testenv, capsys)
    assert code == 0, out
    assert engine.networks.get(f"{app}-prod-lan").attrs["Driver"] == "macvlan"
    (running,) = _containers(engine, app)
    joined = engine.containers.get(running).attrs["NetworkSettings"]["Networks"]
    assert list(joined) == [f"{app}-prod-lan"]
