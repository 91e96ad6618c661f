"""What a deploy (or rollback) did, as data: the input of every report.

The rollout fills it in as it goes; reports (job log summary, JSON, dotenv, JUnit,
MR note) only read it. Secret values never enter it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from deployer.plan import Plan


class Outcome(enum.StrEnum):
    DEPLOYED = "deployed"
    NOTHING_TO_DO = "nothing-to-do"
    ROLLED_BACK = "rolled-back"  # failed; every change was undone (exit 1)
    ROLLBACK_FAILED = "rollback-failed"  # failed; undoing failed too (exit 5)
    BLOCKED = "blocked"  # lock, freeze or hold label (exit 4)
    INVALID = "invalid"  # exit 2
    UNREACHABLE = "unreachable"  # exit 3


class StepStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    SKIPPED = "skipped"


@dataclass
class StepRecord:
    """One thing the rollout did on one host: pull, task, a service's rollout, prune."""

    host: str
    name: str  # "pull web", "task migrate", "rollout web", "prune"
    kind: str  # "pull", "task", "rollout", "rollback", "prune", "lock"
    service: str | None = None
    status: StepStatus = StepStatus.OK
    started_at: float = 0.0
    seconds: float = 0.0
    detail: str = ""  # one line for people
    log_excerpt: str = ""  # failed container's last log lines / health log / task output


@dataclass
class DeployResult:
    app: str
    environment: str
    outcome: Outcome
    plan: Plan | None = None
    release: str | None = None
    previous_release: str | None = None
    digests: dict[str, str] = field(default_factory=dict)  # service -> repo@sha256:...
    steps: list[StepRecord] = field(default_factory=list)
    started_at: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    url: str | None = None
    hosts: dict[str, str] = field(default_factory=dict)  # host -> its own outcome

    @property
    def failed(self) -> bool:
        return self.outcome in (Outcome.ROLLED_BACK, Outcome.ROLLBACK_FAILED)
