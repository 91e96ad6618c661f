"""``volumes_from: [container:NAME]`` gives the service every mount of a container of the
host: the safety policy judges that container's host paths as if the service bound them,
on the real engine, before anything changes.

Found this way: any container of the host could lend its mounts. A proxy or CI helper
that binds the Docker socket (Traefik, Portainer, a runner) is common on deploy hosts;
`volumes_from: [container:<it>]` passed `validate` and `deploy` with no `policy.allow`
entry, and the app's container had the host's Docker socket."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="deployer-lend-", dir="/tmp"))
    try:
        os.symlink("/var/run", root / "run")  # a harmless-looking name for /var/run
        (root / "data").mkdir()
        yield root
    finally:
        shutil.rmtree(root)


def _lender(
    engine: docker.DockerClient, testenv: TestEnv, name: str, binds: list[str]
) -> Iterator[str]:
    c = engine.containers.create(
        testenv.image_v1, ["sleep", "600"], name=name, volumes=binds, labels={"rt": "lender"}
    )
    try:
        yield name
    finally:
        c.remove(force=True)


@pytest.fixture
def socket_lender(engine: docker.DockerClient, testenv: TestEnv, app_name: str) -> Iterator[str]:
    yield from _lender(engine, testenv, f"{app_name}-lender", ["/var/run/docker.sock:/s.sock"])


@pytest.fixture
def link_lender(
    engine: docker.DockerClient, testenv: TestEnv, app_name: str, data_dir: Path
) -> Iterator[str]:
    yield from _lender(engine, testenv, f"{app_name}-linked", [f"{data_dir / 'run'}:/r:ro"])


@pytest.fixture
def data_lender(
    engine: docker.DockerClient, testenv: TestEnv, app_name: str, data_dir: Path
) -> Iterator[str]:
    yield from _lender(engine, testenv, f"{app_name}-data", [f"{data_dir / 'data'}:/data"])


def _deploy(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    monkeypatch: pytest.MonkeyPatch,
    lender: str,
    allow: str = "[foreign-container]",
) -> tuple[int, str]:
    """Deploy a service lending from ``lender``, a container of no app (so, unless told,
    with the entry that lets a container of another app lend)."""
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod: {}\n"
        f"policy: {{allow: {allow}}}\n"
        "services:\n"
        "  web:\n"
        f"    image: {testenv.image_v1}\n"
        f'    volumes_from: ["container:{lender}"]\n'
    )
    out = io.StringIO()
    assert main(["validate", "-f", str(path)], out=out) == 0, out.getvalue()
    out = io.StringIO()
    return main(["deploy", "-f", str(path)], out=out), out.getvalue()


def _of_app(engine: docker.DockerClient, app: str) -> list[str]:
    found = engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})
    return [c.name for c in found]


def test_a_container_lending_the_docker_socket_is_refused(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    socket_lender: str,
) -> None:
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, socket_lender)
    err = capsys.readouterr().err
    assert code == EXIT_INVALID, out + err
    assert "deploy.yml:8:" in err and "services.web.volumes_from[0]" in err, err
    assert f'the container "{socket_lender}" mounts the host path /var/run/docker.sock' in err
    assert '"docker-socket"' in err, err
    assert _of_app(engine, app) == []  # no container of the app, no probe left


def test_a_container_lending_a_link_to_var_run_is_refused(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    link_lender: str,
) -> None:
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, link_lender)
    err = capsys.readouterr().err
    assert code == EXIT_INVALID, out + err
    assert "a symlink to /run" in err, err
    assert _of_app(engine, app) == []


def test_a_container_lending_data_deploys(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    data_lender: str,
) -> None:
    code, out = _deploy(tmp_path, app, testenv, monkeypatch, data_lender)
    assert code == 0, out
    (name,) = _of_app(engine, app)
    assert engine.containers.get(name).exec_run(["sh", "-c", "test -d /data"]).exit_code == 0


def test_a_container_of_another_app_lends_only_with_its_entry(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A container of another app (here one holding a named volume of its data) lends its
    volumes only with ``policy.allow: [foreign-container]``; exit 0 before, and the app's
    container read the other app's volume."""
    volume = f"{app}-other-data"
    lender = engine.containers.create(
        testenv.image_v1,
        ["sleep", "600"],
        name=f"{app}-other",
        volumes=[f"{volume}:/data"],
        labels={L.APP: f"{app}x", L.ENVIRONMENT: "prod", L.MANAGED: "true"},
    )
    try:
        code, out = _deploy(tmp_path, app, testenv, monkeypatch, lender.name, allow="[]")
        err = capsys.readouterr().err
        assert code == EXIT_INVALID, out + err
        assert "deploy.yml:8:" in err and "services.web.volumes_from[0]" in err, err
        assert f'the container "{lender.name}" is not this app' in err, err
        assert f'the app "{app}x"' in err and '"foreign-container"' in err, err
        assert _of_app(engine, app) == []
        code, out = _deploy(tmp_path, app, testenv, monkeypatch, lender.name)
        assert code == 0, out
    finally:
        for c in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
            c.remove(force=True)
        lender.remove(force=True, v=False)
        engine.volumes.get(volume).remove(force=True)
