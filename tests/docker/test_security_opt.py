"""security_opt is judged as the engine reads it. A seccomp profile given inline (what
`docker run --security-opt seccomp=profile.json` sends) that allows every call is as
unconfined as `seccomp=unconfined`: on the real engine the container can create a user
namespace, which the engine's default profile forbids. Such a deploy is refused (exit 2,
no container) unless `policy.allow` lists "seccomp=unconfined".

Found this way: the policy refused the exact strings `seccomp=unconfined`,
`apparmor=unconfined` and `label=disable` (and their `:` forms) only; an inline profile,
a bare `disable` (the engine's label=disable) and `label=type:spc_t` passed `validate`
and deployed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.testenv import TestEnv, unique_app

pytestmark = pytest.mark.integration

ALLOW_ALL = 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'
USERNS = ["sh", "-c", "unshare -U -r id"]


@pytest.fixture
def app_name() -> str:
    return "rt" + unique_app()


def _manifest(tmp_path: Path, app: str, image: str, opts: list[str], allow: list[str]) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod: {}\n"
        f"policy: {{allow: {json.dumps(allow)}}}\n"
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        f"    security_opt: {json.dumps(opts)}\n"
    )
    return path


def _containers(engine: docker.DockerClient, app: str) -> list[docker.models.containers.Container]:
    return engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"})


@pytest.mark.parametrize("opt", [ALLOW_ALL, "disable", "label=type:spc_t"])
def test_a_security_opt_that_weakens_isolation_is_refused_before_anything_changes(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    opt: str,
) -> None:
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    path = _manifest(tmp_path, app, testenv.image_v1, [opt], [])
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == EXIT_INVALID, out.getvalue()
    err = capsys.readouterr().err
    assert "services.web.security_opt[0]" in err and "safety policy" in err, err
    assert _containers(engine, app) == []


def test_an_inline_allow_all_profile_is_unconfined_and_needs_its_entry(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the entry the deploy runs, and the container does what the default profile
    forbids: the entry the policy asks for is the right one."""
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.chdir(tmp_path)
    path = _manifest(tmp_path, app, testenv.image_v1, [ALLOW_ALL], ["seccomp=unconfined"])
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == 0, out.getvalue()
    (web,) = _containers(engine, app)
    assert web.exec_run(USERNS).exit_code == 0  # a user namespace: seccomp lets it through
    path = _manifest(tmp_path, app, testenv.image_v1, ["no-new-privileges:true"], [])
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == 0, out.getvalue()
    running = [c for c in _containers(engine, app) if c.status == "running"]
    (web,) = running
    assert web.exec_run(USERNS).exit_code != 0  # the engine's default profile again
