"""The gates through the real CLI (in-process, so the GitLab API can be faked at the HTTP
layer): a freeze or a hold label stops `deployer deploy` with exit 4 before any host is
contacted; --force passes them (and then meets the unreachable host: exit 3);
`gitlab.require_api` turns an unreachable GitLab into exit 3."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import requests
import responses

from deployer.cli import main
from tests.gitlab.helpers import COMMIT_MRS, fixture

MANIFEST = """\
app: shop
environments:
  production:
    hosts: ["tcp://127.0.0.1:9"]
    allow_insecure_tcp: true
services:
  web:
    image: 127.0.0.1:5000/testapp/web:v1
{gitlab}"""


def _deploy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *extra: str,
    gitlab: str = "",
) -> tuple[int, str]:
    (tmp_path / "deploy.yml").write_text(MANIFEST.format(gitlab=gitlab))
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):  # this suite may itself run in a GitLab pipeline
        if key.startswith(("CI_", "GITLAB_", "DEPLOYER_")) or key in ("CI", "DOCKER_HOST"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = io.StringIO()
    code = main(["deploy", "--report-dir", str(tmp_path / "reports"), *extra], out)
    return code, out.getvalue() + capsys.readouterr().err


@responses.activate
def test_hold_label_blocks_the_deploy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ci_env: dict[str, str],
) -> None:
    payload = fixture("commit_merge_requests.json")
    payload[0]["labels"] = ["deploy::hold"]
    responses.get(COMMIT_MRS, json=payload)
    code, output = _deploy(tmp_path, monkeypatch, capsys, ci_env)
    assert code == 4, output
    assert "merge request !12 (Faster checkout page) has the label 'deploy::hold'" in output
    assert "127.0.0.1:9" not in output  # no host was contacted


@responses.activate
def test_custom_hold_label_from_the_manifest(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ci_env: dict[str, str],
) -> None:
    responses.get(COMMIT_MRS, json=fixture("commit_merge_requests.json"))
    code, output = _deploy(
        tmp_path, monkeypatch, capsys, ci_env, gitlab="gitlab:\n  hold_label: backend\n"
    )
    assert code == 4, output
    assert "'backend'" in output


def test_freeze_blocks_and_force_passes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ci_env: dict[str, str],
) -> None:
    env = {**ci_env, "CI_DEPLOY_FREEZE": "true", "CI_JOB_TOKEN": ""}
    code, output = _deploy(tmp_path, monkeypatch, capsys, env)
    assert code == 4, output
    assert "deploy freeze" in output
    code, output = _deploy(tmp_path, monkeypatch, capsys, env, "--force")
    assert "deploying anyway (--force)" in output
    assert code == 3, output  # past the gate: the (unreachable) host is next


@responses.activate
def test_required_api_unreachable_is_exit_3(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ci_env: dict[str, str],
) -> None:
    responses.get(COMMIT_MRS, body=requests.ConnectionError("refused"))
    code, output = _deploy(
        tmp_path, monkeypatch, capsys, ci_env, gitlab="gitlab:\n  require_api: true\n"
    )
    assert code == 3, output
    assert "cannot connect to GitLab" in output
    assert "127.0.0.1:9" not in output
