"""Secrets never appear in anything the deployer writes.

The real CLI runs (validate, plan, deploy, status, a failing deploy whose container
prints its environment, rollback) against the real engine and the authenticated
registry, with known secret values in the service environment, the registry password
and the GitLab tokens. Every byte written is scanned: stdout, stderr, every report
file, and every label the deployer put on the engine (containers, volumes, networks:
release records live in volume labels). Containers' own environments legitimately
hold the environment secrets; compose secrets (from a variable, or from a File-type
variable's file) are mounted as files only and scanned for in the environments too.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import docker
import pytest

from deployer import labels as L
from tests.cli import Job, cli, job_environ
from tests.testenv import TestEnv

SECRETS = {
    "DB_PASSWORD": "db-pass-4f7c2a91e3",
    "API_KEY": "api-key-0d93b6e2c1a8",
    "CI_JOB_TOKEN": "job-token-61a0c9d2e7",
    "DEPLOYER_GITLAB_TOKEN": "glpat-write-3e8b1f0a77",
    "SIGNING_KEY": "signing-key-9a4e07c2b5",  # a compose secret from a variable
}
SECRET_FILE = "file-secret-2c8d51f9a0"  # a compose secret from a GitLab File-type variable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MANIFEST = """\
app: {app}
environments:
  production:
    url: http://{app}.localhost/
registry:
  {registry}:
    username: {user}
    password: ${{REGISTRY_PASSWORD}}
services:
  web:
    image: {registry}/testapp/web:{tag}
    environment:
      DB_PASSWORD: ${{DB_PASSWORD}}
      API_KEY: ${{API_KEY}}
    secrets: [signing_key, {{source: cert_key, mode: 0400}}]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 10s  # a check under load can take seconds: not what these tests are about
      retries: 3
{extra}secrets:
  signing_key: {{environment: SIGNING_KEY}}
  cert_key: {{file: "${{CERT_KEY_FILE}}"}}
rollout:
  health_timeout: 30s
  healthy_after: 1s
  drain: 0s
"""

# A service that prints its environment and dies: its log excerpt carries the secret.
LEAKY = """\
  leaky:
    image: {registry}/testapp/task:v1
    command: ["sh", "-c", "echo DB_PASSWORD=$DB_PASSWORD API_KEY=$API_KEY; env; exit 1"]
    environment:
      DB_PASSWORD: ${{DB_PASSWORD}}
      API_KEY: ${{API_KEY}}
"""


def _environ(testenv: TestEnv) -> dict[str, str]:
    return {
        **job_environ(testenv, "engine"),
        "REGISTRY_PASSWORD": testenv.auth_password,
        **SECRETS,
        # A merge request pipeline whose GitLab cannot be reached: every note and
        # lookup fails, and the failure messages must not show the tokens either.
        "GITLAB_CI": "true",
        "CI": "true",
        "CI_SERVER_URL": "http://127.0.0.1:9",
        "CI_PROJECT_ID": "35",
        "CI_PROJECT_PATH": "shop/checkout",
        "CI_JOB_ID": "1",
        "CI_JOB_URL": "http://127.0.0.1:9/shop/checkout/-/jobs/1",
        "CI_COMMIT_SHA": "7b5c3cc8be40ee161ae89a06bba6229da1032a0c",
        "CI_MERGE_REQUEST_IID": "13",
        "CI_MERGE_REQUEST_TITLE": "Rotate the database password",
    }


def test_no_secret_in_any_output(
    tmp_path: Path, app: str, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    env = _environ(testenv)
    (tmp_path / "cert-key-variable").write_text(SECRET_FILE)
    env["CERT_KEY_FILE"] = str(tmp_path / "cert-key-variable")
    secrets = [*SECRETS.values(), SECRET_FILE, testenv.auth_password]
    manifest = tmp_path / "deploy.yml"
    reports = tmp_path / "reports"
    deployer = Job(tmp_path, env, timeout=180)
    written = deployer.written

    def write(tag: str, extra: str = "") -> None:
        manifest.write_text(
            MANIFEST.format(
                app=app,
                registry=testenv.auth_registry,
                user=testenv.auth_user,
                tag=tag,
                extra=extra.format(registry=testenv.auth_registry),
            )
        )

    write("v1")
    deployer("validate")
    deployer("validate", "--format", "json")
    deployer("plan")
    deployer("plan", "--format", "json")
    deployer("plan", "--format", "markdown")
    deployer("deploy", "--report-dir", str(reports / "1"))
    deployer("status")
    deployer("status", "--format", "json")
    write("v2", LEAKY)
    deployer("deploy", "--report-dir", str(reports / "2"), expect=1)
    write("v2")
    deployer("deploy", "--report-dir", str(reports / "3"))
    deployer("rollback", "--report-dir", str(reports / "4"))

    for path in sorted(reports.rglob("*")):
        if path.is_file():
            written.append((str(path), path.read_bytes()))
    for container in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
        written.append((f"labels of {container.name}", repr(container.labels).encode()))
    for volume in engine.volumes.list(filters={"label": f"{L.APP}={app}"}):
        written.append((f"labels of volume {volume.name}", repr(volume.attrs["Labels"]).encode()))
    for network in engine.networks.list(filters={"label": f"{L.APP}={app}"}):
        written.append(
            (f"labels of network {network.name}", repr(network.attrs["Labels"]).encode())
        )

    for container in engine.containers.list(all=True, filters={"label": f"{L.APP}={app}"}):
        env_text = repr(container.attrs["Config"]["Env"])
        for value in (SECRET_FILE, SECRETS["SIGNING_KEY"]):
            assert value not in env_text, f"compose secret in the environment of {container.name}"
        if container.labels.get(L.SERVICE) == "web" and container.status == "running":
            code, got = container.exec_run(["cat", "/run/secrets/cert_key"])
            assert code == 0 and got.decode() == SECRET_FILE  # it arrives, as a file only
    # The scan can fail: the failed deploy's excerpt did hold the secret, masked.
    failed_junit = (reports / "2" / "deploy-junit.xml").read_text()
    assert "DB_PASSWORD=[MASKED]" in failed_junit
    assert any(b"release-record" in data for _, data in written)
    for name, data in written:
        for secret in secrets:
            at = data.find(secret.encode())
            assert at < 0, f"{secret!r} in {name}: ...{data[max(0, at - 300) : at + 60]!r}"


class _GitLab(BaseHTTPRequestHandler):
    """A GitLab API that accepts every call and keeps every request it was sent."""

    seen: ClassVar[list[bytes]] = []

    def _answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}".encode())
        self._answer(200, [] if self.path.split("?")[0].endswith("/notes") else {"iid": 13})

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.seen.append(self.rfile.read(size))
        self._answer(201, {"id": 1, "body": ""})

    do_PUT = do_POST

    def log_message(self, format: str, *args: object) -> None:
        return


# The service's database is named like a piece of the app's name (as rwnextcloud with
# MYSQL_DATABASE=nextcloud), and two short secrets, 5 and 4 characters.
SHORT = {"SHORT_PASSWORD": "q7x2z", "PIN": "k9w4"}
NAMED_MANIFEST = """\
app: {app}
environments:
  production: {{}}
