"""The include template, run by gitlab-ci-local against the real local engine and
registry: an example app repository includes it (local include with inputs); the merge
request pipeline validates and plans; the manual deploy job deploys; re-running an
older commit's deploy job puts that commit's images back (GitLab's "rollback
environment"); the rollback job restores the previous release. The jobs run the
deployer of this checkout (shell executor; `command` input), and every byte they wrote
is scanned for the app's secret.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from tests.ci.local import DEPLOYER, TEMPLATE, LocalRepo
from tests.testenv import TestEnv, repo_digest

SECRET = "ci-secret-5b1e0c7a9d"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


MANIFEST = """\
app: {app}
environments:
  production:
    url: http://{app}.localhost/
services:
  web:
    image: {registry}/testapp/web:{tag}
    environment:
      APP_SECRET: ${{APP_SECRET}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 10s
      retries: 5
rollout:
  health_timeout: 120s
  healthy_after: 1s
  drain: 0s
"""

PIPELINE = """\
stages: [build, test, deploy]

include:
  - local: ci/deploy.gitlab-ci.yml
    inputs:
      environment: production
      command: {command}
      resource_group: {app}
      options: --wait-lock 30s
"""


class AppRepo(LocalRepo):
    def commit(self, tag: str, registry: str) -> str:
        (self.path / "deploy.yml").write_text(
            MANIFEST.format(app=self.app, registry=registry, tag=tag)
        )
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"web {tag}")
        return self.git("rev-parse", "HEAD").strip()

    def job_log(self, job: str) -> str:
        return (self.path / ".gitlab-ci-local" / "output" / f"{job}.log").read_text()

    def artifact(self, job: str, name: str) -> Path:
        return self.path / ".gitlab-ci-local" / "artifacts" / job / "deploy-reports" / name


@pytest.fixture
def repo(tmp_path: Path, app: str, gitlab_ci_local: Path) -> Iterator[AppRepo]:
    path = tmp_path / "app"
    path.mkdir()
    (path / "ci").mkdir()
    shutil.copy2(TEMPLATE, path / "ci" / "deploy.gitlab-ci.yml")
    (path / ".gitlab-ci.yml").write_text(PIPELINE.format(command=DEPLOYER, app=app))
    (path / ".gitignore").write_text(".gitlab-ci-local/\ndeploy-reports/\n")
    r = AppRepo(path, gitlab_ci_local, app, SECRET)
    r.init()
    yield r


def _running_digest(engine: docker.DockerClient, app: str) -> set[str]:
    found = engine.containers.list(
        filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}=web", f"{L.ROLE}={L.ROLE_CURRENT}"]}
    )
    return {c.labels.get(L.DIGEST, "") for c in found}


def test_merge_request_pipeline_validates_and_plans(repo: AppRepo, testenv: TestEnv) -> None:
    repo.commit("v1", testenv.registry)
    proc = repo.pipeline(
        "--variable",
        "CI_PIPELINE_SOURCE=merge_request_event",
        "--variable",
        "CI_MERGE_REQUEST_IID=7",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  production-validate" in proc.stdout
    assert "PASS  production-plan" in proc.stdout
    # The manual deploy and rollback jobs did not run.
    assert "production-deploy starting" not in proc.stdout
    assert "production-rollback starting" not in proc.stdout
    # Review apps are opt-in (input review_apps): not in this pipeline.
    assert "production-review" not in proc.stdout
    assert "valid for production" in repo.job_log("production-validate")
    plan_log = repo.job_log("production-plan")
    # No GitLab API here (gitlab-ci-local sets no job token): validate-only, saying why.
    assert (
        "validate only: no GitLab API access here (CI_SERVER_URL or CI_JOB_TOKEN is not set)"
        in plan_log
    )
    assert "valid for production (1 services)" in plan_log
    repo.assert_no_secret(proc.stdout, proc.stderr)


def test_push_pipeline_has_no_merge_request_jobs(repo: AppRepo, testenv: TestEnv) -> None:
    repo.commit("v1", testenv.registry)
    proc = repo.pipeline("--list")
    assert proc.returncode == 0, proc.stderr
    jobs = {line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert {"production-deploy", "production-rollback"} <= jobs
    assert "production-validate" not in jobs
    frozen = repo.pipeline("--list", "--variable", "CI_DEPLOY_FREEZE=true")
    assert "production-deploy" not in frozen.stdout


def _deploy_job(repo: AppRepo, job: str = "production-deploy") -> subprocess.CompletedProcess[str]:
    proc = repo.pipeline(job)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"PASS  {job}" in proc.stdout
    repo.assert_no_secret(proc.stdout, proc.stderr)
    return proc


def test_manual_deploy_environment_rollback_and_rollback_job(
    repo: AppRepo, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    v1 = repo_digest(engine, testenv.image_v1)
    v2 = repo_digest(engine, testenv.image_v2)
    first = repo.commit("v1", testenv.registry)

    # The manual deploy job on the default branch deploys v1.
    _deploy_job(repo)
    assert _running_digest(engine, repo.app) == {v1}
    # The environment's URL comes from the dotenv report (gitlab-ci-local prints the URL
    # before it reads the report, GitLab after).
    env = dict(
        line.split("=", 1)
        for line in repo.artifact("production-deploy", "deploy.env").read_text().splitlines()
    )
    assert env["DEPLOY_URL"] == f"http://{repo.app}.localhost/"
    assert env["DEPLOY_ENVIRONMENT"] == "production"
    assert env["DEPLOY_OUTCOME"] == "deployed"
    assert env["DEPLOY_COMMIT"] == first
    release_v1 = env["DEPLOY_RELEASE"]
    assert release_v1
    report = json.loads(repo.artifact("production-deploy", "deploy-report.json").read_text())
    assert report["outcome"] == "deployed"
    assert report["digests"] == {"web": v1}
    assert report["plan"]["hosts"][0]["steps"][0]["action"] == "create"
    assert any(s["kind"] == "rollout" and s["status"] == "ok" for s in report["steps"])
    suite = ET.parse(repo.artifact("production-deploy", "deploy-junit.xml")).getroot()
    assert suite.get("failures") == "0"
    cases = [c.get("name") or "" for c in suite.iter("testcase")]
    assert any("web" in name for name in cases), cases
    log = repo.job_log("production-deploy")
    assert "deploy note not posted" in log or "not posted" in log

    # A new commit with v2, deployed by its own deploy job.
    repo.commit("v2", testenv.registry)
    _deploy_job(repo)
    assert _running_digest(engine, repo.app) == {v2}
    env = dict(
        line.split("=", 1)
        for line in repo.artifact("production-deploy", "deploy.env").read_text().splitlines()
    )
    assert env["DEPLOY_PREVIOUS_RELEASE"] == release_v1

    # GitLab's "rollback environment" re-runs the older commit's deploy job: its own
    # manifest pins its own images, so v1 comes back.
    second = repo.git("rev-parse", "HEAD").strip()
    repo.git("checkout", "-q", "-B", "main", first)
    _deploy_job(repo)
    assert _running_digest(engine, repo.app) == {v1}

    # Back on the newest commit, the manual rollback job restores the release before
    # the current one (v2, recorded by the second deploy).
    repo.git("checkout", "-q", "-B", "main", second)
    _deploy_job(repo, "production-rollback")
    assert _running_digest(engine, repo.app) == {v2}
    rollback = json.loads(repo.artifact("production-rollback", "deploy-report.json").read_text())
    assert rollback["outcome"] == "deployed"
    assert rollback["digests"] == {"web": v2}


def test_failed_deploy_job_reports_the_failure(
    repo: AppRepo, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    repo.commit("crash", testenv.registry)
    proc = repo.pipeline("production-deploy")
    assert proc.returncode != 0, proc.stdout
    assert "FAIL  production-deploy" in proc.stdout
    repo.assert_no_secret(proc.stdout, proc.stderr)
    assert _running_digest(engine, repo.app) == set()  # rolled back: nothing left running

    # artifacts: when: always — the reports of the failed run are there.
    env = dict(
        line.split("=", 1)
        for line in repo.artifact("production-deploy", "deploy.env").read_text().splitlines()
    )
    assert env["DEPLOY_OUTCOME"] == "rolled-back"
    report = json.loads(repo.artifact("production-deploy", "deploy-report.json").read_text())
    assert report["failed"] is True
    assert report["error"]
    suite = ET.parse(repo.artifact("production-deploy", "deploy-junit.xml")).getroot()
    assert suite.get("failures") == "1"
    (failure,) = suite.iter("failure")
    assert failure.text  # the failed container's log excerpt


def test_logs_and_stop_jobs_against_the_engine(
    repo: AppRepo, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    manifest = MANIFEST.format(app=repo.app, registry=testenv.registry, tag="v1").replace(
        "    environment:\n      APP_SECRET",
        '    command: ["sh", "-c", "echo web says hello; exec /web.sh"]\n'
        "    environment:\n      APP_SECRET",
    )
    (repo.path / "deploy.yml").write_text(manifest)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "web v1")
    _deploy_job(repo)
    assert _running_digest(engine, repo.app)

    # The logs button: the job log shows every replica's lines, kept as an artifact.
    proc = _deploy_job(repo, "production-logs")
    log = repo.job_log("production-logs")
    assert "unix:///var/run/docker.sock web.1 | " in log and "web says hello" in log, log
    saved = repo.path / ".gitlab-ci-local" / "artifacts" / "production-logs"
    text = (saved / "deploy-reports" / "logs.txt").read_text()
    assert "web says hello" in text and "\x1b[" not in text
    repo.assert_no_secret(proc.stdout)

    # The restart button, the service chosen by a variable: new containers, same image.
    before = {c.id for c in engine.containers.list(filters={"label": f"{L.APP}={repo.app}"})}
    proc = repo.pipeline("production-restart", "--variable", "DEPLOYER_SERVICES=web")
    assert proc.returncode == 0 and "PASS  production-restart" in proc.stdout, proc.stdout
    after = {c.id for c in engine.containers.list(filters={"label": f"{L.APP}={repo.app}"})}
    assert after and not after & before
    assert "no release recorded" in repo.job_log("production-restart")
    proc = repo.pipeline("production-stats")
    assert proc.returncode == 0 and "web.1" in repo.job_log("production-stats"), proc.stdout

    # The environment's stop button takes the app off the host; its data would stay.
    _deploy_job(repo, "production-stop")
    assert not engine.containers.list(all=True, filters={"label": f"{L.APP}={repo.app}"})
