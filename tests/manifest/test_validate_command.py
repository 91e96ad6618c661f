"""`deployer validate`: exit codes, text and JSON output, -f and --env, run through main()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deployer.cli import main
from tests.manifest.helpers import CORPUS, ENVIRON


@pytest.fixture(autouse=True)
def _ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_ENVIRONMENT_NAME", raising=False)
    for k, v in ENVIRON.items():
        monkeypatch.setenv(k, v)


def test_valid_prints_one_line_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "valid" / "issue_example.yml"
    assert main(["validate", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: valid for production (2 services, 1 task)\n"


def test_default_file_is_deploy_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(CORPUS / "valid" / "minimal.yml", tmp_path / "deploy.yml")
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("deploy.yml: valid for production")


def test_missing_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert "deploy.yml:0:0: file not found" in capsys.readouterr().out


def test_problems_are_printed_with_location_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = CORPUS / "invalid" / "port_three_parts.yml"
    assert main(["validate", "-f", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f'{path}:8:9: services.web.ports[0]: "80:80:80" is not a port')
    assert lines[-1] == f"{path}: 1 problem"


def test_warnings_do_not_fail(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "valid" / "latest_tag_warns.yml"
    assert main(["validate", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "services.web.image: warning:" in out
    assert out.rstrip().endswith("2 warnings)")


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "invalid" / "depends_unknown.yml"
    assert main(["validate", "-f", str(path), "--format", "json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False
    (problem,) = data["problems"]
    assert problem == {
        "file": str(path),
        "line": 8,
        "column": 9,
        "path": "services.web.depends_on[0]",
        "message": 'unknown service "dbb"',
        "fix": "did you mean `db`?",
        "severity": "error",
    }
    path = CORPUS / "valid" / "minimal.yml"
    assert main(["validate", "-f", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is True and data["services"] == ["web"]


def test_env_option_and_every_environment_by_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = CORPUS / "valid" / "environments_many.yml"
    assert main(["validate", "-f", str(path)]) == 0
    assert "valid for production, staging" in capsys.readouterr().out
    assert main(["validate", "-f", str(path), "--env", "staging"]) == 0
    assert "valid for staging (" in capsys.readouterr().out
    assert main(["validate", "-f", str(path), "--env", "qa"]) == 2
    assert 'names the environment "qa"' in capsys.readouterr().out
    monkeypatch.setenv("CI_ENVIRONMENT_NAME", "production")
    assert main(["validate", "-f", str(path)]) == 0
    assert "valid for production (" in capsys.readouterr().out
