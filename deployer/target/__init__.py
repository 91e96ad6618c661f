"""The one interface the deploy commands use, whatever the engine: ``Target``.

``open_target`` chooses the implementation once, from the manifest: the containers of
the environment's hosts (``target.containers``, driving ``engine.HostEngine`` through
the rollout) or its Swarm (``target.swarm``, driving ``swarm.engine.SwarmEngine``). The
commands `plan`, `deploy`, `rollback` and `status` hold no engine branch. The day-2
operations (logs, restart, down, ...) go through ``deployer.ops.Operations``, chosen the
same way by ``ops.open_environment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from deployer.context import Context
from deployer.engine import Release
from deployer.errors import DeployerError
from deployer.manifest.model import Manifest
from deployer.plan import Observed, Plan
from deployer.result import DeployResult

if TYPE_CHECKING:
    from deployer.report.log import JobLog


@dataclass
class Applied:
    """How applying a plan ended: the result for the reports, and the error to exit with
    (None: exit 0). The one way from a result to an exit code, on both engines."""

    result: DeployResult
    error: DeployerError | None


class Target(Protocol):
    """An environment of the app, as the deploy commands see it. ``close()`` when done."""

    @property
    def manifest(self) -> Manifest:
        """The manifest the target applies (a rollback's mounts the release's files)."""
        ...

    @property
    def reached(self) -> Sequence[str]:
        """The hosts an early stop's report names (connected ones, where the engine says)."""
        ...

    def connect(self, log: JobLog | None) -> None:
        """Connect to the environment (all its hosts, or its Swarm manager); with a job
        log, in its own section."""
        ...

    def connect_reachable(self) -> Sequence[DeployerError]:
        """Connect to the hosts that answer, for what only reads (`status`); why each
        other one did not (none answering raises)."""
        ...

    def observe(self) -> list[Observed]:
        """What runs of the app, per host (one for a Swarm)."""
        ...

    def resolve(self, only: Sequence[str] | None) -> dict[str, str]:
        """Each service's image (of ``only``; None: all) resolved to a digest."""
        ...

    def plan(self, only: Sequence[str] | None, log: JobLog | None) -> Plan:
        """Observe, resolve and plan: what a deploy would change. Nothing changes.
        ``InvalidInput`` when the app's environment is another GitLab project's
        (``deployer.ownership``)."""
        ...

    @property
    def notes(self) -> Sequence[str]:
        """What the last plan said of the GitLab project the environment belongs to."""
        ...

    def routes(self) -> list[dict[str, str]]:
        """The edge proxy's route changes per host (empty without public services)."""
        ...

    def releases(self) -> list[Release]:
        """The recorded releases, oldest first."""
        ...

    def rollback_plan(self, to: str | None, log: JobLog) -> Plan:
        """The plan back to release ``to`` (None: the previous one), said in ``log``."""
        ...

    def apply(
        self, plan: Plan, log: JobLog, *, kind: str, wait_lock: float, started: float
    ) -> Applied:
        """Apply ``plan`` under the deploy lock (``kind``: deploy or rollback): every
        change of the run is undone when it fails."""
        ...

    def status(self, fmt: str) -> str:
        """What runs where, as text or JSON (``fmt``)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Target: ...

    def __exit__(self, *exc: object) -> None: ...


def open_target(
    manifest: Manifest,
    environ: Mapping[str, str],
    context: Context | None = None,
    take_over: str = "",
) -> Target:
    """The target of the manifest's environment: its Swarm, or its hosts' containers.
    Nothing is connected yet (``connect``). ``take_over``: ``--take-over-from``, the
    GitLab project this run may take the environment from (``deployer.ownership``)."""
    if manifest.environment.engine == "swarm":
        from deployer.target.swarm import SwarmEnvironment

        return SwarmEnvironment(manifest, environ, context or Context(), take_over)
    from deployer.target.containers import ContainerEnvironment

    return ContainerEnvironment(manifest, environ, context or Context(), take_over)
