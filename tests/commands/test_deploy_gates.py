"""`deployer deploy` refuses during a deploy freeze before touching any host, and says so
in its reports."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from deployer.cli import main

MANIFEST = """\
app: gated
environments:
  prod:
    hosts: ["unix:///nonexistent/never-contacted.sock"]
services:
  web:
    image: registry.example/gated/web:v1
"""


def test_deploy_freeze_blocks_with_exit_4_and_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GITLAB_CI", "CI", "CI_SERVER_URL", "CI_JOB_TOKEN", "CI_ENVIRONMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI_DEPLOY_FREEZE", "true")
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST)
    out = io.StringIO()
    code = main(["deploy", "-f", str(f), "--env", "prod", "--report-dir", str(tmp_path)], out)
    assert code == 4
    report = json.loads((tmp_path / "deploy-report.json").read_text())
    assert report["outcome"] == "blocked"
    assert "freeze" in report["error"]
    assert report["steps"] == []