services:
  web:
    image: {registry}/testapp/web:v1
    environment:
      DATABASE: {piece}
      SHORT_PASSWORD: ${{SHORT_PASSWORD}}
      PIN: ${{PIN}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 5s
      retries: 3
{extra}rollout:
  health_timeout: 60s
  healthy_after: 1s
  drain: 0s
"""
LEAKY_SHORT = """\
  leaky:
    image: {registry}/testapp/task:v1
    command: ["sh", "-c", "echo PW=$$SHORT_PASSWORD PIN=$$PIN DB=$$DATABASE; exit 1"]
    environment:
      DATABASE: {piece}
      SHORT_PASSWORD: ${{SHORT_PASSWORD}}
      PIN: ${{PIN}}
"""
BAD = """\
app: {app}
environments:
  production: {{}}
services:
  web:
    image: {registry}/testapp/web:v1
    stop_grace_period: ${{SHORT_PASSWORD}}
    ports: ["${{PIN}}"]
"""


def test_short_secrets_error_paths_the_mr_note_and_names(
    tmp_path: Path, app: str, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    """Short secrets are masked as words in container output and never printed by the
    deployer; a secret in a bad value is quoted as written; the MR note (posted to a GitLab
    that keeps what it is sent) holds no secret; a secret that is a piece of the app's name
    does not garble the name anywhere (log, reports, dotenv, note)."""
    server = ThreadingHTTPServer(("127.0.0.1", 18100), _GitLab)
    _GitLab.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    piece = app[2:]  # 9 characters of the 11 of the app's name
    env = {
        **_environ(testenv),
        **SHORT,
        "CI_SERVER_URL": "http://127.0.0.1:18100",
        "DEPLOYER_GITLAB_TOKEN": SECRETS["DEPLOYER_GITLAB_TOKEN"],
    }
    secrets = [*SHORT.values(), SECRETS["DEPLOYER_GITLAB_TOKEN"]]
    manifest = tmp_path / "deploy.yml"
    reports = tmp_path / "reports"
    deployer = Job(tmp_path, env)
    written = deployer.written

    try:
        registry = testenv.registry
        manifest.write_text(BAD.format(app=app, registry=registry))
        out = deployer("validate", expect=2)
        assert "${SHORT_PASSWORD}" in out and "${PIN}" in out, out
        deployer("validate", "--format", "json", expect=2)
        deployer("plan", expect=2)
        deployer("deploy", "--report-dir", str(reports / "0"), expect=2)
        extra = LEAKY_SHORT.format(registry=registry, piece=piece)
        manifest.write_text(
            NAMED_MANIFEST.format(app=app, registry=registry, piece=piece, extra="")
        )
        deployer("plan")
        out = deployer("deploy", "--report-dir", str(reports / "1"))
        assert app in out
        manifest.write_text(
            NAMED_MANIFEST.format(app=app, registry=registry, piece=piece, extra=extra)
        )
        out = deployer("deploy", "--report-dir", str(reports / "2"), expect=1)
        assert "PW=[MASKED] PIN=[MASKED]" in out, out  # the container's own output, masked
        assert "DB=[MASKED]" in out, out  # a piece of the app's name, in a log line
        assert app in out and f"{app[:2]}[MASKED]" not in out, out
    finally:
        server.shutdown()
        server.server_close()
    for path in sorted(reports.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            written.append((str(path), data))
            if path.name in ("deploy.json", "deploy.env", "deploy-summary.md"):
                assert app.encode() in data, path
                assert f"{app[:2]}[MASKED]".encode() not in data, path
    notes = [b for b in _GitLab.seen if b.startswith(b"{") and b"body" in b]
    assert notes, _GitLab.seen  # the MR note was posted, and is scanned below
    assert any(app.encode() in n for n in notes), notes
    for i, body in enumerate(_GitLab.seen):
        written.append((f"request {i} to GitLab", body))
    for name, data in written:
        assert f"{app[:2]}[MASKED]".encode() not in data, name
        for secret in secrets:
            at = data.find(secret.encode())
            assert at < 0, f"{secret!r} in {name}: ...{data[max(0, at - 300) : at + 60]!r}"


ECHOED = """\
app: {app}
environments:
  production: {{}}
services:
  web:
    image: {image}
    user: ${{APP_USER}}
    environment:
      APP_USER: ${{APP_USER}}
rollout:
  health_timeout: 10s
"""


def test_an_engine_error_quoting_a_secret_is_masked(
    tmp_path: Path, app: str, testenv: TestEnv
) -> None:
    """The engine's own error text can quote a value the deployer knows is secret: here a
    service's environment value is also its ``user``, and the engine refuses to start the
    container with "unable to find user <value>". The deploy fails; the error the deployer
    prints (stderr, through its one top-level handler), the job log and every report show
    the value masked. Before, the handler printed the engine's text as it came."""
    secret = "svc-user-5b0e9c2d71"
    env = {**job_environ(testenv, "engine"), "APP_USER": secret}
    (tmp_path / "deploy.yml").write_text(ECHOED.format(app=app, image=testenv.image_v1))
    reports = tmp_path / "reports"
    deployer = Job(tmp_path, env)
    out = deployer("deploy", "--report-dir", str(reports), expect=1)
    assert "unable to find user [MASKED]" in out, out  # the engine did quote it
    for path in sorted(reports.rglob("*")):
        if path.is_file():
            deployer.written.append((str(path), path.read_bytes()))
    for name, data in deployer.written:
        at = data.find(secret.encode())
        assert at < 0, f"{secret!r} in {name}: ...{data[max(0, at - 300) : at + 60]!r}"


HOOK_SECRET = "hook-token-5b1e9c07d3"
HOOKS_MANIFEST = """\
app: {app}
environments:
  production: {{}}
services:
  web:
    image: {image}
    init: true
    {hook}:
      - command: ["sh", "-c", "echo TOKEN=$$HOOK_TOKEN; exit 3"]
        environment: {{HOOK_TOKEN: "${{HOOK_TOKEN}}"}}
rollout:
  health_timeout: 30s
  healthy_after: 1s
  drain: 0s
"""


def test_a_hooks_variables_are_masked_in_its_output(
    tmp_path: Path, app: str, testenv: TestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook's environment values are secrets, as a service's: a failing pre_stop or
    post_start that prints them shows them masked in the job log and the reports."""
    for k, v in {**job_environ(testenv, "engine"), "HOOK_TOKEN": HOOK_SECRET}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "deploy.yml"
    reports = tmp_path / "reports"
    written: list[tuple[str, bytes]] = []
    for i, (hook, image, expect) in enumerate(
        [
            ("pre_stop", testenv.image_v1, 0),
            ("pre_stop", testenv.image_v2, 0),  # the pre_stop of v1's container fails
            ("post_start", testenv.image_v1, 1),  # the new container's post_start fails
        ]
    ):
        manifest.write_text(HOOKS_MANIFEST.format(app=app, image=image, hook=hook))
        code, out = cli("deploy", "--report-dir", str(reports / str(i)))
        assert code == expect, out
        written.append((f"deploy {i}", out.encode()))
        if i:
            assert f"{hook}[0]" in out and "TOKEN=[MASKED]" in out, out
    for path in sorted(reports.rglob("*")):
        if path.is_file():
            written.append((str(path), path.read_bytes()))
    for name, data in written:
        at = data.find(HOOK_SECRET.encode())
        assert at < 0, f"the hook's secret in {name}: ...{data[max(0, at - 300) : at + 60]!r}"
