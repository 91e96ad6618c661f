"""One SSH connection per host for a whole run: plan, and deploy (tasks, rollout, health,
lock, releases), counted in sshd's log for a key only this test uses."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from deployer.cli import main
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration


def test_plan_and_deploy_over_ssh_open_one_connection_each(
    testenv: TestEnv, app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("DOCKER_HOST", "DOCKER_CERT_PATH", "CI_ENVIRONMENT_NAME", "GITLAB_CI", "CI"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod:\n"
        f"    hosts: [\"{testenv.ssh_host}\"]\n"
        "services:\n"
        "  web:\n"
        f"    image: {testenv.image_v1}\n"
        "    deploy: {replicas: 2}\n"
        "  worker:\n"
        f"    image: {testenv.image_task}\n"
        "    command: [\"sleep\", \"3600\"]\n"
        "    init: true\n"
        "tasks:\n"
        "  hello:\n"
        "    service: worker\n"
        "    command: [\"echo\", \"hi\"]\n"
    )
    with testenv.ssh_identity(f"run-{app}") as ident:
        monkeypatch.setenv("SSH_PRIVATE_KEY", ident.private_key)
        monkeypatch.setenv("SSH_KNOWN_HOSTS", testenv.ssh_known_hosts.read_text())

        def connections(*argv: str) -> int:
            before = testenv.sshd_accepted(ident.fingerprint)
            code = main(list(argv), out=io.StringIO())
            assert code == 0, capsys.readouterr().err
            time.sleep(0.3)  # sshd writes its log line asynchronously
            return testenv.sshd_accepted(ident.fingerprint) - before

        assert connections("plan", "-f", str(path)) == 1
        report = tmp_path / "reports"
        report.mkdir()
        assert connections("deploy", "-f", str(path), "--report-dir", str(report)) == 1
