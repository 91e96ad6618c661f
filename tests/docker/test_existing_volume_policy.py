"""A named volume that already exists on the host mounts what its own driver options say,
whatever the manifest writes: an ``external: true`` volume states no options at all. The
safety policy judges the host paths of the volume as it is on the host, as it judges a
bind source: the deploy is refused (exit 2) before any container exists.

Found this way: another app (or a hand) made a volume with ``o: bind, device: /etc`` (its
own policy allowing it); a manifest with ``volumes: {conf: {external: true, name: <it>}}``
and no ``policy.allow`` entry validated and deployed, and its container saw the host's
/etc at the mount."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="deployer-extvol-", dir="/tmp"))
    try:
        (root / "marker").write_text("here\n")
        yield root
    finally:
        shutil.rmtree(root)


def _volume(engine: docker.DockerClient, cleanup: Cleanup, device: str, name: str) -> str:
    """A volume of the local driver binding ``device``, as another app's deploy makes it."""
    engine.volumes.create(
        name,
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": device},
        labels={L.APP: "other" + name[-6:], L.ENVIRONMENT: "prod"},
    )

    def remove() -> None:  # after the app's containers, which hold it
        for c in engine.containers.list(all=True, filters={"volume": name}):
            c.remove(force=True)
        engine.volumes.get(name).remove(force=True)

    cleanup.later(remove)
    return name


def _deploy(
    tmp_path: Path, app: str, image: str, volume: str, monkeypatch: pytest.MonkeyPatch, env: str
) -> tuple[int, str]:
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", env)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deploy.yml"
    path.write_text(
        # another app's volume: foreign-volume lets the owner check pass, the path is judged
        f"app: {app}\nenvironments:\n  prod: {{}}\npolicy: {{allow: [foreign-volume]}}\n"
        f"services:\n  web:\n    image: {image}\n"
        f"    volumes: [conf:/mnt/conf]\nvolumes:\n  conf: {{external: true, name: {volume}}}\n"
    )
    out = io.StringIO()
    assert main(["validate", "-f", str(path)], out=out) == 0, out.getvalue()
    out = io.StringIO()
    code = main(["deploy", "-f", str(path)], out=out)
    return code, out.getvalue()


def _containers(engine: docker.DockerClient, app: str) -> list[str]:
    flt = {"label": f"{L.APP}={app}"}
    return [c.name for c in engine.containers.list(all=True, filters=flt)]


@pytest.mark.parametrize("device", ["/etc", "//var/./run/"])
def test_an_external_volume_binding_a_protected_path_is_refused(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    device: str,
) -> None:
    volume = _volume(engine, cleanup, device, f"{app}-hostconf")
    code, out = _deploy(tmp_path, app, testenv.image_v1, volume, monkeypatch, testenv.engine_host)
    assert code == EXIT_INVALID, out
    assert "services.web.volumes[0]" in out, out
    assert f'the volume "{volume}" (as it is on the host) mounts' in out, out
    assert "the safety policy refuses it: " in out, out
    assert _containers(engine, app) == []


def test_an_external_volume_binding_a_data_directory_deploys(
    tmp_path: Path,
    data_dir: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volume = _volume(engine, cleanup, str(data_dir), f"{app}-data")
    code, out = _deploy(tmp_path, app, testenv.image_v1, volume, monkeypatch, testenv.engine_host)
    assert code == 0, out
    (name,) = _containers(engine, app)
    got = engine.containers.get(name).exec_run(["cat", "/mnt/conf/marker"])
    assert got.output == b"here\n", got
