"""Webhook notifications: a local HTTP server receives what a real deploy, a failed
deploy, a rollback and a down post (Slack, Teams and generic JSON shapes, checked field by
field, no secret bytes); a webhook that is down or slow never changes the outcome and
holds the command up no longer than its timeout."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployer.cli import main
from deployer.context import Context, MergeRequest
from deployer.manifest.model import NotifyPolicy, Webhook
from deployer.notify import send
from deployer.report.redact import Redactor
from deployer.result import DeployResult, Outcome, StepRecord, StepStatus
from tests.testenv import TestEnv

PORT = 18451  # the local webhook server
CLOSED_PORT = 18452  # nothing listens here
SECRET = "app-secret-71f3c9d2e8"
HOOK_TOKEN = "T0K3N-b7d41c9a2f"  # the part of a webhook URL that is its credential


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookServer:
    received: list[Received] = field(default_factory=list)
    slow_done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{PORT}/{name}/{HOOK_TOKEN}"

    def by_path(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.startswith(f"/{name}/")]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    state = HookServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/slow/"):
                time.sleep(5)
                state.slow_done.set()
            with state.lock:
                state.received.append(Received(self.path, dict(self.headers), body))
            code = 500 if self.path.startswith("/broken/") else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- sending, without a deploy ------------------------------------------------------------

CTX = Context(
    commit_sha="0123456789abcdef0123456789abcdef01234567",
    ref="main",
    project_path="shop/web",
    job_url="https://gitlab.example.com/shop/web/-/jobs/42",
    pipeline_url="https://gitlab.example.com/shop/web/-/pipelines/7",
    user="alice",
    merge_request=MergeRequest(
        iid=12, title="Faster checkout", author="bob", url="https://gitlab.example.com/mr/12"
    ),
    in_ci=True,
)


def _failed_result() -> DeployResult:
    return DeployResult(
        app="shop",
        environment="production",
        outcome=Outcome.ROLLED_BACK,
        release="20261129T120000000Z-0123456",
        seconds=12.34,
        error="web on unix:///var/run/docker.sock: unhealthy after 20 s",
        url="https://shop.example.com/",
        steps=[
            StepRecord(
                "h",
                "rollout web",
                "rollout",
                "web",
                StepStatus.FAILED,
                log_excerpt=f"boot: APP_SECRET={SECRET}",
            ),
            StepRecord("h", "rollout worker", "rollout", "worker", StepStatus.ROLLED_BACK),
        ],
    )


def test_payload_shapes_field_by_field(hooks: HookServer) -> None:
    policy = NotifyPolicy(
        timeout=5,
        webhooks=(
            Webhook(hooks.url("slack"), "slack"),
            Webhook(hooks.url("teams"), "teams"),
            Webhook(hooks.url("json"), "json"),
            Webhook(hooks.url("success-only"), "json", on=("success",)),
        ),
    )
    lines: list[str] = []
    send(policy, _failed_result(), CTX, "deploy", redact=Redactor([SECRET]), log=lines.append)
    assert lines == [
        "notify: webhook 1 (slack) sent (failure)",
        "notify: webhook 2 (teams) sent (failure)",
        "notify: webhook 3 (json) sent (failure)",
    ]
    assert hooks.by_path("success-only") == []

    (generic,) = hooks.by_path("json")
    assert generic.headers["Content-Type"] == "application/json"
    data = generic.json()
    assert data["kind"] == "deploy"
    assert data["event"] == "failure"
    assert data["outcome"] == "rolled-back"
    assert data["app"] == "shop"
    assert data["environment"] == "production"
    assert data["release"] == "20261129T120000000Z-0123456"
    assert data["commit"] == CTX.commit_sha
    assert data["merge_request"] == {
        "iid": 12,
        "title": "Faster checkout",
        "url": "https://gitlab.example.com/mr/12",
    }
    assert data["user"] == "alice"
    assert data["seconds"] == 12.3
    assert data["failed_services"] == ["web"]
    assert data["job_url"] == CTX.job_url
    assert data["url"] == "https://shop.example.com/"
    assert data["text"] == "deploy of shop → production FAILED (rolled-back)"

    (slack,) = hooks.by_path("slack")
    s = slack.json()
    assert s["text"] == data["text"]
    assert s["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"*{data['text']}*"},
    }
    fields = {
        f["text"].split("\n", 1)[0]: f["text"].split("\n", 1)[1] for f in s["blocks"][1]["fields"]
    }
    assert fields["*App*"] == "shop"
    assert fields["*Environment*"] == "production"
    assert fields["*Commit*"] == CTX.commit_sha[:12]
    assert fields["*Merge request*"] == "!12 Faster checkout"
    assert fields["*User*"] == "alice"
    assert fields["*Failed services*"] == "web"
    assert {"type": "mrkdwn", "text": f"<{CTX.job_url}|Job>"} in s["blocks"][2]["elements"]

    (teams,) = hooks.by_path("teams")
    t = teams.json()
    assert t["type"] == "message"
    (attachment,) = t["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == data["text"]
    assert card["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Failed services"] == "web"
    assert facts["Release"] == "20261129T120000000Z-0123456"
    assert {"type": "Action.OpenUrl", "title": "Job", "url": CTX.job_url} in card["actions"]

    for r in hooks.all():
        assert SECRET.encode() not in r.body  # the log excerpt is never sent
        assert HOOK_TOKEN.encode() not in r.body
        assert b"boot:" not in r.body


def test_down_or_slow_webhooks_are_bounded_and_logged(hooks: HookServer) -> None:
    policy = NotifyPolicy(
        timeout=1,
        webhooks=(
            Webhook(hooks.url("slow"), "json"),
            Webhook(f"http://127.0.0.1:{CLOSED_PORT}/{HOOK_TOKEN}", "slack"),
            Webhook(hooks.url("broken"), "teams"),
        ),
    )
    lines: list[str] = []
    result = DeployResult(app="shop", environment="production", outcome=Outcome.DEPLOYED)
    send(policy, result, CTX, "deploy", redact=Redactor([]), log=lines.append)
    # send() returned before the slow server (5 s) answered: bounded by the timeout.
    assert not hooks.slow_done.is_set()
    assert lines[0] == "notify: webhook 1 (json) not sent: no answer within 1 s"
    assert lines[1].startswith("notify: webhook 2 (slack) not sent: cannot connect")
    assert lines[2] == "notify: webhook 3 (teams) not sent: HTTP 500"
    assert all(HOOK_TOKEN not in line for line in lines)
    assert result.outcome is Outcome.DEPLOYED


# -- the manifest's notify section -------------------------------------------------------


def _validate(tmp_path: Path, notify: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    f = tmp_path / "deploy.yml"
    f.write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n  web: {image: r/web:1}\n" + notify
    )
    out = io.StringIO()
    code = main(["validate", "-f", str(f), "--env", "production"], out)
    return code, out.getvalue()


def test_notify_section_is_validated_without_quoting_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOK", f"ftp://hooks.example.com/{HOOK_TOKEN}")
    code, out = _validate(tmp_path, "notify:\n  timeout: 1m\n  webhooks:\n    - url: ${HOOK}\n")
    err = out + capsys.readouterr().err
    assert code == 2
    assert "notify.timeout" in err and "at most 30s" in err
    assert "notify.webhooks[0].url" in err and "not an http:// or https:// URL" in err
    assert HOOK_TOKEN not in err + out
    code, out = _validate(
        tmp_path, "notify:\n  webhooks:\n    - {url: 'https://h.example.com/x', format: slak}\n"
    )
    assert code == 2
    assert "slak" in out + capsys.readouterr().err
    # An unset variable with an empty default turns the webhook off in that pipeline.
    monkeypatch.delenv("HOOK")
    code, out = _validate(tmp_path, "notify:\n  webhooks:\n    - url: ${HOOK:-}\n")
    assert code == 0, out + capsys.readouterr().err


# -- real deploys on the real engine -------------------------------------------------------

MANIFEST = """\
app: {app}
environments:
  test:
    hosts: ["{host}"]
    url: http://{app}.localhost/
