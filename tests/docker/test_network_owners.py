"""A network that exists on the host is joined as it is: a manifest naming another app's
network (``external: true``, or a ``name:`` the deployer finds already there) put this
app's containers on it, beside that app's database on an internal network. Before
anything changes, each network the services join that exists is judged by its labels:
another app's or environment's is refused (exit 2) unless ``policy.allow`` lists
``foreign-network``; another compose project's needs ``external: true``."""

from __future__ import annotations

import io
from pathlib import Path

import docker
import pytest
from docker.models.networks import Network

from deployer import labels as L
from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def _network(
    engine: docker.DockerClient, cleanup: Cleanup, name: str, labels: dict[str, str]
) -> Network:
    """An internal network of another app, as its deploy makes it (where its database
    would be)."""
    net = engine.networks.create(name, internal=True, labels=labels)

    def remove() -> None:  # after the containers on it
        for c in engine.containers.list(all=True, filters={"network": net.name}):
            c.remove(force=True)
        net.remove()

    cleanup.later(remove)
    return net


def _deploy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    testenv: TestEnv,
    app: str,
    network: str,
    allow: str = "",
) -> tuple[int, str]:
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\nenvironments:\n  prod: {{}}\n"
        + (f"policy: {{allow: [{allow}]}}\n" if allow else "")
        + f"services:\n  web:\n    image: {testenv.image_v1}\n    networks: [b]\n"
        f"networks:\n  b: {network}\n"
    )
    out = io.StringIO()
    code = main(["deploy", "-f", str(path)], out=out)
    return code, out.getvalue()


def _ours(engine: docker.DockerClient, app: str) -> list[str]:
    return [c.name for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})]


@pytest.mark.parametrize("external", [True, False])
def test_another_apps_network_is_refused(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    external: bool,
) -> None:
    other = f"other{app[-6:]}"
    net = _network(engine, cleanup, f"{other}-prod-backend", {L.APP: other, L.ENVIRONMENT: "prod"})
    spec = f"{{{'external: true, ' if external else ''}name: {net.name}}}"
    code, out = _deploy(tmp_path, monkeypatch, testenv, app, spec)
    said = out + capsys.readouterr().err
    assert code == EXIT_INVALID, said
    assert "deploy.yml:9:6: networks.b:" in said, said
    assert f"the network \"{net.name}\" is not this app's and environment's" in said, said
    assert f'belongs to the app "{other}"' in said and '"foreign-network"' in said, said
    assert _ours(engine, app) == []
    net.reload()
    assert net.containers == []


def test_another_apps_network_is_joined_with_its_entry(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = f"other{app[-6:]}"
    net = _network(engine, cleanup, f"{other}-prod-shared", {L.APP: other, L.ENVIRONMENT: "prod"})
    spec = f"{{external: true, name: {net.name}}}"
    code, out = _deploy(tmp_path, monkeypatch, testenv, app, spec, allow="foreign-network")
    assert code == 0, out
    net.reload()
    assert [c.name for c in net.containers] == _ours(engine, app)


def test_another_environments_network_is_refused(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A review app naming production's network, as a review app naming production's
    volume is refused."""
    net = _network(
        engine, cleanup, f"{app}-production-db", {L.APP: app, L.ENVIRONMENT: "production"}
    )
    code, out = _deploy(tmp_path, monkeypatch, testenv, app, f"{{name: {net.name}}}")
    said = out + capsys.readouterr().err
    assert code == EXIT_INVALID, said
    assert 'environment "production"' in said, said
    assert _ours(engine, app) == []


def test_a_compose_projects_network_needs_external_and_a_hand_made_one_is_joined(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    compose = _network(engine, cleanup, f"{app}-proj_default", {L.COMPOSE_PROJECT: f"{app}-proj"})
    code, out = _deploy(tmp_path, monkeypatch, testenv, app, f"{{name: {compose.name}}}")
    said = out + capsys.readouterr().err
    assert code == EXIT_INVALID, said
    assert f'docker compose created it for the project "{app}-proj"' in said, said
    assert "external: true" in said, said
    assert _ours(engine, app) == []
    # declared external: the manifest says it joins a network it does not own
    spec = f"{{external: true, name: {compose.name}}}"
    code, out = _deploy(tmp_path, monkeypatch, testenv, app, spec)
    assert code == 0, out
    # a network made by hand (an operator's shared one) is joined as before
    hand = _network(engine, cleanup, f"{app}-web", {})
    code, out = _deploy(
        tmp_path, monkeypatch, testenv, app, f"{{external: true, name: {hand.name}}}"
    )
    assert code == 0, out


def test_a_compose_projects_network_another_app_adopted_is_refused(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A compose project's network is this app's when its compose project has that name
    (adoption), unless a container of another app is on it: a manifest giving its compose
    file the other app's project name does not make the network its own (as for volumes)."""
    project = f"{app}p"
    net = _network(engine, cleanup, f"{project}_default", {L.COMPOSE_PROJECT: project})
    theirs = engine.containers.run(
        testenv.image_v1,
        name=f"{app}-theirs",
        detach=True,
        network=net.name,
        labels={L.APP: f"{app}x", L.ENVIRONMENT: "prod", L.MANAGED: "true"},
    )
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docker-compose.yml").write_text(
        f"name: {project}\nservices:\n  web:\n    image: {testenv.image_v1}\n"
    )
    (tmp_path / "deploy.yml").write_text(
        f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  prod: {{}}\n"
    )
    out = io.StringIO()
    code = main(["deploy", "-f", str(tmp_path / "deploy.yml")], out=out)
    said = out.getvalue() + capsys.readouterr().err
    assert code == EXIT_INVALID, said
    assert f'the network "{net.name}" is not this app\'s' in said, said
    assert f'the app "{app}x"' in said, said
    assert _ours(engine, app) == []
    theirs.remove(force=True)  # nobody else's any more: the compose project's own
    out = io.StringIO()
    code = main(["deploy", "-f", str(tmp_path / "deploy.yml")], out=out)
    assert code == 0, out.getvalue() + capsys.readouterr().err
