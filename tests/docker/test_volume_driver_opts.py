"""A named volume of the local driver mounts what its ``driver_opts`` say: ``o: bind`` with
``device: /var/run`` is a bind mount of the host's ``/var/run``. The safety policy judges
such a volume's host paths as it judges a bind source, on the real engine: the deploy is
refused (exit 2) before any container or volume exists, and a harmless path still deploys.

Found this way: `validate` and `deploy` accepted ``volumes: {run: {driver_opts: {type:
none, o: bind, device: /var/run}}}`` with no ``policy.allow`` entry, and the container
saw the host's Docker socket at ``/run/docker.sock`` of the volume."""

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
from tests.testenv import TestEnv, unique_app

pytestmark = pytest.mark.integration


@pytest.fixture
def app_name() -> str:
    return "rt" + unique_app()


@pytest.fixture
def links() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="deployer-volopts-", dir="/tmp"))
    try:
        (root / "data").mkdir()
        os.symlink("/var/run", root / "run")  # a harmless-looking name for /var/run
        yield root
    finally:
        shutil.rmtree(root)  # the link, never what it points to


def _env(monkeypatch: pytest.MonkeyPatch, testenv: TestEnv, tmp_path: Path) -> None:
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)


def _manifest(tmp_path: Path, app: str, image: str, opts: str, allow: str = "[]") -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod: {}\n"
        f"policy: {{allow: {allow}}}\n"
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        "    volumes:\n"
        "      - hostpath:/mnt/host\n"
        "volumes:\n"
        "  hostpath:\n"
        f"    driver_opts: {opts}\n"
    )
    return path


def _of_app(engine: docker.DockerClient, app: str) -> tuple[list[str], list[str]]:
    flt = {"label": f"{L.APP}={app}"}
    containers = [c.name for c in engine.containers.list(all=True, filters=flt)]
    volumes = [v.name for v in engine.volumes.list(filters=flt)]
    return containers, volumes


@pytest.mark.parametrize(
    "opts",
    [
        "{type: none, o: bind, device: /var/run}",
        '{type: none, o: "ro,rbind", device: //var/./run/}',
        "{o: bind, device: /}",
        "{type: ext4, device: /dev/sda1}",
        '{type: overlay, device: overlay, o: "lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"}',
    ],
)
def test_a_volume_binding_a_protected_host_path_is_refused(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    opts: str,
) -> None:
    _env(monkeypatch, testenv, tmp_path)
    path = _manifest(tmp_path, app, testenv.image_v1, opts)
    out = io.StringIO()
    assert main(["validate", "-f", str(path)], out=out) == EXIT_INVALID, out.getvalue()
    assert "volumes.hostpath.driver_opts" in out.getvalue(), out.getvalue()
    assert "deploy.yml:12:" in out.getvalue(), out.getvalue()  # the driver_opts' own line
    assert '"system-bind"' in out.getvalue(), out.getvalue()
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == EXIT_INVALID, out.getvalue()
    assert _of_app(engine, app) == ([], [])  # no container, no volume


def test_a_volume_binding_a_link_to_a_protected_path_is_refused_on_the_host(
    tmp_path: Path,
    links: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The written path is harmless; on the host it is a symlink to /var/run."""
    _env(monkeypatch, testenv, tmp_path)
    opts = f"{{type: none, o: bind, device: {links / 'run'}}}"
    path = _manifest(tmp_path, app, testenv.image_v1, opts)
    out = io.StringIO()
    assert main(["validate", "-f", str(path)], out=out) == 0, out.getvalue()
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == EXIT_INVALID, out.getvalue()
    assert "volumes.hostpath.driver_opts" in out.getvalue(), out.getvalue()
    assert "is a symlink to /run" in out.getvalue(), out.getvalue()
    assert _of_app(engine, app) == ([], [])


def test_a_volume_binding_a_data_directory_deploys(
    tmp_path: Path,
    links: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _env(monkeypatch, testenv, tmp_path)
    (links / "data" / "marker").write_text("here\n")
    opts = f"{{type: none, o: bind, device: {links / 'data'}}}"
    path = _manifest(tmp_path, app, testenv.image_v1, opts)
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == 0, out.getvalue()
    (name,) = _of_app(engine, app)[0]
    got = engine.containers.get(name).exec_run(["cat", "/mnt/host/marker"])
    assert got.output == b"here\n", got
