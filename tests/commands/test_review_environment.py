"""A GitLab review app's environment (`review/<slug>`) deploys on a real engine: the name
is kept in labels and written `review-<slug>` in the names on the host."""

from __future__ import annotations

import io
import json
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.cli import main
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def test_a_review_environment_deploys_with_a_dash_in_names_on_the_host(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("GITLAB_CI", "CI", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI_ENVIRONMENT_NAME", "review/feat-login")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        f'  production: {{hosts: ["{testenv.engine_host}"]}}\n'
        f'  review/feat-login: {{hosts: ["{testenv.engine_host}"]}}\n'
        "services:\n"
        "  web:\n"
        f"    image: {testenv.image_v1}\n"
        "    deploy: {update_config: {monitor: 0s}}\n"
        "rollout: {health_timeout: 60s, healthy_after: 1s, drain: 0s}\n"
    )
    out = io.StringIO()
    assert main(["deploy", "-f", str(path)], out=out) == 0, out.getvalue()
    running = engine.containers.list(filters={"label": f"{L.APP}={app}"})
    assert [c.name for c in running] == [f"{app}-review-feat-login-web-1"]
    assert running[0].labels[L.ENVIRONMENT] == "review/feat-login"
    out = io.StringIO()
    assert main(["status", "-f", str(path), "--format", "json"], out=out) == 0, out.getvalue()
    assert json.loads(out.getvalue())["environment"] == "review/feat-login"
