"""Review apps, run by gitlab-ci-local against the real engine: an app repository
includes the template with `review_apps: true`; the merge request pipelines of two
branches deploy `review/<slug>` each, side by side (the manifest's `review/*` pattern
gives both their settings, `${DEPLOYER_ENVIRONMENT_SLUG}` their URLs and their host names
on the edge proxy); the stop job of one removes its containers, network, releases and
route, and the other keeps serving through the proxy."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bench.proxy_probe import get
from deployer import labels as L
from tests.ci.local import DEPLOYER, TEMPLATE, LocalRepo
from tests.conftest import Cleanup
from tests.proxy.conftest import Edge, make_edge, proxy_image  # noqa: F401 - a fixture
from tests.testenv import TestEnv

SECRET = "review-secret-0c4f9a7e21"
EDGE_PORT = 18454

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MANIFEST = """\
app: {app}
environments:
  production:
    url: http://{app}.example.com/
    variables:
      GREETING: hello from production
  review/*:
    url: http://${{DEPLOYER_ENVIRONMENT_SLUG}}.{app}.localhost/
    variables:
      GREETING: hello from ${{DEPLOYER_ENVIRONMENT}}
    proxy: {edge}
services:
  web:
    image: {image}
    init: true
    proxy:
      host: ${{DEPLOYER_ENVIRONMENT_SLUG}}.{app}.localhost
      port: 8080
      healthcheck: /version
    environment:
      APP_SECRET: ${{APP_SECRET}}
      GREETING: ${{GREETING}}
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
  - local: ci/deploy.yml
    inputs:
      environment: production
      command: {command}
      review_apps: true
      options: --wait-lock 60s
"""


class AppRepo(LocalRepo):
    def mr_pipeline(self, branch: str, iid: int, *jobs: str) -> subprocess.CompletedProcess[str]:
        """gitlab-ci-local on ``branch`` as a merge request pipeline (it sets no MR
        variables itself)."""
        self.git("checkout", "-q", branch)
        return self.pipeline(
            "--variable",
            "CI_PIPELINE_SOURCE=merge_request_event",
            "--variable",
            f"CI_MERGE_REQUEST_IID={iid}",
            *jobs,
            timeout=600,
        )

    def dotenv(self) -> dict[str, str]:
        path = self.path / ".gitlab-ci-local" / "artifacts" / "production-review"
        text = (path / "deploy-reports" / "deploy.env").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.fixture
def edge(engine: docker.DockerClient, cleanup: Cleanup, app: str, proxy_image: str) -> Edge:  # noqa: F811
    return make_edge(engine, cleanup, app, EDGE_PORT, proxy_image)


@pytest.fixture
def repo(
    tmp_path: Path, app: str, gitlab_ci_local: Path, testenv: TestEnv, edge: Edge
) -> Iterator[AppRepo]:
    path = tmp_path / "app"
    (path / "ci").mkdir(parents=True)
    shutil.copy2(TEMPLATE, path / "ci" / "deploy.yml")
    (path / ".gitlab-ci.yml").write_text(PIPELINE.format(command=DEPLOYER))
    (path / ".gitignore").write_text(".gitlab-ci-local/\ndeploy-reports/\n")
    (path / "deploy.yml").write_text(
        MANIFEST.format(app=app, image=testenv.image_v1, edge=edge.yaml(drain="1s"))
    )
    r = AppRepo(path, gitlab_ci_local, app, SECRET)
    r.init()
    r.git("add", "-A")
    r.git("commit", "-q", "-m", "app")
    for branch in ("feat-a", "Feat/B"):
        r.git("branch", branch)
    yield r


def _containers(
    engine: docker.DockerClient, app: str, env: str
) -> list[docker.models.containers.Container]:
    return engine.containers.list(
        all=True, filters={"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]}
    )


def _serves(engine: docker.DockerClient, app: str, env: str) -> str:
    """The review app's answer, asked from inside its own container."""
    (web,) = [
        c
        for c in _containers(engine, app, env)
        if c.labels.get(L.ROLE) == L.ROLE_CURRENT and c.status == "running"
    ]
    code, out = web.exec_run(["wget", "-q", "-O", "-", "http://127.0.0.1:8080/version"])
    assert code == 0, out
    env_values = dict(x.split("=", 1) for x in web.attrs["Config"]["Env"] if "=" in x)
    return f"{out.decode().strip()} | {env_values.get('GREETING')}"


def _through_edge(edge: Edge, host: str, want: int = 200, timeout: float = 60) -> str:
    """The answer of ``host`` through the edge proxy, once it is ``want``."""
    deadline = time.monotonic() + timeout
    got: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        got = get(edge.address, host)
        if got[0] == want:
            return got[1]
        time.sleep(0.5)
    raise AssertionError(f"{host} through {edge.address}: wanted {want}, got {got!r}")


def test_two_review_apps_side_by_side_and_one_stopped(
    repo: AppRepo, engine: docker.DockerClient, edge: Edge
) -> None:
    app = repo.app
    # Merge request !1 (branch feat-a): its pipeline validates, plans and deploys the
    # review app automatically; the stop job waits (manual).
    a = repo.mr_pipeline("feat-a", 1)
    assert a.returncode == 0, a.stdout[-4000:] + a.stderr[-2000:]
    assert "PASS  production-review" in a.stdout
    assert "production-review-stop" not in a.stdout.split("PASS  production-review")[0]
    assert "production-deploy starting" not in a.stdout
    env_a = repo.dotenv()
    assert env_a["DEPLOY_ENVIRONMENT"] == "review/feat-a"
    assert env_a["DEPLOY_URL"] == f"http://review-feat-a.{app}.localhost/"
    assert _serves(engine, app, "review/feat-a").endswith("| hello from review/feat-a")

    # Merge request !2 (branch Feat/B, slug feat-b) gets its own environment beside it.
    b = repo.mr_pipeline("Feat/B", 2)
    assert b.returncode == 0, b.stdout[-4000:] + b.stderr[-2000:]
    env_b = repo.dotenv()
    assert env_b["DEPLOY_ENVIRONMENT"] == "review/feat-b"
    assert env_b["DEPLOY_URL"] == f"http://review-feat-b.{app}.localhost/"
    assert _serves(engine, app, "review/feat-a").endswith("| hello from review/feat-a")
    assert _serves(engine, app, "review/feat-b").endswith("| hello from review/feat-b")
    # Both are public through one edge proxy, by host name (built from the slug).
    host_a, host_b = f"review-feat-a.{app}.localhost", f"review-feat-b.{app}.localhost"
    assert _through_edge(edge, host_a)
    assert _through_edge(edge, host_b)
    networks_before = {n.name for n in engine.networks.list() if app in n.name}
    assert any("review-feat-a" in n for n in networks_before), networks_before
    assert any("review-feat-b" in n for n in networks_before), networks_before

    # Stopping !1's environment (its stop job, what GitLab runs on merge, close,
    # auto_stop_in or the Stop button) removes it; !2's app keeps serving.
    stop = repo.mr_pipeline("feat-a", 1, "production-review-stop")
    assert stop.returncode == 0, stop.stdout[-4000:] + stop.stderr[-2000:]
    assert "PASS  production-review-stop" in stop.stdout
    assert _containers(engine, app, "review/feat-a") == []
    networks_after = {n.name for n in engine.networks.list() if app in n.name}
    assert not any("review-feat-a" in n for n in networks_after), networks_after
    assert any("review-feat-b" in n for n in networks_after), networks_after
    assert _serves(engine, app, "review/feat-b").endswith("| hello from review/feat-b")
    # The proxy forgot !1's host name (no route: Caddy answers an empty 200 for
    # unrouted hosts, so ask for the body) and still routes !2's.
    assert (
        "route of web" in stop.stdout
        or "route of web"
        in (repo.path / ".gitlab-ci-local" / "output" / "production-review-stop.log").read_text()
    )
    assert get(edge.address, host_a)[1] == ""
    assert _through_edge(edge, host_b)
    repo.assert_no_secret(a.stdout, a.stderr, b.stdout, b.stderr, stop.stdout, stop.stderr)
