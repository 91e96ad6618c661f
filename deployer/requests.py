"""What each command is asked to do, typed: ``cli.py`` turns the command line into one of
these (frozen) requests, and nothing below it sees ``argparse``.

Values stay as the operator wrote them (durations, times, service lists): each command
reads them with its own checks, which name the flag in their errors (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every command is given: the manifest and the environment to use."""

    command: str
    file: str = "deploy.yml"
    env: str | None = None
    report_dir: str | None = None  # where deploy, rollback, restart write their reports


@dataclass(frozen=True, kw_only=True)
class ValidateRequest(Request):
    format: str = "text"


@dataclass(frozen=True, kw_only=True)
class PlanRequest(Request):
    format: str = "text"
    services: str | None = None
    detailed_exitcode: bool = False
    against: str = "hosts"
    artifact: str = "deploy-reports/deploy-report.json"
    take_over_from: str | None = None  # deployer.ownership


@dataclass(frozen=True, kw_only=True)
class DeployRequest(Request):
    services: str | None = None
    wait_lock: str | None = None
    force: bool = False
    take_over_from: str | None = None  # deployer.ownership


@dataclass(frozen=True, kw_only=True)
class RollbackRequest(Request):
    to: str | None = None
    wait_lock: str | None = None
    take_over_from: str | None = None  # deployer.ownership


@dataclass(frozen=True, kw_only=True)
class StatusRequest(Request):
    format: str = "text"


@dataclass(frozen=True, kw_only=True)
class LogsRequest(Request):
    services: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    tail: int | None = None
    follow: bool = False
    grep: str | None = None
    color: str = "auto"


@dataclass(frozen=True, kw_only=True)
class ExecRequest(Request):
    service: str
    argv: tuple[str, ...] = ()
    replica: int | None = None
    host: str | None = None
    interactive: bool = False  # -i: our standard input goes to the command
    tty: bool = False  # -t: a TTY, when attached to a terminal


@dataclass(frozen=True, kw_only=True)
class RestartRequest(Request):
    services: tuple[str, ...] = ()
    hard: bool = False
    take_over_from: str | None = None  # deployer.ownership


@dataclass(frozen=True, kw_only=True)
class RunRequest(Request):
    task: str | None = None
    service: str | None = None
    argv: tuple[str, ...] = ()
    take_over_from: str | None = None  # deployer.ownership


@dataclass(frozen=True, kw_only=True)
class StatsRequest(Request):
    watch: bool = False
    format: str = "text"


@dataclass(frozen=True, kw_only=True)
class EventsRequest(Request):
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True, kw_only=True)
class DownRequest(Request):
    volumes: bool = False
    yes: bool = False
    take_over_from: str | None = None  # deployer.ownership


@dataclass(frozen=True, kw_only=True)
class BuildRequest(Request):
    services: str | None = None
    push: bool = False


@dataclass(frozen=True, kw_only=True)
class UnlockRequest(Request):
    force: bool = False


REQUESTS: dict[str, type[Request]] = {
    "validate": ValidateRequest,
    "plan": PlanRequest,
    "deploy": DeployRequest,
    "rollback": RollbackRequest,
    "status": StatusRequest,
    "logs": LogsRequest,
    "exec": ExecRequest,
    "restart": RestartRequest,
    "run": RunRequest,
    "stats": StatsRequest,
    "events": EventsRequest,
    "down": DownRequest,
    "build": BuildRequest,
    "unlock": UnlockRequest,
}
