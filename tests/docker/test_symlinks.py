"""Host symlinks in bind sources are resolved through the engine before anything changes,
over unix, tcp+TLS and ssh, with real symlinks on the host (the test engines run on this
machine; the links live in a temporary directory the test makes and removes)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.docker.host import DockerHost, connect_host
from deployer.docker.symlinks import check_binds
from deployer.errors import EXIT_INVALID, InvalidInput
from deployer.manifest.model import Environment, Manifest, Mount, Service
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Links:
    root: Path

    def __truediv__(self, name: str) -> str:
        return str(self.root / name)


@pytest.fixture
def links() -> Iterator[Links]:
    root = Path(tempfile.mkdtemp(prefix="deployer-links-", dir="/tmp"))
    try:
        (root / "real").mkdir()
        os.symlink("/var/run/docker.sock", root / "sock")  # the socket, under another name
        os.symlink("/var", root / "var")
        os.symlink(os.path.relpath("/", root), root / "up")  # relative, to /
        os.symlink("chain2", root / "chain1")  # a chain ending at /run
        os.symlink("/run", root / "chain2")
        os.symlink(str(root / "real"), root / "data")  # harmless
        os.symlink("loop2", root / "loop1")
        os.symlink("loop1", root / "loop2")
        yield Links(root)
    finally:
        shutil.rmtree(root)  # removes the links, never what they point to


@pytest.fixture(params=["unix", "tls", "ssh"])
def host(request: pytest.FixtureRequest, testenv: TestEnv) -> Iterator[DockerHost]:
    url, environ = {
        "unix": (testenv.engine_host, {}),
        "tls": (testenv.tls_host, testenv.tls_environ()),
        "ssh": (testenv.ssh_host, testenv.ssh_environ()),
    }[request.param]
    h = connect_host(url, environ)
    yield h
    h.close()


def manifest(
    app: str, source: str, *, read_only: bool = False, allow: tuple[str, ...] = ()
) -> Manifest:
    return Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment("prod"),
        services=(
            Service(
                "web",
                "registry.example.com/shop/web:1",
                volumes=(
                    Mount("bind", "/data", "/srv"),
                    Mount("bind", "/x", source, read_only),
                ),
            ),
        ),
        policy_allow=allow,
    )


REFUSED = [
    ("sock", "docker-socket"),
    ("var", "system-bind"),
    ("up", "system-bind"),
    ("chain1", "system-bind"),
    ("var/run/docker.sock", "docker-socket"),  # a link in a middle component
    ("up/etc/shadow", "system-bind"),
]


def probes(engine: docker.DockerClient, app: str) -> list[str]:
    found = engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})
    return [c.name for c in found]


@pytest.mark.parametrize(("name", "entry"), REFUSED)
def test_a_link_to_a_protected_path_is_refused(
    host: DockerHost, links: Links, app: str, name: str, entry: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        check_binds(manifest(app, links / name), host.client, host.name)
    text = f"{e.value.message} {e.value.hint}"
    assert f'"{links / name}" is a symlink to' in text, text
    assert "services.web.volumes[1]" in text and f'"{entry}"' in text, text
    assert e.value.exit_code == EXIT_INVALID
    assert probes(host.client, app) == []  # the probe is gone


def test_harmless_links_missing_paths_and_allowed_ones_pass(
    host: DockerHost, links: Links, app: str
) -> None:
    for source in (links / "data", links / "real", links / "missing/below", "/srv/app"):
        check_binds(manifest(app, source), host.client, host.name)
    allowed = ("docker-socket", "system-bind")
    check_binds(manifest(app, links / "sock", allow=allowed), host.client, host.name)
    check_binds(manifest(app, links / "up", allow=allowed), host.client, host.name)
    assert probes(host.client, app) == []


def test_a_symlink_loop_is_refused_not_followed_forever(
    host: DockerHost, links: Links, app: str
) -> None:
    with pytest.raises(InvalidInput, match="too many levels of symlinks"):
        check_binds(manifest(app, links / "loop1"), host.client, host.name)
    assert probes(host.client, app) == []


def test_deploy_refuses_a_link_to_the_socket_before_anything_changes(
    tmp_path: Path,
    links: Links,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found this way: `validate` passed (the written path is harmless) and the deploy gave
    the container the host's Docker socket."""
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
        "    volumes:\n"
        f"      - {links / 'sock'}:/var/run/docker.sock\n"
    )
    out = io.StringIO()
    assert main(["validate", "-f", str(path)], out=out) == 0, out.getvalue()
    out = io.StringIO()
    code = main(["deploy", "-f", str(path)], out=out)
    assert code == EXIT_INVALID, out.getvalue()
    # /var/run is itself a link to /run on this host: followed too
    assert "is a symlink to /run/docker.sock" in out.getvalue(), out.getvalue()
    assert "deploy.yml:8:" in out.getvalue(), out.getvalue()  # the volume's own line
    assert probes(engine, app) == []  # no container of the app, no probe left
