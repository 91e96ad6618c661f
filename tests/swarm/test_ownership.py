"""On a Swarm too, an app's environment belongs to the GitLab project that deployed it
(deployer/ownership.py): another project's job is refused before any service changes,
and ``--take-over-from`` moves it on purpose (real single-node Swarm)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.swarm.helpers import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  production:
    engine: swarm
services:
  web:
    image: {image}
    init: true
    stop_grace_period: 2s
    deploy:
      update_config: {{order: start-first, monitor: 0s}}
rollout:
  health_timeout: 30s
  healthy_after: 1s
"""


def job(project: str, pid: str, testenv: TestEnv) -> dict[str, str]:
    return {
        "DOCKER_HOST": testenv.engine_host,
        "GITLAB_CI": "true",
        "CI_JOB_ID": "4242",
        "CI_PROJECT_PATH": project,
        "CI_PROJECT_ID": pid,
    }


def services(swarm: docker.DockerClient, app: str) -> list[tuple[str, int]]:
    """The app's services (name, spec version): any update raises the version."""
    found = swarm.services.list(filters={"label": f"{L.STACK_NAMESPACE}={app}"})
    return sorted((s.name, s.version) for s in found)


def test_another_projects_job_is_refused_on_a_swarm(
    swarm: docker.DockerClient,
    swarm_app: str,
    testenv: TestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "deploy.yml"
    path.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_v1))
    a, b = job("shop/checkout", "35", testenv), job("shop/checkout-copy", "36", testenv)
    reports = ("--report-dir", str(tmp_path))
    code, out = cli("deploy", "-f", str(path), *reports, env=a)
    assert code == 0, out + capsys.readouterr().err
    (config,) = swarm.configs.list(filters={"label": f"{L.APP}={swarm_app}"})
    record = json.loads(base64.b64decode(config.attrs["Spec"]["Data"]))
    assert (record["project"], record["project_id"]) == ("shop/checkout", "35")
    before = services(swarm, swarm_app)
    assert before

    path.write_text(MANIFEST.format(app=swarm_app, image=testenv.image_v2))
    for argv in (("plan",), ("deploy", *reports), ("down",)):
        code, _ = cli(argv[0], "-f", str(path), *argv[1:], env=b)
        err = capsys.readouterr().err
        assert code == 2, err
        assert "deployed by the GitLab project shop/checkout " in err, err
        assert "this job is of shop/checkout-copy" in err, err
        assert services(swarm, swarm_app) == before, argv

    code, out = cli("deploy", "-f", str(path), *reports, "--take-over-from", "shop/checkout", env=b)
    assert code == 0, out + capsys.readouterr().err
    assert "moves from the GitLab project shop/checkout to shop/checkout-copy" in out
    after = services(swarm, swarm_app)
    assert after != before
    code, out = cli("status", "-f", str(path), "--format", "json", env=b)
    assert code == 0 and json.loads(out)["hosts"][0]["project"] == "shop/checkout-copy", out
    code, _ = cli("deploy", "-f", str(path), *reports, env=a)
    err = capsys.readouterr().err
    assert code == 2 and "deployed by the GitLab project shop/checkout-copy " in err, err
    assert services(swarm, swarm_app) == after
