from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deployer.context import Context, MergeRequest
from deployer.errors import InvalidInput
from deployer.plan import Action, HostPlan, Plan, Step
from deployer.report import write_reports
from deployer.report.markdown import result_markdown
from deployer.report.summary import summary_text
from deployer.result import DeployResult, Outcome, StepRecord, StepStatus

SECRET = "s3cr3t-db-password-4711"
WEB = "127.0.0.1:5000/shop/web@sha256:" + "a" * 64
WORKER = "127.0.0.1:5000/shop/worker@sha256:" + "b" * 64


def _plan() -> Plan:
    return Plan(
        app="shop",
        environment="production",
        hosts=(
            HostPlan(
                "unix:///var/run/docker.sock",
                (
                    Step("web", Action.REPLACE, ("new image digest",), "old", WEB),
                    Step("worker", Action.UNCHANGED, ("up to date",), WORKER, WORKER),
                ),
            ),
        ),
        waves=(("web", "worker"),),
        digests={"web": WEB, "worker": WORKER},
    )


def _context() -> Context:
    return Context(
        commit_sha="7b5c3cc8be40ee161ae89a06bba6229da1032a0c",
        commit_short_sha="7b5c3cc8",
        job_url="https://gitlab.example.com/shop/-/jobs/1",
        merge_request=MergeRequest(12, "Faster checkout", "walter", "https://x/12", ("a", "b")),
    )


def _result(outcome: Outcome = Outcome.DEPLOYED) -> DeployResult:
    host = "unix:///var/run/docker.sock"
    failed = outcome is Outcome.ROLLED_BACK
    return DeployResult(
        app="shop",
        environment="production",
        outcome=outcome,
        plan=_plan(),
        release="20261123T040000-7b5c3cc8",
        previous_release="20261122T100000-c380d3ac",
        digests={"web": WEB, "worker": WORKER},
        steps=[
            StepRecord(host, "pull web", "pull", "web", StepStatus.OK, 1.0, 0.8, "pulled"),
            StepRecord(host, "task migrate", "task", "web", StepStatus.OK, 2.0, 1.5, "exit 0"),
            StepRecord(
                host,
                "rollout web",
                "rollout",
                "web",
                StepStatus.FAILED if failed else StepStatus.OK,
                3.0,
                4.25,
                "health check failed" if failed else "healthy",
                # The app printed its environment: the secret must be masked everywhere.
                f"booting\nDB_PASSWORD={SECRET}\n\x1b[31mFATAL\x1b[0m bad\x00byte\n```\n"
                if failed
                else "",
            ),
            StepRecord(
                host,
                "rollout worker",
                "rollout",
                "worker",
                StepStatus.ROLLED_BACK if failed else StepStatus.OK,
                8.0,
                0.5,
            ),
        ],
        started_at=1.0,
        seconds=9.5,
        error="web did not become healthy on unix:///var/run/docker.sock" if failed else None,
        url="https://shop.example.com",
        hosts={host: str(outcome)},
    )


def _all_bytes(d: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(d.iterdir()))


def test_reports_of_a_successful_deploy(tmp_path: Path) -> None:
    paths = write_reports(_result(), tmp_path / "reports", context=_context())
    assert sorted(p.name for p in paths.values()) == [
        "deploy-junit.xml",
        "deploy-report.json",
        "deploy-summary.md",
        "deploy.env",
    ]

    data = json.loads(paths["json"].read_text())
    assert data["outcome"] == "deployed"
    assert data["release"] == "20261123T040000-7b5c3cc8"
    assert data["digests"]["web"] == WEB
    assert [s["name"] for s in data["steps"]] == [
        "pull web",
        "task migrate",
        "rollout web",
        "rollout worker",
    ]
    assert data["steps"][2]["seconds"] == 4.25
    assert data["plan"]["hosts"][0]["steps"][0]["action"] == "replace"
    assert data["plan"]["waves"] == [["web", "worker"]]
    assert data["context"]["merge_request"]["iid"] == 12
    assert data["hosts"] == {"unix:///var/run/docker.sock": "deployed"}

    env = dict(line.split("=", 1) for line in paths["dotenv"].read_text().splitlines())
    assert env["DEPLOY_URL"] == "https://shop.example.com"
    assert env["DEPLOY_RELEASE"] == "20261123T040000-7b5c3cc8"
    assert env["DEPLOY_ENVIRONMENT"] == "production"
    assert env["DEPLOY_OUTCOME"] == "deployed"
    assert env["DEPLOY_MERGE_REQUEST"] == "12"
    assert env["DEPLOY_SERVICES"] == "web,worker"

    suite = ET.parse(paths["junit"]).getroot()
    assert suite.get("tests") == "3"  # the task and two rollouts; the pull is no test case
    assert suite.get("failures") == "0"
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == ["task migrate", "rollout web", "rollout worker"]

    md = paths["markdown"].read_text()
    assert "✅ **shop** deployed to **production**" in md
    assert f"| web | `{WEB}` |" in md
    assert "[job](https://gitlab.example.com/shop/-/jobs/1)" in md


