"""The include template: a valid ``spec:inputs`` header, a body that passes GitLab's CI
JSON schema once its inputs are filled in, no global keywords, one source file, and
one version scheme shared by the release tags, the image, the template and the docs."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "templates" / "deploy.yml"
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
        value = given.get(name, inputs[name]["default"])
        return str(value).lower() if isinstance(value, bool) else str(value)

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
        "production-build",
        "production-deploy",
        "production-logs",
        "production-plan",
        "production-restart",
        "production-review",
        "production-review-stop",
        "production-rollback",
        "production-stats",
        "production-stop",
        "production-validate",
    ]


def test_build_job_is_opt_in_and_builds_on_docker_in_docker() -> None:
    job = render()["production-build"]
    assert job["rules"][0]["if"].lower() == '"false" == "true"'  # off unless `build: true`
    job = render({"build": "true"})["production-build"]
    assert job["rules"] == [{"if": '"true" == "true"'}]
    assert job["variables"]["DOCKER_HOST"] == "tcp://docker:2376"
    assert job["services"][0]["alias"] == "docker"
    assert "build --push" in job["script"][0]


def test_deploy_job_shape() -> None:
    from deployer import __version__

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
        "on_stop": "prod-stop",
    }
    assert job["resource_group"] == "$CI_ENVIRONMENT_NAME"
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"] == {
        "dotenv": "deploy-reports/deploy.env",
        "junit": "deploy-reports/deploy-junit.xml",
    }
    assert job["image"] == {
        "name": f"$CI_REGISTRY/gitlab-docker-deployer/gitlab-docker-deployer:{__version__}",
        "entrypoint": [""],
    }
    (line,) = job["script"]
    assert line.split()[:2] == ["deployer", "deploy"]
    assert '--env "live"' in line
    assert '--report-dir "deploy-reports"' in line


def test_mr_jobs_and_rollback_rules() -> None:
    body = render()
    mr_rule = {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}
    assert body["production-validate"]["rules"] == [mr_rule]
    plan = body["production-plan"]
    assert plan["rules"] == [mr_rule]
    # No environment (so no protected environment or environment-scoped credentials are
    # needed) and not allowed to fail: the plan reads the last deployment's report.
    assert "environment" not in plan
    assert "allow_failure" not in plan
    assert plan["script"][0].endswith(
        '--against last-deployment --artifact "deploy-reports/deploy-report.json"'
    )
    rollback = body["production-rollback"]
    assert rollback["rules"][0]["when"] == "manual"
    # A rollback is a deployment of the environment: GitLab shows the release it restored.
    assert rollback["environment"] == {
        "name": "production",
        "url": "$DEPLOY_URL",
        "deployment_tier": "production",
        "action": "start",
    }
    assert rollback["resource_group"] == body["production-deploy"]["resource_group"]


def test_resource_group_is_one_per_environment() -> None:
    staging = render({"job_prefix": "staging", "environment": "staging"})
    # The input default, expanded by GitLab per job to the job's environment name.
    assert staging["staging-deploy"]["resource_group"] == "$CI_ENVIRONMENT_NAME"
    assert staging["staging-rollback"]["resource_group"] == "$CI_ENVIRONMENT_NAME"
    assert staging["staging-deploy"]["environment"]["name"] == "staging"


def test_the_template_has_one_source() -> None:
    """templates/deploy.yml is the only copy: no other tracked YAML file carries its
    jobs, so nothing can drift from it."""
    files = subprocess.run(
        ["git", "ls-files", "*.yml", "*.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    marker = "$[[ inputs.job_prefix ]]-deploy:"
    carriers = sorted(f for f in files if marker in (ROOT / f).read_text())
    assert carriers == ["templates/deploy.yml"]
    pipeline = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    assert pipeline["include"][0]["local"] == "templates/deploy.yml"


def _release_tag_pattern() -> re.Pattern[str]:
    pipeline = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    rules = {str(r["if"]) for job in ("release", "release-image") for r in pipeline[job]["rules"]}
    (rule,) = rules
    m = re.fullmatch(r"\$CI_COMMIT_TAG =~ /(.+)/", rule)
    assert m, rule
    return re.compile(m.group(1))


def test_release_tags_are_semantic_versions() -> None:
    from deployer import __version__

    pattern = _release_tag_pattern()
    assert pattern.fullmatch(__version__)
    assert not pattern.fullmatch(f"v{__version__}")
    release = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())["release"]
    assert "release-cli" not in release["image"]
    assert any("glab release create" in line for line in release["script"])
    assert any("--publish-to-catalog" in line for line in release["script"])


def test_docs_reference_the_released_version() -> None:
    """Every version the README and docs/gitlab.md tell users to include is this release,
    written as the tag is (no "v")."""
    from deployer import __version__

    found = []
    for doc in ("README.md", "docs/gitlab.md"):
        text = (ROOT / doc).read_text()
        found += re.findall(r"gitlab-docker-deployer/deploy@([^\s`]+)", text)
        found += re.findall(r"\bref: ([^\s`,]+)", text)
        assert "ci-templates/deploy.gitlab-ci.yml" not in text, doc
    assert found, "the docs show no include"
    assert set(found) == {__version__}


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


def test_stop_is_the_environments_on_stop_and_never_deletes_data() -> None:
    body = render({"job_prefix": "review", "environment": "review"})
    assert body["review-deploy"]["environment"]["on_stop"] == "review-stop"
    stop = body["review-stop"]
    assert stop["environment"] == {
        "name": "review",
        "deployment_tier": "production",
        "action": "stop",
    }
    assert stop["stage"] == body["review-deploy"]["stage"]
    assert stop["script"] == ['deployer down --file "deploy.yml" --env "review"']
    assert "--volumes" not in str(stop)


def test_logs_job_keeps_the_log_as_an_artifact() -> None:
    job = render()["production-logs"]
    assert job["rules"][0]["when"] == "manual"
    assert job["environment"]["action"] == "access"
    assert '--since "$DEPLOYER_LOGS_SINCE"' in job["script"][1]
    assert job["artifacts"]["paths"] == ["deploy-reports/logs.txt"]


def test_review_apps_are_opt_in(tmp_path: Path) -> None:
    mr = '$CI_PIPELINE_SOURCE == "merge_request_event"'
    off = render()
    assert off["production-review"]["rules"] == [{"if": f'"false" == "true" && {mr}'}]
    on = render({"review_apps": True, "job_prefix": "app"})
    proc = schema_check(tmp_path, "review", on)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    review, stop = on["app-review"], on["app-review-stop"]
    assert review["rules"] == [{"if": f'"true" == "true" && {mr}'}]
    assert review["environment"] == {
        "name": "review/$CI_COMMIT_REF_SLUG",
        "url": "$DEPLOY_URL",
        "deployment_tier": "development",
        "action": "start",
        "on_stop": "app-review-stop",
        "auto_stop_in": "1 week",
    }
    assert review["resource_group"] == "review/$CI_COMMIT_REF_SLUG"
    assert '--env "review/$CI_COMMIT_REF_SLUG"' in review["script"][0]
    assert review["artifacts"]["reports"]["dotenv"] == "deploy-reports/deploy.env"
    assert stop["environment"]["name"] == review["environment"]["name"]
    assert stop["environment"]["action"] == "stop"
    assert stop["rules"][0]["when"] == "manual"
    assert stop["resource_group"] == review["resource_group"]
    (line,) = stop["script"]
    assert line.split()[:2] == ["deployer", "down"]
    assert '--env "review/$CI_COMMIT_REF_SLUG"' in line
    assert (
        render({"review_auto_stop_in": "2 days"})["production-review"]["environment"][
            "auto_stop_in"
        ]
        == "2 days"
    )


def test_restart_job_takes_the_services_from_a_variable() -> None:
    job = render()["production-restart"]
    assert job["rules"][0]["when"] == "manual"
    assert job["resource_group"] == "$CI_ENVIRONMENT_NAME"  # never beside a deploy
    assert job["script"][0].endswith(" $DEPLOYER_SERVICES")
    assert job["variables"] == {"DEPLOYER_SERVICES": ""}


def test_the_docs_inputs_table_is_the_template_s_inputs() -> None:
    """docs/gitlab.md, "Inputs": every input of the template, with its default, and no
    other (a row `a` / `b` gives two inputs and their defaults in the same order)."""
    text = (ROOT / "docs" / "gitlab.md").read_text()
    table = text.split("### Inputs", 1)[1].split("\n\n", 2)[1]
    documented: dict[str, str] = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = re.findall(r"`([a-z_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) or [""] * len(names)
        assert len(defaults) == len(names), row
        documented.update(zip(names, defaults, strict=True))
    inputs = _inputs()
    assert set(documented) == set(inputs)
    for name, spec in inputs.items():
        default = spec.get("default")
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert documented[name] == shown, name


def test_every_job_of_the_template_is_in_the_docs() -> None:
    """docs/gitlab.md names each job the template adds (with build and review apps on),
    and names no job the template does not have."""
    text = (ROOT / "docs" / "gitlab.md").read_text()
    jobs = set(render({"build": "true", "review_apps": "true"}))
    documented = set(re.findall(r"`(production-[a-z-]+)`", text))
    documented |= {f"production-{j}" for j in re.findall(r"`<prefix>-([a-z-]+)`", text)}
    assert jobs <= documented
    assert documented <= jobs
