"""Compose secrets, configs and files from the repository on a Swarm: real Docker
secrets and configs, named by their content, so a change rolls the service."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from tests.swarm.helpers import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

SECRET = "swarm-secret-6e21c0b9d4"

COMPOSE = """\
services:
  web:
    image: {image}
    init: true
    stop_grace_period: 2s
    volumes:
      - ./app.conf:/etc/app/app.conf:ro
    configs:
      - source: extra
        target: /etc/app/extra.yml
    secrets:
      - source: api_key
        uid: "1000"
        gid: "1001"
        mode: 0400
    deploy:
      update_config:
        order: start-first
        monitor: 2s
configs:
  extra:
    content: "greeting: hello"
secrets:
  api_key:
    environment: API_KEY
"""

MANIFEST = """\
app: {app}
compose: docker-compose.yml
environments:
  production:
    engine: swarm
rollout:
  health_timeout: 60s
  healthy_after: 2s
"""


def _task_container(client: docker.DockerClient, app: str) -> docker.models.containers.Container:
    end = time.monotonic() + 90
    while time.monotonic() < end:
        found = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={app}_web", "status": "running"}
        )
        if len(found) == 1:
            return found[0]
        time.sleep(0.5)
    raise AssertionError("no single running task container")


def _sh(c: docker.models.containers.Container, script: str) -> str:
    code, out = c.exec_run(["sh", "-c", script])
    assert code == 0, out
    return str(out.decode())


def test_secrets_and_configs_on_swarm_roll_the_service_when_changed(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    (tmp_path / "app.conf").write_text("version=1\n")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(image=testenv.image_v1))
    (tmp_path / "deploy.yml").write_text(MANIFEST.format(app=swarm_app))
    env = {"DOCKER_HOST": testenv.engine_host, "API_KEY": SECRET}
    f = str(tmp_path / "deploy.yml")

    code, out = cli("deploy", "-f", f, "--report-dir", str(tmp_path / "r1"), env=env)
    assert code == 0, out
    c = _task_container(swarm, swarm_app)
    assert _sh(c, "cat /etc/app/app.conf") == "version=1\n"
    assert _sh(c, "cat /etc/app/extra.yml") == "greeting: hello"
    assert _sh(c, "cat /run/secrets/api_key") == SECRET
    listing = _sh(c, "ls -ln /run/secrets/api_key").split()
    assert listing[0] == "-r--------" and listing[2:4] == ["1000", "1001"]
    secrets = [s for s in swarm.api.secrets() if s["Spec"]["Name"].startswith(swarm_app + "_")]
    assert len(secrets) == 1
    spec = swarm.api.inspect_service(f"{swarm_app}_web")["Spec"]
    assert SECRET not in str(spec) and SECRET not in out

    # The same content again: nothing to do.
    code, out = cli("plan", "-f", f, "--detailed-exitcode", env=env)
    assert code == 0, out

    # A changed file: a new config by content, the plan names the file, the service rolls.
    (tmp_path / "app.conf").write_text("version=2\n")
    code, out = cli("plan", "-f", f, "--detailed-exitcode", env=env)
    assert code == 10 and "file ./app.conf" in out, out
    code, out = cli("deploy", "-f", f, "--report-dir", str(tmp_path / "r2"), env=env)
    assert code == 0, out
    end = time.monotonic() + 90
    while time.monotonic() < end:
        c2 = _task_container(swarm, swarm_app)
        if c2.id != c.id:
            break
        time.sleep(0.5)
    assert _sh(_task_container(swarm, swarm_app), "cat /etc/app/app.conf") == "version=2\n"
    for path in (tmp_path / "r1", tmp_path / "r2"):
        for file in path.iterdir():
            assert SECRET not in file.read_text(errors="replace"), file

    def copies() -> list[str]:
        return sorted(
            c["Spec"]["Name"]
            for c in swarm.api.configs()
            if c["Spec"]["Name"].startswith(swarm_app + "_app.conf")
        )

    first = copies()
    assert len(first) == 2  # the previous copy stays while the previous spec (rollback) uses it
    (tmp_path / "app.conf").write_text("version=3\n")
    code, out = cli("deploy", "-f", f, "--report-dir", str(tmp_path / "r3"), env=env)
    assert code == 0, out
    assert len(copies()) == 2 and not set(copies()) >= set(first)  # the oldest one is gone

    code, out = cli("down", "-f", f, env=env)
    assert code == 0, out
    left = [s for s in swarm.api.secrets() if s["Spec"]["Name"].startswith(swarm_app + "_")]
    left += [c for c in swarm.api.configs() if c["Spec"]["Name"].startswith(swarm_app + "_api")]
    assert left == []


def test_a_directory_is_refused_on_swarm_at_its_service(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()  # a directory of configuration (an empty one is data)
    (tmp_path / "conf" / "app.ini").write_text("[app]\n")
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: registry.example.com/web:1\n"
        "    volumes: ['./conf:/etc/app:ro']\n"
    )
    (tmp_path / "deploy.yml").write_text(MANIFEST.format(app="shop"))
    code, out = cli("validate", "-f", str(tmp_path / "deploy.yml"), env={})
    assert code == 2, out
    assert "docker-compose.yml:2:" in out and "Swarm configs and secrets are single files" in out
