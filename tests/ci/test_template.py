"""The include template: a valid ``spec:inputs`` header, a body that passes GitLab's CI
JSON schema once its inputs are filled in, and no global keywords."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "ci-templates" / "deploy.gitlab-ci.yml"
COMPONENT = ROOT / "templates" / "deploy.yml"
INPUT_RE = re.compile(r"\$\[\[\s*inputs\.([a-z_]+)\s*\]\]")
GLOBAL_KEYWORDS = {
    "default",
    "stages",
    "workflow",
    "variables",
    "include",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}


def _parts() -> tuple[dict[str, Any], str]:
    header_text, body_text = TEMPLATE.read_text().split("\n---\n")
    return yaml.safe_load(header_text), body_text


def _inputs() -> dict[str, dict[str, Any]]:
    header, _ = _parts()
    inputs: dict[str, dict[str, Any]] = header["spec"]["inputs"]
    return inputs


def render(values: dict[str, str] | None = None) -> dict[str, Any]:
    """The body with its inputs filled in (defaults unless given), as GitLab does."""
    inputs = _inputs()
    _, body = _parts()
    given = values or {}

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(given.get(name, inputs[name]["default"]))

    data: dict[str, Any] = yaml.safe_load(INPUT_RE.sub(fill, body))
    return data


def schema_check(tmp_path: Path, name: str, *data: Any) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with GitLab's vendored CI schema, on one file per document."""
    paths = []
    for i, doc in enumerate(data):
        path = tmp_path / f"{name}-{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_header_is_a_valid_spec_inputs(tmp_path: Path) -> None:
    header, _ = _parts()
    assert list(header) == ["spec"]
    proc = schema_check(tmp_path, "header", header)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, spec in _inputs().items():
        assert spec.get("type") in ("string", "boolean", "number", "array"), name
        assert spec.get("description"), f"input {name} has no description"
        assert "default" in spec, f"input {name} has no default: the include would need it"
        if "options" in spec:
            assert spec["default"] in spec["options"], name


def test_schema_check_catches_a_bad_header(tmp_path: Path) -> None:
    bad = {"spec": {"inputs": {"x": {"type": "text"}}}}
    assert schema_check(tmp_path, "bad", bad).returncode != 0


def test_body_passes_the_ci_schema_for_every_option(tmp_path: Path) -> None:
    inputs = _inputs()
    with_options = {n: s["options"] for n, s in inputs.items() if "options" in s}
    bodies = []
    for i, combo in enumerate(itertools.product(*with_options.values())):
        values = dict(zip(with_options, combo, strict=True))
        values["job_prefix"] = f"staging{i}"
        bodies.append(render(values))
    assert len(bodies) == 10
    proc = schema_check(tmp_path, "body", *bodies)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_catches_a_bad_body(tmp_path: Path) -> None:
    body = render()
    body["production-deploy"]["rules"][1]["when"] = "sometimes"
    assert schema_check(tmp_path, "bad", body).returncode != 0


def test_every_input_is_used_and_declared() -> None:
    _, body = _parts()
    used = set(INPUT_RE.findall(body))
    assert used == set(_inputs())


def test_no_global_keywords() -> None:
    body = render()
    assert not GLOBAL_KEYWORDS & set(body)
    assert all(not name.startswith(".") for name in body), "hidden jobs leak into the app"
    assert sorted(body) == [
        "production-deploy",
        "production-plan",
        "production-rollback",
        "production-validate",
    ]


def test_deploy_job_shape() -> None:
    job = render({"job_prefix": "prod", "environment": "live"})["prod-deploy"]
    assert job["rules"][0] == {"if": "$CI_DEPLOY_FREEZE", "when": "never"}
    assert job["rules"][1] == {
        "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
        "when": "manual",
    }
    assert job["environment"] == {
        "name": "live",
        "url": "$DEPLOY_URL",
        "deployment_tier": "production",
        "action": "start",
    }
    assert job["resource_group"] == "production"
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"] == {
        "dotenv": "deploy-reports/deploy.env",
        "junit": "deploy-reports/deploy-junit.xml",
    }
    assert job["image"] == {"name": "gitlab-docker-deployer:0.1.0", "entrypoint": [""]}
    (line,) = job["script"]
    assert line.split()[:2] == ["deployer", "deploy"]
    assert '--env "live"' in line
    assert '--report-dir "deploy-reports"' in line


def test_mr_jobs_and_rollback_rules() -> None:
    body = render()
    mr_rule = {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}
    assert body["production-validate"]["rules"] == [mr_rule]
    assert body["production-plan"]["rules"] == [mr_rule]
    assert body["production-plan"]["environment"]["action"] == "prepare"
    rollback = body["production-rollback"]
    assert rollback["rules"][0]["when"] == "manual"
    assert rollback["environment"]["action"] == "access"
    assert rollback["resource_group"] == body["production-deploy"]["resource_group"]


@pytest.mark.parametrize("path", [COMPONENT])
def test_catalog_component_is_the_same_template(path: Path) -> None:
    assert path.read_text() == TEMPLATE.read_text()


def test_default_image_version_is_this_release() -> None:
    from deployer import __version__

    assert _inputs()["version"]["default"] == __version__


def test_deploys_are_never_interrupted() -> None:
    body = render()
    assert body["production-deploy"]["interruptible"] is False
    assert body["production-rollback"]["interruptible"] is False
    assert body["production-plan"]["interruptible"] is True


def test_options_reach_deploy_and_rollback() -> None:
    body = render({"options": "--wait-lock 10m"})
    assert body["production-deploy"]["script"][0].endswith(' "deploy-reports" --wait-lock 10m')
    assert body["production-rollback"]["script"][0].endswith(" --wait-lock 10m")