services:
  web:
    image: ${{WEB_IMAGE}}
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
notify:
  timeout: 10s
  webhooks:
    - url: ${{SLACK_WEBHOOK_URL}}
      format: slack
    - url: ${{TEAMS_WEBHOOK_URL}}
      format: teams
      on: [failure]
    - url: ${{JSON_WEBHOOK_URL}}
    - url: http://127.0.0.1:{closed}/{token}
"""

CI_VARIABLES = {
    "GITLAB_CI": "true",
    "CI_COMMIT_SHA": "89abcdef0123456789abcdef0123456789abcdef",
    "CI_COMMIT_REF_NAME": "main",
    "CI_PROJECT_PATH": "shop/web",
    "CI_JOB_ID": "4242",
    "CI_JOB_URL": "https://gitlab.example.com/shop/web/-/jobs/4242",
    "GITLAB_USER_LOGIN": "alice",
    "CI_MERGE_REQUEST_IID": "31",
    "CI_MERGE_REQUEST_TITLE": "New checkout",
    "CI_PROJECT_URL": "https://gitlab.example.com/shop/web",
}


def _run(project: Path, command: str, image: str, mp: pytest.MonkeyPatch) -> tuple[int, str]:
    mp.setenv("WEB_IMAGE", image)
    out = io.StringIO()
    code = main(
        [command, "-f", str(project), "--env", "test", "--report-dir", str(project.parent / "r")],
        out,
    )
    return code, out.getvalue()


@pytest.mark.integration
def test_deploy_failed_deploy_and_rollback_post_their_outcome(
    app: str, testenv: TestEnv, hooks: HookServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST", "CI_SERVER_URL", "CI_JOB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    for k, v in CI_VARIABLES.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", hooks.url("slack"))
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", hooks.url("teams"))
    monkeypatch.setenv("JSON_WEBHOOK_URL", hooks.url("json"))
    project = tmp_path / "deploy.yml"
    project.write_text(
        MANIFEST.format(app=app, host=testenv.engine_host, closed=CLOSED_PORT, token=HOOK_TOKEN)
    )
    outputs = []

    # A good deploy: slack and json post; teams only wants failures; the closed port is
    # one log line and the deploy succeeds.
    code, out = _run(project, "deploy", testenv.image_v1, monkeypatch)
    outputs.append(out)
    assert code == 0, out
    assert "notify: webhook 1 (slack) sent (success)" in out
    assert "notify: webhook 3 (json) sent (success)" in out
    assert "notify: webhook 4 (json) not sent: cannot connect" in out
    assert "webhook 2" not in out
    (first,) = [r.json() for r in hooks.by_path("json")]
    report = json.loads((tmp_path / "r" / "deploy-report.json").read_text())
    assert first["kind"] == "deploy"
    assert first["event"] == "success"
    assert first["outcome"] == "deployed"
    assert first["app"] == app
    assert first["environment"] == "test"
    assert first["release"] == report["release"] and first["release"]
    assert first["commit"] == CI_VARIABLES["CI_COMMIT_SHA"]
    assert first["merge_request"]["iid"] == 31
    assert first["merge_request"]["title"] == "New checkout"
    assert first["user"] == "alice"
    assert first["job_url"] == CI_VARIABLES["CI_JOB_URL"]
    assert first["url"] == f"http://{app}.localhost/"
    assert first["failed_services"] == []
    assert first["seconds"] > 0
    (slack,) = [r.json() for r in hooks.by_path("slack")]
    assert slack["text"] == f"{app} → test deployed"

    # A second deploy (v2), then the rollback job's command puts v1 back and says so.
    code, out = _run(project, "deploy", testenv.image_v2, monkeypatch)
    outputs.append(out)
    assert code == 0, out
    code, out = _run(project, "rollback", testenv.image_v2, monkeypatch)
    outputs.append(out)
    assert code == 0, out
    rollback = hooks.by_path("json")[-1].json()
    assert rollback["kind"] == "rollback"
    assert rollback["event"] == "success"
    assert rollback["release"] and rollback["release"] != first["release"]
    assert hooks.by_path("slack")[-1].json()["text"] == f"{app} → test rolled back"

    # A failed deploy (the container crashes): rolled back, exit 1, and the teams card
    # names the failed service.
    code, out = _run(project, "deploy", testenv.image_crash, monkeypatch)
    outputs.append(out)
    assert code == 1, out
    failed = hooks.by_path("json")[-1].json()
    assert failed["event"] == "failure"
    assert failed["outcome"] == "rolled-back"
    assert failed["failed_services"] == ["web"]
    assert failed["error"]
    (teams,) = [r.json() for r in hooks.by_path("teams")]
    card = teams["attachments"][0]["content"]
    assert card["body"][0]["text"] == f"deploy of {app} → test FAILED (rolled-back)"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Failed services"] == "web"

    # down (the stop job) removes the environment and says so.
    out = io.StringIO()
    code = main(["down", "-f", str(project), "--env", "test"], out)
    outputs.append(out.getvalue())
    assert code == 0, out.getvalue()
    assert "notify: webhook 3 (json) sent (success)" in out.getvalue()
    down = hooks.by_path("json")[-1].json()
    assert down["kind"] == "down"
    assert down["event"] == "success"
    assert down["outcome"] == "removed"
    assert down["app"] == app and down["environment"] == "test"
    assert hooks.by_path("slack")[-1].json()["text"] == f"{app} → test taken down"

    for r in hooks.all():
        assert SECRET.encode() not in r.body
        assert HOOK_TOKEN.encode() not in r.body
    for text in outputs:
        assert SECRET not in text
        assert HOOK_TOKEN not in text
    for path in (tmp_path / "r").iterdir():
        assert HOOK_TOKEN.encode() not in path.read_bytes(), path
        assert SECRET.encode() not in path.read_bytes(), path
