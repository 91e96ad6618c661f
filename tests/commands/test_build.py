"""`deployer build --push` against the real engine and the local registry; the deploy that
follows runs exactly the digests the build pushed."""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest

from deployer import labels as L
from tests.cli import DEPLOYER, Job, cli, job_environ
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUILD_ARG = "build-arg-secret-71c3e9"

DOCKERFILE = """\
FROM {base} AS base
FROM base AS final
ARG VERSION
ARG TOKEN
LABEL built.version=$VERSION
COPY stamp /stamp
FROM final AS later
LABEL stage=later
"""

COMPOSE = """\
services:
  web:
    build:
      context: ./web
      dockerfile: Containerfile
      target: final
      args:
        VERSION: "42"
        TOKEN: ${{BUILD_TOKEN}}
      labels:
        com.example.built-by: deployer
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 30
  api:
    build: ./web
    image: {registry}/{app}/api:v1
    command: ["sleep", "3600"]
    init: true
    healthcheck: {{disable: true}}
  cache:
    image: {registry}/testapp/web:v1
"""

MANIFEST = """\
app: {app}
compose: docker-compose.yml
environments:
  prod: {{}}
rollout:
  health_timeout: 120s
  healthy_after: 1s
"""


def test_build_push_then_deploy_runs_those_digests(
    tmp_path: Path, app: str, testenv: TestEnv, engine: docker.DockerClient, cleanup: Cleanup
) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "Containerfile").write_text(DOCKERFILE.format(base=testenv.image_v1))
    (web / "Dockerfile").write_text(f"FROM {testenv.image_v1}\nCOPY stamp /stamp\n")
    (web / "stamp").write_text(f"{app}\n")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(registry=testenv.registry, app=app))
    (tmp_path / "deploy.yml").write_text(MANIFEST.format(app=app))
    sha = "0123456789abcdef0123456789abcdef01234567"
    env = job_environ(
        testenv,
        "engine",
        CI_REGISTRY_IMAGE=f"{testenv.registry}/{app}",
        CI_COMMIT_SHA=sha,
        BUILD_TOKEN=BUILD_ARG,
    )
    built = [f"{testenv.registry}/{app}/web:{sha}", f"{testenv.registry}/{app}/api:v1"]

    def untag() -> None:
        for ref in built:
            with contextlib.suppress(docker.errors.APIError):
                engine.images.remove(ref)

    cleanup.later(untag)

    job = Job(tmp_path, env, timeout=600)

    def deployer(*args: str) -> str:
        text = job(*args)
        assert BUILD_ARG not in text
        return text

    out = deployer("build", "--push")
    pushed = dict(re.findall(r"^(\w+): pushed (\S+@sha256:[0-9a-f]{64})$", out, re.M))
    assert set(pushed) == {"web", "api"}, out
    assert pushed["web"].startswith(f"{testenv.registry}/{app}/web@")
    image = engine.images.get(built[0])
    assert image.labels["built.version"] == "42"  # args
    assert image.labels["com.example.built-by"] == "deployer"  # labels
    assert "stage" not in image.labels  # target: the later stage is not built

    plan = deployer("plan")
    assert "`build:` is not used at deploy time" in plan
    deployer("deploy", "--report-dir", str(tmp_path / "reports"))
    for service in ("web", "api"):
        (c,) = engine.containers.list(
            filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}"]}
        )
        assert c.labels[L.DIGEST] == pushed[service]
    (c,) = engine.containers.list(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})
    code, stamp = c.exec_run(["cat", "/stamp"])
    assert code == 0 and stamp.decode() == f"{app}\n"


def test_build_without_the_ci_variables_says_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services:\n  web:\n    build: .\n")
    (tmp_path / "deploy.yml").write_text(
        "app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n"
    )
    proc = subprocess.run(
        [str(DEPLOYER), "build"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 2, text
    assert "CI_REGISTRY_IMAGE and CI_COMMIT_SHA are not set" in text
    assert "Traceback" not in text


def test_build_refuses_the_buildkit_keys_it_cannot_honour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deployer build` builds through the engine's classic API: a service whose `build:`
    needs BuildKit (ssh, network...) is refused by name before anything is built, never
    built without them."""
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: registry.example.com/web:1\n"
        "    build: {context: ., ssh: [default], network: host}\n"
    )
    (tmp_path / "deploy.yml").write_text(
        "app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n"
    )
    code, out = cli("build", "-f", str(tmp_path / "deploy.yml"))
    text = out + capsys.readouterr().err
    assert code == 2, text
    assert "build.ssh, build.network cannot be honoured by `deployer build`" in text
    assert "docker compose build" in text and "Traceback" not in text
