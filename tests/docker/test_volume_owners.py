"""One app's data stays its own: a volume or a lending container of another app or
environment is refused on the real engine before anything changes (exit 2, no
container, the volume untouched); this app's own, compose's of its project, and a volume
declared ``external: true`` still deploy.

Found this way: a named volume is created when missing and mounted as it is when it
exists, so a top-level ``volumes: {data: {name: <another app's volume>}}`` deployed with
exit 0 and the app's container read and wrote the other app's data;
``volumes_from: [container:<another app's container>]`` did the same with that
container's named volumes. Docker Compose warns ("already exists but was created for
project ...") and goes ahead."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

SECRET_DATA = "data of the other app"


@pytest.fixture
def volumes(engine: docker.DockerClient, app: str) -> Iterator[list[str]]:
    """Volumes the test makes (and the app's own), removed at the end."""
    made: list[str] = []
    yield made
    for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
        c.remove(force=True)
    found = engine.volumes.list(filters={"label": f"{L.APP}={app}"})
    for name in {*made, *(v.name for v in found)}:
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(name).remove(force=True)


def _victim(
    engine: docker.DockerClient, testenv: TestEnv, name: str, labels: dict[str, str]
) -> None:
    """A volume holding a file, as another app's data would."""
    engine.volumes.create(name, labels=labels)
    engine.containers.run(
        testenv.image_v1,
        ["sh", "-c", f"echo '{SECRET_DATA}' > /v/file"],
        volumes=[f"{name}:/v"],
        remove=True,
        name=f"{name}-writer",
    )


def _deploy(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    monkeypatch: pytest.MonkeyPatch,
    volume: str,
    *,
    external: bool = False,
    allow: str = "",
) -> tuple[int, str]:
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod: {}\n"
        "services:\n"
        "  web:\n"
        f"    image: {testenv.image_v1}\n"
        "    volumes: [data:/data]\n"
        "volumes:\n"
        "  data:\n"
        f"    name: {volume}\n"
        + ("    external: true\n" if external else "")
        + (f"policy: {{allow: [{allow}]}}\n" if allow else "")
    )
    out = io.StringIO()
    assert main(["validate", "-f", str(path)], out=out) == 0, out.getvalue()
    out = io.StringIO()
    return main(["deploy", "-f", str(path)], out=out), out.getvalue()


def _of_app(engine: docker.DockerClient, app: str) -> list[str]:
    return [c.name for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})]


OTHERS = {
    "another app": ({L.APP: "OTHER", L.ENVIRONMENT: "prod", L.MANAGED: "true"}, "the app"),
    "another environment": ({L.APP: "SELF", L.ENVIRONMENT: "staging"}, '"staging"'),
    "another compose project": (
        {"com.docker.compose.project": "rt2else", "com.docker.compose.volume": "data"},
        'for the project "rt2else"',
    ),
    "made by hand": ({}, "no label"),
}


@pytest.mark.parametrize("owner", list(OTHERS))
def test_a_volume_of_another_app_or_environment_is_refused(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    volumes: list[str],
    owner: str,
) -> None:
    labels, said = OTHERS[owner]
    labels = {k: v.replace("OTHER", f"{app}x").replace("SELF", app) for k, v in labels.items()}
    name = f"{app}-victim-data"
    volumes.append(name)
    _victim(engine, testenv, name, labels)
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, name)
    err = capsys.readouterr().err
    assert code == EXIT_INVALID, out + err
    assert "deploy.yml:10:" in err and "volumes.data.name:" in err, err
    assert f'the volume "{name}" already exists' in err and said in err, err
    assert "external: true" in err, err
    assert _of_app(engine, app) == []  # nothing of the app was created
    assert engine.volumes.get(name).attrs["Labels"] in (labels, None)  # untouched


def test_this_apps_volume_and_an_external_one_deploy(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    volumes: list[str],
) -> None:
    own = {L.APP: app, L.ENVIRONMENT: "prod", L.MANAGED: "true"}
    name = f"{app}-own-data"
    volumes.append(name)
    _victim(engine, testenv, name, own)
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, name)
    assert code == 0, out
    (web,) = _of_app(engine, app)
    got = engine.containers.get(web).exec_run(["cat", "/data/file"])
    assert got.output.decode().strip() == SECRET_DATA  # the app's own data, kept
    # a volume declared external that is no app's (made by hand, shared on purpose)
    shared = f"{app}-shared-data"
    volumes.append(shared)
    _victim(engine, testenv, shared, {})
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, shared, external=True)
    assert code == 0, out
    # and a second deploy over the volume this app created passes too
    volumes.append(f"{app}-fresh-data")
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, f"{app}-fresh-data")
    assert code == 0, out
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, f"{app}-fresh-data")
    assert code == 0, out


