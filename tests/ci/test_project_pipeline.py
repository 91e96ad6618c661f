"""The project's own .gitlab-ci.yml: valid for GitLab's CI schema, and its self-test of
the template (the included jobs, extended with a throwaway engine) resolves as meant."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_pipeline_passes_the_ci_schema(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(data))
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"lint", "unit", "integration", "build-image", "release-image"} <= set(data)
    assert data["integration"]["script"] == [".ci/run"]


def test_selftest_manifest_is_valid() -> None:
    env = {
        **os.environ,
        "CI_REGISTRY_IMAGE": "registry.example.com/tools/deployer",
        "CI_COMMIT_SHORT_SHA": "0123abcd",
    }
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "deployer"),
            "validate",
            "-f",
            "ci-templates/selftest/deploy.yml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration
def test_selftest_jobs_are_the_template_plus_an_engine(
    tmp_path: Path, gitlab_ci_local: Path
) -> None:
    repo = tmp_path / "deployer"
    repo.mkdir()
    shutil.copy2(ROOT / ".gitlab-ci.yml", repo / ".gitlab-ci.yml")
    shutil.copytree(ROOT / "ci-templates", repo / "ci-templates")
    shutil.copytree(ROOT / "templates", repo / "templates")
    git = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", "https://gitlab.example.com/tools/deployer.git"],
        ["add", "-A"],
        ["commit", "-q", "-m", "pipeline"],
    ):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True, timeout=60)
    proc = subprocess.run(
        [str(gitlab_ci_local), "--preview"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    jobs: dict[str, Any] = yaml.safe_load(proc.stdout)
    deploy = jobs["selftest-deploy"]
    assert deploy["script"][0].startswith(
        'deployer deploy --file "ci-templates/selftest/deploy.yml"'
    )
    assert deploy["image"]["name"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"
    assert deploy["services"] == [{"name": "docker:27-dind", "alias": "docker"}]
    assert deploy["variables"]["DOCKER_HOST"] == "tcp://docker:2375"
    assert deploy["rules"][0] == {"if": "$CI_DEPLOY_FREEZE", "when": "never"}
    assert deploy["environment"]["name"] == "selftest"
    assert jobs["selftest-rollback"]["services"] == deploy["services"]
