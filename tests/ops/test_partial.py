"""A fleet with one host down, against the real engine: what only reads (status, logs,
stats, events) shows the hosts that answer and ends with exit 3 naming the other; what
changes the app (deploy, restart, down) still needs every host and changes nothing."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.errors import EXIT_OK, EXIT_UNREACHABLE
from tests.cli import cli
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

MANIFEST = """\
app: {app}
environments:
  prod:
    hosts: [{hosts}]
services:
  web:
    image: {image}
    init: true
    command: ["sh", "-c", "echo web says hello; exec sleep 86400"]
    stop_grace_period: 1s
"""


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reading_commands_show_the_hosts_that_answer(
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    for k, v in testenv.tls_environ().items():
        if k != "DOCKER_HOST":
            monkeypatch.setenv(k, v)
    live, dead = testenv.engine_host, f"tcp://127.0.0.1:{_dead_port()}"
    path = tmp_path / "deploy.yml"
    path.write_text(MANIFEST.format(app=app, hosts=f'"{live}"', image=testenv.image_base))
    f = ["-f", str(path), "--env", "prod"]
    code, out = cli("deploy", *f)
    assert code == EXIT_OK, out
    (running,) = engine.api.containers(filters={"label": f"{L.APP}={app}"})
    path.write_text(MANIFEST.format(app=app, hosts=f'"{live}", "{dead}"', image=testenv.image_base))
    capsys.readouterr()

    for argv, shown in (
        (["status"], f"{app}-prod-web-1"),
        (["status", "--format", "json"], f"{app}-prod-web-1"),
        (["logs"], "web says hello"),
        (["stats"], "web.1"),
        (["events", "--since", "1h"], f"{app}-prod-web-1"),
    ):
        code, out = cli(argv[0], *f, *argv[1:])
        err = capsys.readouterr().err
        assert code == EXIT_UNREACHABLE, (argv, out, err)
        assert shown in out, (argv, out)  # the host that answers
        assert f"warning: host {dead}" in err, (argv, err)  # said at once
        assert "did not answer" in err and dead in err, (argv, err)  # and at the end
        if "json" in argv:
            data = json.loads(out)
            assert [u.startswith(f"host {dead}") for u in data["unreachable"]] == [True]

    # what changes the app needs every host: refused before any change
    for argv in (["deploy"], ["restart", "web"], ["down"]):
        code, out = cli(argv[0], *f, *argv[1:])
        assert code == EXIT_UNREACHABLE, (argv, out)
    (still,) = engine.api.containers(filters={"label": f"{L.APP}={app}"})
    assert still["Id"] == running["Id"]
