"""`deployer plan --against last-deployment`: the merge request plan without host
credentials. A real deploy on the real engine writes the report (with its state
section); the faked GitLab API (deployments and job artifacts endpoints, payloads as
GitLab documents them) serves it to a plan that runs with DOCKER_HOST at a closed port,
so any host contact would fail. When the report cannot be read, the plan is
validate-only and says why in one line."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from deployer.cli import main
from tests.gitlab.helpers import API, JOB_TOKEN, fixture
from tests.testenv import TestEnv

CLOSED = "tcp://127.0.0.1:18453"  # nothing listens here: a host contact fails (exit 3)
SECRET = "db-password-3c81f0e2aa"
NEW_SECRET = "db-password-new-5d09b7c4"
DEPLOYMENTS = f"{API}/projects/35/deployments"
ARTIFACT = f"{API}/projects/35/jobs/657/artifacts/deploy-reports/deploy-report.json"

MANIFEST = """\
app: {app}
environments:
  production:
    url: http://{app}.localhost/
    allow_insecure_tcp: true  # so that the plan would really try the closed TCP port
services:
  web:
    image: {web_image}
    environment:
      DB_PASSWORD: ${{DB_PASSWORD}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 10s
      retries: 5
  worker:
    image: {worker_image}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 10s
      retries: 5
    deploy:
      replicas: {worker_replicas}
{extra}rollout:
  health_timeout: 120s
  healthy_after: 1s
  drain: 0s
"""


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def _write(path: Path, app: str, web: str, worker: str, replicas: int, extra: str = "") -> None:
    path.write_text(
        MANIFEST.format(
            app=app, web_image=web, worker_image=worker, worker_replicas=replicas, extra=extra
        )
    )


@pytest.fixture
def mr_pipeline(
    mr_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A merge request pipeline's variables, and no host credentials at all."""
    for var in (
        "DEPLOYER_GITLAB_TOKEN",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
        "CI_DEPLOY_PASSWORD",
    ):
        monkeypatch.delenv(var, raising=False)
    env = dict(mr_env)
    env.pop("CI_ENVIRONMENT_NAME")  # the MR plan job has no environment
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DOCKER_HOST", CLOSED)
    yield env


def _serve(
    rsps: responses.RequestsMock,
    report: bytes | None,
    deployments: Any = None,
    status: int = 200,
) -> None:
    rsps.get(
        DEPLOYMENTS,
        json=fixture("deployments_success.json") if deployments is None else deployments,
        status=status,
        match=[
            responses.matchers.query_param_matcher(
                {
                    "environment": "production",
                    "status": "success",
                    "order_by": "id",
                    "sort": "desc",
                    "per_page": "1",
                }
            ),
            responses.matchers.header_matcher({"JOB-TOKEN": JOB_TOKEN}),
        ],
    )
    if report is None:
        rsps.get(ARTIFACT, json=fixture("artifact_not_found.json"), status=404)
    else:
        rsps.get(
            ARTIFACT,
            body=report,
            content_type="application/octet-stream",
            match=[responses.matchers.header_matcher({"JOB-TOKEN": JOB_TOKEN})],
        )


@pytest.mark.integration
def test_plan_against_the_last_deployments_report(
    app: str,
    testenv: TestEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mr_pipeline: dict[str, str],
) -> None:
    manifest = tmp_path / "deploy.yml"
    reports = tmp_path / "deploy-reports"

    # The deploy job: a real deploy on the real engine writes the report.
    with monkeypatch.context() as m:
        for var in list(mr_pipeline):
            m.delenv(var)
        m.setenv("DOCKER_HOST", testenv.engine_host)
        m.setenv("DB_PASSWORD", SECRET)
        _write(manifest, app, testenv.image_v1, testenv.image_v1, 1)
        code, out = _cli("deploy", "-f", str(manifest), "--report-dir", str(reports))
        assert code == 0, out
    report = json.loads((reports / "deploy-report.json").read_text())
    state = report["state"]["services"]
    assert state["web"]["image"] == testenv.image_v1
    assert state["web"]["digest"].split("@")[1] == report["digests"]["web"].split("@")[1]
    assert state["worker"]["replicas"] == 1
    assert "environment" in state["web"]["config_parts"]
    raw = (reports / "deploy-report.json").read_bytes()
    assert SECRET.encode() not in raw

    # The merge request: a new web image, a changed environment value, a second worker
    # and a new service. The MR pipeline has no host credentials: DOCKER_HOST is closed.
    monkeypatch.setenv("DB_PASSWORD", NEW_SECRET)
    cache = f"  cache:\n    image: {testenv.image_v1}\n"
    _write(manifest, app, testenv.image_v2, testenv.image_v1, 2, extra=cache)
    code, out = _cli("plan", "-f", str(manifest))
    assert code == 3, out  # the live plan would have to contact the (closed) host

    with responses.RequestsMock() as rsps:
        _serve(rsps, raw)
        code, out = _cli("plan", "-f", str(manifest), "--against", "last-deployment")
        calls = [c.request.url for c in rsps.calls]
    assert code == 0, out + str(calls)
    lines = out.splitlines()
    assert lines[0] == (
        f"Plan: {app} → production, against the last deployment (deployment #41, job 657, "
        f"commit 99d03678, release {report['release']}), not the hosts' live state"
    )
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert re.search(
        rf"web\s+replace\s+image {re.escape(testenv.image_v1)} → "
        rf"{re.escape(testenv.image_v2)}; changed: environment$",
        rows["web"],
    ), rows["web"]
    assert re.search(r"worker\s+scale\s+replicas 1 → 2$", rows["worker"]), rows["worker"]
    assert re.search(r"cache\s+create\s+new service$", rows["cache"]), rows["cache"]
    assert lines[-1].startswith("3 service(s) would change.")
    assert SECRET not in out and NEW_SECRET not in out

    # Unchanged manifest (as deployed): nothing would change; --detailed-exitcode says 0.
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    _write(manifest, app, testenv.image_v1, testenv.image_v1, 1)
    with responses.RequestsMock() as rsps:
        _serve(rsps, raw)
        code, out = _cli(
            "plan", "-f", str(manifest), "--against", "last-deployment", "--detailed-exitcode"
        )
    assert code == 0, out
    assert re.search(r"web\s+unchanged", out) and re.search(r"worker\s+unchanged", out)


def _report(**overrides: Any) -> bytes:
    data: dict[str, Any] = {
        "schema_version": 1,
        "app": "shop",
        "environment": "production",
        "outcome": "deployed",
        "release": "20261128T091410000Z-99d0367",
        "state": {
            "engine": "container",
            "services": {
                "web": {
                    "image": "registry.example.com/shop/web:1",
                    "digest": None,
                    "replicas": 1,
                    "config_hash": "0",
                    "config_parts": {},
                }
            },
        },
    }
    data.update(overrides)
    return json.dumps(data).encode()


def _plan(tmp_path: Path) -> tuple[int, str]:
    f = tmp_path / "deploy.yml"
    f.write_text(
        "app: shop\nenvironments:\n  production: {}\n"
        "services:\n  web: {image: registry.example.com/shop/web:2}\n"
    )
    return _cli("plan", "-f", str(f), "--against", "last-deployment")


def test_plan_against_a_recorded_report_without_a_host(
    tmp_path: Path, mr_pipeline: dict[str, str]
) -> None:
    with responses.RequestsMock() as rsps:
        _serve(rsps, _report())
        code, out = _plan(tmp_path)
    assert code == 0, out
    assert "against the last deployment (deployment #41, job 657" in out
    assert re.search(
        r"web\s+replace\s+image registry.example.com/shop/web:1 → "
        r"registry.example.com/shop/web:2$",
        out,
        re.MULTILINE,
    ), out


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no deployment", "production has no successful deployment yet"),
        (
            "artifact expired",
            "job 657 (deployment #41) kept no deploy-reports/deploy-report.json "
            "(expired, or the job did not keep it)",
        ),
        (
            "token refused",
            "cannot list the deployments of production: GitLab refused the token (HTTP 401)",
        ),
        ("not json", "job 657's deploy-reports/deploy-report.json is not JSON"),
        (
            "failed deploy",
            "job 657's report records a deploy that did not succeed (rolled-back)",
        ),
        (
            "no state",
            "the recorded report: it has no state section (written by an older deployer?)",
        ),
        ("other app", "job 657's report is of cart/production, not shop/production"),
    ],
)
def test_validate_only_with_the_reason(
    case: str, reason: str, tmp_path: Path, mr_pipeline: dict[str, str]
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if case == "no deployment":
            _serve(rsps, _report(), deployments=[])
        elif case == "artifact expired":
            _serve(rsps, None)
        elif case == "token refused":
            _serve(rsps, None, deployments=fixture("unauthorized.json"), status=401)
        elif case == "not json":
            _serve(rsps, b"PK\x03\x04 a zip, not a report")
        elif case == "failed deploy":
            _serve(rsps, _report(outcome="rolled-back"))
        elif case == "no state":
            _serve(rsps, _report(state=None))
        elif case == "other app":
            _serve(rsps, _report(app="cart"))
        code, out = _plan(tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"validate only: {reason}"
    assert lines[1].endswith("valid for production (1 services)")
    assert JOB_TOKEN not in out


def test_validate_only_without_a_job_token(
    tmp_path: Path, mr_pipeline: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_JOB_TOKEN")
    with responses.RequestsMock():  # no request at all
        code, out = _plan(tmp_path)
    assert code == 0
    assert out.splitlines()[0] == (
        "validate only: no GitLab API access here (CI_SERVER_URL or CI_JOB_TOKEN is not set)"
    )
