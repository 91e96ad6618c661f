"""`deployer plan` refuses, exit 3 with a clear message, and touches nothing, when it
cannot trust or reach a host or a registry."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer.cli import main
from deployer.errors import EXIT_UNREACHABLE
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

VARS = (
    "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_TLS_CA_CERT",
    "DOCKER_TLS_CERT", "DOCKER_TLS_KEY", "SSH_PRIVATE_KEY", "SSH_KNOWN_HOSTS",
    "CI_ENVIRONMENT_NAME", "DOCKER_AUTH_CONFIG", "CI_REGISTRY", "CI_REGISTRY_USER",
    "CI_REGISTRY_PASSWORD", "CI_DEPLOY_USER", "CI_DEPLOY_PASSWORD",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.ssh/known_hosts to fall back on
    yield monkeypatch


def write(tmp_path: Path, app: str, host: str, image: str) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod:\n"
        f"    hosts: [\"{host}\"]\n"
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
    )
    return path


def plan(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(["plan", "-f", str(path)], out=out)
    return code, out.getvalue(), capsys.readouterr().err


def untouched(app: str, *engines: docker.DockerClient) -> None:
    for dc in engines:
        assert dc.containers.list(all=True, filters={"label": f"io.deployer.app={app}"}) == []


def test_unknown_ssh_host_key(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], engine: docker.DockerClient,
) -> None:
    env.setenv("SSH_PRIVATE_KEY", testenv.ssh_key.read_text())
    path = write(tmp_path, app, testenv.ssh_host, testenv.image_v1)
    code, out, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE
    assert out == ""
    assert "error: host ssh://root@127.0.0.1:2222: its SSH host key" in err
    assert "refusing to connect" in err and "SSH_KNOWN_HOSTS" in err and "ssh-keyscan" in err
    assert "Traceback" not in err
    untouched(app, engine)


def test_wrong_tls_ca(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], engine2: docker.DockerClient,
) -> None:
    for k, v in testenv.tls_environ(as_text=True).items():
        env.setenv(k, v)
    env.setenv("DOCKER_TLS_CA_CERT", testenv.tls_wrong_ca.read_text())
    path = write(tmp_path, app, testenv.tls_host, testenv.image_v1)
    code, _out, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE
    assert "error: host tcp://127.0.0.1:2376: " in err and "TLS verification failed" in err
    assert "fix:" in err and "Traceback" not in err
    untouched(app, engine2)


def test_unreachable_host(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for k, v in testenv.tls_environ().items():
        env.setenv(k, v)
    path = write(tmp_path, app, "tcp://127.0.0.1:1", testenv.image_v1)
    code, _out, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE
    assert "error: host tcp://127.0.0.1:1: " in err and "cannot connect" in err
    assert "Connection refused" in err and "Traceback" not in err


def test_one_unreachable_host_of_two_fails_the_whole_plan(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\nenvironments:\n  prod:\n"
        f"    hosts: [\"{testenv.engine_host}\", \"unix:///nonexistent/docker.sock\"]\n"
        f"services:\n  web:\n    image: {testenv.image_v1}\n"
    )
    code, out, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE and out == ""
    assert "unix:///nonexistent/docker.sock" in err


def test_bad_registry_credentials(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], engine: docker.DockerClient,
) -> None:
    env.setenv("CI_REGISTRY", testenv.auth_registry)
    env.setenv("CI_REGISTRY_USER", testenv.auth_user)
    env.setenv("CI_REGISTRY_PASSWORD", "not-the-password")
    image = testenv.image_v1.replace(testenv.registry, testenv.auth_registry)
    path = write(tmp_path, app, testenv.engine_host, image)
    code, out, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE
    assert f"error: registry {testenv.auth_registry} refused {image} as {testenv.auth_user}" in err
    assert "not-the-password" not in err
    assert "CI_REGISTRY_USER" in err  # the fix names where credentials come from
    untouched(app, engine)

    env.setenv("CI_REGISTRY_PASSWORD", testenv.auth_password)  # and the right ones work
    code, out, err = plan(path, capsys)
    assert code == 0, err
    assert "create" in out


def test_image_that_does_not_exist(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], engine: docker.DockerClient,
) -> None:
    image = f"{testenv.registry}/testapp/web:no-such-tag-{app}"
    path = write(tmp_path, app, testenv.engine_host, image)
    code, _out, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE
    assert f"error: registry {testenv.registry} has no image {image}" in err
    assert "manifest unknown" in err and "fix:" in err
    untouched(app, engine)
    assert engine.images.list(name=f"{testenv.registry}/testapp/web:no-such-tag-{app}") == []


def test_unreachable_registry(
    testenv: TestEnv, app: str, tmp_path: Path, env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = "127.0.0.1:1/testapp/web:v1"
    path = write(tmp_path, app, testenv.engine_host, image)
    code, _, err = plan(path, capsys)
    assert code == EXIT_UNREACHABLE
    assert "error: registry 127.0.0.1:1 could not be asked" in err and "connection refused" in err
