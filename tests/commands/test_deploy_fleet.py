"""A fleet of two independent engines through the CLI (the main one over its socket, the
second over tcp+TLS): batches with a canary, status of both hosts, and `rollback --to`
choosing a release."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.engine import Release
from deployer.errors import InvalidInput
from deployer.releases import choose
from tests.cli import cli
from tests.testenv import TestEnv

MANIFEST = """\
app: {app}
environments:
  prod:
    hosts: ["{h1}", "{h2}"]
services:
  web:
    image: ${{WEB_IMAGE}}
    healthcheck:
      interval: 500ms
      retries: 2
rollout:
  health_timeout: 20s
  drain: 200ms
  batch: 1
  canary: 1s
"""


def digests(client: docker.DockerClient, app: str) -> set[str]:
    return {
        c["Labels"][L.DIGEST]
        for c in client.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web"]})
    }


@pytest.mark.integration
def test_fleet_deploy_canary_status_and_rollback_to(
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    for k, v in testenv.tls_environ().items():
        if k != "DOCKER_HOST":
            monkeypatch.setenv(k, v)
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST.format(app=app, h1=testenv.engine_host, h2=testenv.tls_host))
    base = ["-f", str(f), "--env", "prod"]

    monkeypatch.setenv("WEB_IMAGE", testenv.image_v1)
    code, out = cli("deploy", *base, "--report-dir", str(tmp_path))
    assert code == 0, out
    first = digests(engine, app)
    assert first == digests(engine2, app) and len(first) == 1

    monkeypatch.setenv("WEB_IMAGE", testenv.image_v2)
    code, out = cli("deploy", *base, "--report-dir", str(tmp_path))
    assert code == 0, out
    assert "canary" in out and "batch 2/2" in out
    second = digests(engine, app)
    assert second == digests(engine2, app) and second != first
    report = json.loads((tmp_path / "deploy-report.json").read_text())
    assert report["outcome"] == "deployed"
    assert sorted(report["hosts"].values()) == ["switched", "switched"]

    code, out = cli("status", *base, "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert len(data["hosts"]) == 2
    assert all(
        len(h["services"]) == 1 and h["services"][0]["digest"] in second for h in data["hosts"]
    )
    releases = data["hosts"][0]["releases"]
    assert len(releases) == 2

    code, out = cli("rollback", *base, "--to", releases[-1])  # the oldest: v1
    assert code == 0, out
    assert digests(engine, app) == first == digests(engine2, app)


def rel(rid: str) -> Release:
    return Release(id=rid, app="a", environment="e", digests={"web": "r@sha256:" + "1" * 64})


def test_choose_a_release() -> None:
    rels = [
        rel("20260101T000000000Z-a"),
        rel("20260102T000000000Z-b"),
        rel("20260103T000000000Z-c"),
    ]
    assert choose(rels, None, "h").id == "20260102T000000000Z-b"
    assert choose(rels, "20260101", "h").id == "20260101T000000000Z-a"
    assert choose(rels, "20260103T000000000Z-c", "h").id == "20260103T000000000Z-c"
    with pytest.raises(InvalidInput, match="more than one"):
        choose(rels, "2026", "h")
    with pytest.raises(InvalidInput, match="no release matches"):
        choose(rels, "1999", "h")
    with pytest.raises(InvalidInput, match="nothing to roll back to"):
        choose(rels[:1], None, "h")
    with pytest.raises(InvalidInput, match="no release of this app"):
        choose([], None, "h")