def test_reports_of_a_failed_deploy_mask_secrets(tmp_path: Path) -> None:
    paths = write_reports(
        _result(Outcome.ROLLED_BACK), tmp_path, context=_context(), secrets=[SECRET, "short"]
    )
    everything = _all_bytes(tmp_path)
    assert SECRET.encode() not in everything
    assert b"[MASKED]" in everything

    suite = ET.parse(paths["junit"]).getroot()
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    (failure,) = suite.iter("failure")
    assert failure.get("message") == "health check failed"
    assert "DB_PASSWORD=[MASKED]" in (failure.text or "")
    assert "FATAL bad" in (failure.text or "")  # ANSI codes and NUL stripped: valid XML
    (case,) = [c for c in suite.iter("testcase") if c.get("name") == "rollout worker"]
    assert case.find("skipped") is not None

    env = paths["dotenv"].read_text()
    assert "DEPLOY_OUTCOME=rolled-back\n" in env

    md = paths["markdown"].read_text()
    assert "failed and was rolled back" in md
    assert "> web did not become healthy" in md
    assert "<details><summary>rollout web on unix:///var/run/docker.sock" in md
    assert "````\nbooting" in md  # a fence longer than the ``` inside the excerpt

    data = json.loads(paths["json"].read_text())
    assert data["failed"] is True
    assert "[MASKED]" in data["steps"][2]["log_excerpt"]


def test_error_before_any_rollout_is_a_failing_case(tmp_path: Path) -> None:
    result = DeployResult(
        app="shop",
        environment="production",
        outcome=Outcome.UNREACHABLE,
        error="cannot connect to ssh://deploy@10.0.0.5",
    )
    paths = write_reports(result, tmp_path)
    suite = ET.parse(paths["junit"]).getroot()
    (case,) = suite.iter("testcase")
    assert case.get("name") == "deploy"
    assert case.find("failure") is not None
    env = paths["dotenv"].read_text()
    assert "DEPLOY_URL=\n" in env
    assert "DEPLOY_OUTCOME=unreachable\n" in env
    assert json.loads(paths["json"].read_text())["plan"] is None


def test_unwritable_directory_is_invalid_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidInput, match="cannot write the reports"):
        write_reports(_result(), blocker / "sub")


def test_summary_table_lists_steps_and_outcome() -> None:
    text = summary_text(_result(Outcome.ROLLED_BACK))
    lines = text.splitlines()
    assert lines[0].split() == ["host", "step", "status", "time", "detail"]
    assert any("rollout web" in line and "failed" in line and "4.2s" in line for line in lines)
    assert "outcome: rolled-back" in text
    assert "error: web did not become healthy" in text


def test_markdown_without_context() -> None:
    md = result_markdown(_result(Outcome.NOTHING_TO_DO))
    assert md.startswith("<!-- deployer:result shop production -->")
    assert "already up to date" in md


def test_dotenv_stays_small_with_a_large_fleet(tmp_path: Path) -> None:
    result = _result()
    result.hosts = {f"ssh://deploy@host-{i:04d}.example.com:22": "deployed" for i in range(500)}
    paths = write_reports(result, tmp_path)
    text = paths["dotenv"].read_text()
    assert len(text.encode()) < 5000
    hosts = dict(line.split("=", 1) for line in text.splitlines())["DEPLOY_HOSTS"]
    assert hosts.endswith(",... (500 in all)")
    assert hosts.startswith("ssh://deploy@host-0000.example.com:22,")