def test_a_compose_projects_volume_another_app_adopted_is_refused(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    volumes: list[str],
) -> None:
    """A compose project's volume is this app's when the app's compose project has that
    name (adoption), unless a container of another app mounts it: a manifest that gives
    its compose file the other app's project name does not make the volume its own."""
    project = f"{app}p"
    name = f"{project}_data"
    volumes.append(name)
    _victim(
        engine,
        testenv,
        name,
        {"com.docker.compose.project": project, "com.docker.compose.volume": "data"},
    )
    user = engine.containers.create(
        testenv.image_v1,
        ["sleep", "600"],
        name=f"{app}-owner",
        volumes=[f"{name}:/data"],
        labels={L.APP: f"{app}x", L.ENVIRONMENT: "prod", L.MANAGED: "true"},
    )
    try:
        for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "docker-compose.yml").write_text(
            f"name: {project}\n"
            "services:\n"
            "  web:\n"
            f"    image: {testenv.image_v1}\n"
            "    volumes: [data:/data]\n"
            "volumes:\n"
            "  data: {}\n"
        )
        (tmp_path / "deploy.yml").write_text(
            f"app: {app}\ncompose: [docker-compose.yml]\nenvironments:\n  prod: {{}}\n"
        )
        out = io.StringIO()
        code = main(["deploy", "-f", str(tmp_path / "deploy.yml")], out=out)
        err = capsys.readouterr().err
        assert code == EXIT_INVALID, out.getvalue() + err
        assert f'the volume "{name}" already exists' in err, err
        assert f'the app "{app}x"' in err, err
        assert _of_app(engine, app) == []
        user.remove(force=True)  # nobody else's any more: the compose project's own
        out = io.StringIO()
        code = main(["deploy", "-f", str(tmp_path / "deploy.yml")], out=out)
        assert code == 0, out.getvalue() + capsys.readouterr().err
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            user.remove(force=True)
        for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
            c.remove(force=True)
        for n in engine.networks.list(names=[f"{project}_default"]):
            n.remove()


def test_the_edge_proxys_volume_is_refused_even_external(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    volumes: list[str],
) -> None:
    """The edge proxy's volumes hold every app's certificates and private keys: an app
    naming one, even ``external: true`` (which skips the owner check, as sharing is
    meant), is refused unless it says it manages the proxy (``edge-proxy``). Before, it
    deployed with exit 0 and its container read the keys."""
    name = f"{app}-edge-data"
    volumes.append(name)
    _victim(engine, testenv, name, {})
    edge = engine.containers.create(
        testenv.image_v1,
        ["sleep", "600"],
        name=f"{app}-edge",
        volumes=[f"{name}:/data"],
        labels={L.MANAGED: "true", L.ROLE: L.ROLE_EDGE},
    )
    try:
        code, out = _deploy(tmp_path, app, testenv, monkeypatch, name, external=True)
        err = capsys.readouterr().err
        assert code == EXIT_INVALID, out + err
        assert "services.web.volumes[0]:" in err, err
        assert f'the volume "{name}" is the edge proxy\'s ({app}-edge)' in err, err
        assert '"edge-proxy"' in err, err
        assert _of_app(engine, app) == []
        code, out = _deploy(
            tmp_path, app, testenv, monkeypatch, name, external=True, allow="edge-proxy"
        )
        assert code == 0, out + capsys.readouterr().err
    finally:
        edge.remove(force=True)


def test_an_external_volume_of_another_app_needs_foreign_volume(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    volumes: list[str],
) -> None:
    """``external: true`` skipped the owner check: a manifest naming another app's (or
    environment's) volume so mounted its data (exit 0 before, the container reading the
    other's file). Its data is that app's: the manifest says it reaches for it with an
    entry a reviewer sees."""
    for labels in (
        {L.APP: f"{app}x", L.ENVIRONMENT: "prod"},
        {L.APP: app, L.ENVIRONMENT: "staging"},
    ):
        name = f"{app}-{labels[L.ENVIRONMENT]}{len(volumes)}-data"
        volumes.append(name)
        _victim(engine, testenv, name, labels)
        code, out = _deploy(tmp_path, app, testenv, monkeypatch, name, external=True)
        err = capsys.readouterr().err
        assert code == EXIT_INVALID, out + err
        assert "deploy.yml:9:" in err and "volumes.data:" in err, err
        assert f'the external volume "{name}" is not this app\'s' in err, err
        assert '"foreign-volume"' in err, err
        assert _of_app(engine, app) == []
    code, out = _deploy(
        tmp_path, app, testenv, monkeypatch, name, external=True, allow="foreign-volume"
    )
    assert code == 0, out
    (web,) = _of_app(engine, app)
    got = engine.containers.get(web).exec_run(["cat", "/data/file"])
    assert got.output.decode().strip() == SECRET_DATA
