"""A service others wait for with ``condition: service_completed_successfully`` runs
once; a restart policy that starts it again whenever it exits is refused at its key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer.manifest import check_manifest

COMPOSE = """\
services:
  migrate:
    image: "tool:1"
{restart}
  web:
    image: "web:1"
    depends_on:
      migrate: {{condition: {condition}}}
"""


def problems(tmp_path: Path, restart: str, condition: str) -> list[str]:
    (tmp_path / "compose.yaml").write_text(
        COMPOSE.format(restart=textwrap.indent(restart, "    "), condition=condition)
    )
    (tmp_path / "deploy.yml").write_text(
        "app: demo\ncompose: [compose.yaml]\nenvironments:\n  production:\n"
        "    hosts: [ssh://deploy@host.example.com]\n"
    )
    report = check_manifest(tmp_path / "deploy.yml", "production", {})
    return [p.render() for p in report.problems]


@pytest.mark.parametrize(
    ("restart", "where"),
    [
        ("restart: always", "compose.yaml:4:14: services.migrate.restart"),
        ("restart: unless-stopped", "compose.yaml:4:14: services.migrate.restart"),
        (
            "deploy:\n  restart_policy: {condition: any}",
            "compose.yaml:5:35: services.migrate.deploy.restart_policy.condition",
        ),
    ],
)
def test_a_run_once_service_that_restarts_whenever_it_exits_is_refused(
    tmp_path: Path, restart: str, where: str
) -> None:
    (problem,) = problems(tmp_path, restart, "service_completed_successfully")
    assert problem.startswith(str(tmp_path / where)), problem
    assert "migrate runs once (web waits for it to complete successfully)" in problem
    assert "would run again and again" in problem and 'restart: "no"' in problem


@pytest.mark.parametrize(
    ("restart", "condition"),
    [
        ('restart: "no"', "service_completed_successfully"),
        ("restart: on-failure:3", "service_completed_successfully"),
        ("deploy:\n  restart_policy: {condition: on-failure}", "service_completed_successfully"),
        ("restart: always", "service_started"),  # not waited for: a long-running service
    ],
)
def test_other_restart_policies_are_accepted(tmp_path: Path, restart: str, condition: str) -> None:
    assert problems(tmp_path, restart, condition) == []
