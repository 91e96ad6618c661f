"""Relative directories that are data, deployed over SSH with the real CLI.

A compose app mounts ``./data`` (not in the checkout: the usual ``./data:/var/lib/...`` of
real compose files) and ``./uploads`` (in the checkout with only a ``.gitkeep``). Checked on
the engine behind the ssh host: the plan says each is data and names its volume; what the
container writes there survives a redeploy that replaces the container and a rollback;
``deployer down`` keeps it and ``down --volumes`` removes it.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.cli import Job, current, job_environ, sh
from tests.testenv import TestEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]


COMPOSE = """\
name: {app}
services:
  db:
    image: {image}
    init: true
    environment:
      RELEASE: "{release}"
    volumes:
      - ./data:/var/lib/db
      - ./uploads:/srv/uploads
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 30
"""

MANIFEST = """\
app: {app}
compose: docker-compose.yml
environments:
  prod: {{}}
rollout:
  health_timeout: 120s
  healthy_after: 1s
  drain: 0s
"""


def test_data_directories_persist_across_deploys_and_rollbacks_over_ssh(
    tmp_path: Path, app: str, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "uploads").mkdir(parents=True)
    (checkout / "uploads" / ".gitkeep").write_text("")
    compose = checkout / "docker-compose.yml"
    compose.write_text(COMPOSE.format(app=app, image=testenv.image_v1, release="1"))
    (checkout / "deploy.yml").write_text(MANIFEST.format(app=app))
    deployer = Job(checkout, job_environ(testenv))

    plan = deployer("plan")
    assert f"./data is data (db at /var/lib/db): the volume {app}_data, created empty" in plan
    assert f"./uploads is data (db at /srv/uploads): the volume {app}_uploads" in plan
    deployer("deploy")
    first = current(engine, app, "db")
    sh(first, "echo rows > /var/lib/db/table && echo pic > /srv/uploads/a.png")
    assert not (checkout / "data").exists()  # nothing is written into the checkout

    # A redeploy that replaces the container (a new image) keeps the data.
    compose.write_text(COMPOSE.format(app=app, image=testenv.image_v2, release="2"))
    deployer("deploy")
    second = current(engine, app, "db")
    assert second.id != first.id
    assert sh(second, "cat /var/lib/db/table /srv/uploads/a.png") == "rows\npic\n"
    sh(second, "echo more >> /var/lib/db/table")

    # A rollback brings the previous release (the first image) back on the same data.
    deployer("rollback")
    third = current(engine, app, "db")
    assert third.id != second.id and third.image.id == first.image.id
    assert sh(third, "cat /var/lib/db/table") == "rows\nmore\n"

    # `down` keeps the data; `down --volumes` removes it.
    volumes = {f"{app}_data", f"{app}_uploads"}
    deployer("down")
    assert volumes <= {v.name for v in engine.volumes.list()}
    deployer("down", "--volumes", "--yes")
    assert not volumes & {v.name for v in engine.volumes.list()}
