"""The plan of a Swarm environment has the same detail as the plan of a container
environment: the same manifests deployed with ``engine: container`` (plain containers)
and ``engine: swarm``, then changed the same way, give the same steps in
``deployer plan --format json`` (action, reasons, digests, replicas, strategy, wave)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.swarm.helpers import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

FIRST = """\
app: {app}
environments:
  production:
    engine: {engine}
services:
  web:
    image: {v1}
    init: true
    stop_grace_period: 2s
  old:
    image: {v1}
    init: true
    stop_grace_period: 2s
rollout:
  health_timeout: 20s
  healthy_after: 1s
"""

SECOND = """\
app: {app}
environments:
  production:
    engine: {engine}
services:
  web:
    image: {v2}
    init: true
    stop_grace_period: 2s
    environment:
      MODE: fast
    deploy:
      replicas: 2
  new:
    image: {v1}
    init: true
    stop_grace_period: 2s
    depends_on: [web]
rollout:
  health_timeout: 20s
  healthy_after: 1s
"""

COMPARED = (
    "service",
    "action",
    "reasons",
    "old_digest",
    "new_digest",
    "strategy",
    "replicas_before",
    "replicas_after",
    "wave",
)


def steps(plan: dict[str, Any]) -> list[dict[str, Any]]:
    (host,) = plan["hosts"]
    return [{k: s.get(k) for k in COMPARED} for s in host["steps"]]


def test_swarm_and_container_plans_show_the_same_steps(
    swarm: docker.DockerClient, swarm_app: str, app: str, testenv: TestEnv, tmp_path: Path
) -> None:
    env = {"DOCKER_HOST": testenv.engine_host}
    plans = {}
    for engine, name in (("container", app), ("swarm", swarm_app)):
        d = tmp_path / engine
        d.mkdir()
        values = {"app": name, "engine": engine, "v1": testenv.image_v1, "v2": testenv.image_v2}
        (d / "deploy.yml").write_text(FIRST.format(**values))
        code, out = cli("deploy", "-f", str(d / "deploy.yml"), "--report-dir", str(d), env=env)
        assert code == 0, out
        (d / "deploy.yml").write_text(SECOND.format(**values))
        code, out = cli("plan", "-f", str(d / "deploy.yml"), "--format", "json", env=env)
        assert code == 0, out
        plans[engine] = json.loads(out)

    container, swarm_steps = steps(plans["container"]), steps(plans["swarm"])
    assert swarm_steps == container
    by_service = {s["service"]: s for s in swarm_steps}
    assert by_service["web"]["action"] == "replace"
    assert by_service["web"]["reasons"] == [
        "new image digest",
        "config changed: environment",
        "scale 1 → 2",
    ]
    assert by_service["new"]["action"] == "create"
    assert by_service["old"]["action"] == "remove"
    assert plans["swarm"]["summary"] == plans["container"]["summary"]
