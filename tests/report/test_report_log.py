from __future__ import annotations

import io

import pytest

from deployer.report.log import JobLog, format_table, in_gitlab_ci, section_name


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_has_elapsed_time() -> None:
    out = io.StringIO()
    clock = Clock()
    log = JobLog(out, gitlab=False, clock=clock)
    clock.now += 2.5
    log.line("pulled web")
    clock.now += 70
    log.line("rolled out web")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[  2.5s] pulled web"
    assert lines[1] == "[1m12s] rolled out web"


def test_gitlab_section_markers() -> None:
    out = io.StringIO()
    log = JobLog(out, gitlab=True, clock=Clock(), wall=lambda: 1700000000.7)
    with log.section("Rollout web", "Rolling out web"):
        log.line("ok")
    text = out.getvalue()
    assert text.startswith(
        "\x1b[0Ksection_start:1700000000:rollout_web[collapsed=true]\r\x1b[0KRolling out web\n"
    )
    assert text.endswith("\x1b[0Ksection_end:1700000000:rollout_web\r\x1b[0K\n")
    assert "ok\n" in text


def test_gitlab_section_expanded_and_closed_on_error() -> None:
    out = io.StringIO()
    log = JobLog(out, gitlab=True, clock=Clock(), wall=lambda: 5.0)
    with pytest.raises(RuntimeError), log.section("connect", "Connecting", collapsed=False):
        raise RuntimeError("boom")
    text = out.getvalue()
    assert "section_start:5:connect\r" in text
    assert "section_end:5:connect\r" in text


def test_plain_sections_have_no_escape_codes() -> None:
    out = io.StringIO()
    log = JobLog(out, gitlab=False, clock=Clock())
    with log.section("pull", "Pulling images"):
        log.line("web")
    text = out.getvalue()
    assert "\x1b" not in text
    assert text.splitlines() == ["== Pulling images", "[  0.0s]   web"]


def test_detects_gitlab_ci() -> None:
    assert in_gitlab_ci({"GITLAB_CI": "true"})
    assert in_gitlab_ci({"CI": "true"})
    assert not in_gitlab_ci({})
    assert not in_gitlab_ci({"GITLAB_CI": "false", "CI": ""})


def test_section_name_is_sanitised() -> None:
    assert section_name("Rollout web@host-1:2376") == "rollout_web_host-1_2376"


def test_table_aligns_columns() -> None:
    text = format_table(
        [["web", "deployed", 1.5], ["worker", None, 12]], ["service", "status", "s"]
    )
    assert text.splitlines() == [
        "service  status    s",
        "-------  --------  ---",
        "web      deployed  1.5",
        "worker             12",
    ]


def test_secrets_are_masked_in_lines_text_and_headers() -> None:
    out = io.StringIO()
    log = JobLog(out, gitlab=True, clock=Clock(), secrets=["hunter2-secret", "abc"])
    with log.section("x", "header hunter2-secret"):
        log.line("last log lines:\n| PASSWORD=hunter2-secret\n| abc stays (too short)")
        log.text("table hunter2-secret")
    text = out.getvalue()
    assert "hunter2-secret" not in text
    assert text.count("[MASKED]") == 3
    assert "abc stays" in text
