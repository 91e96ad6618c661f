"""The ``Target`` of a Swarm environment (``engine: swarm``): one manager, reached with
``SwarmTarget.connect``; a plan applied with Swarm's own rolling updates
(``deployer.swarm.apply``), every change of the run undone when one fails."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deployer.context import Context
from deployer.engine import Release
from deployer.errors import DeployerError, PlanOutdated, Unreachable
from deployer.manifest.model import Manifest
from deployer.ownership import guard, owner_of
from deployer.plan import Observed, Plan, make_plan
from deployer.releases import choose, release_digests
from deployer.result import DeployResult, Outcome
from deployer.swarm.apply import error_for
from deployer.swarm.target import SwarmTarget
from deployer.target import Applied

if TYPE_CHECKING:
    from deployer.report.log import JobLog


class SwarmEnvironment:
    """The app's services on the environment's Swarm."""

    def __init__(
        self,
        manifest: Manifest,
        environ: Mapping[str, str],
        context: Context,
        take_over: str = "",
    ) -> None:
        self._manifest = manifest
        self.environ = environ
        self.context = context
        self.take_over = take_over
        self._swarm: SwarmTarget | None = None
        self._notes: list[str] = []

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def reached(self) -> Sequence[str]:
        return [self._swarm.name] if self._swarm is not None else []

    @property
    def notes(self) -> Sequence[str]:
        return self._notes

    def _guard(self, observed: Observed, log: JobLog | None) -> None:
        """Refuse (exit 2) before anything changes when another GitLab project deployed
        the environment (``deployer.ownership``); what it says goes to ``log``."""
        m, swarm = self._manifest, self.swarm
        owner = owner_of(swarm.name, swarm.releases(), observed.containers)
        self._notes = guard(
            [owner], m.app, m.environment.name, self.context, self.take_over, m.path
        )
        if log is not None:
            for line in self._notes:
                log.line(line)

    @property
    def swarm(self) -> SwarmTarget:
        if self._swarm is None:
            raise Unreachable(f"the Swarm of {self._manifest.environment.name} is not connected")
        return self._swarm

    def __enter__(self) -> SwarmEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._swarm is not None:
            self._swarm.close()
            self._swarm = None

    def connect(self, log: JobLog | None) -> None:
        m = self._manifest
        if log is None:
            self._swarm = SwarmTarget.connect(m, self.environ, context=self.context)
            return
        with log.section("plan", f"Plan: {m.app} → {m.environment.name} (Swarm)"):
            self._swarm = SwarmTarget.connect(m, self.environ, context=self.context)

    def connect_reachable(self) -> Sequence[DeployerError]:
        self.connect(None)  # one manager: it answers, or the command fails
        return ()

    def observe(self) -> list[Observed]:
        return [self.swarm.observe()]

    def resolve(self, only: Sequence[str] | None) -> dict[str, str]:
        return self.swarm.resolve(only)

    def plan(self, only: Sequence[str] | None, log: JobLog | None) -> Plan:
        plan = self.swarm.plan(only)
        self._guard(self.swarm.observe(), log)
        return plan

    def routes(self) -> list[dict[str, str]]:
        return []  # the edge proxy is not used on Swarm

    def releases(self) -> list[Release]:
        return self.swarm.releases()

    def rollback_plan(self, to: str | None, log: JobLog) -> Plan:
        """The chosen release's digests, today's manifest."""
        swarm = self.swarm
        observed = swarm.observe()
        self._guard(observed, log)
        chosen = choose(swarm.releases(), to, swarm.name)
        digests, only = release_digests(chosen, self._manifest)
        plan = make_plan(self._manifest, [observed], digests, only)
        log.line(f"rolling back to release {chosen.id} ({chosen.commit[:8] or 'no commit'})")
        return plan

    def apply(
        self, plan: Plan, log: JobLog, *, kind: str, wait_lock: float, started: float
    ) -> Applied:
        swarm = self.swarm
        with log.section("rollout", f"Swarm rollout on {swarm.name}", collapsed=False):
            try:
                result = swarm.apply(plan, log, lock_wait=wait_lock, run_tasks=kind == "deploy")
            except PlanOutdated as e:  # waited for the lock: nothing changed, plan again
                log.line(f"stopped before any change: {e.message}")
                m = self._manifest
                outdated = DeployResult(
                    m.app, m.environment.name, Outcome.BLOCKED, plan=plan, error=e.message
                )
                outdated.started_at = started
                return Applied(outdated, e)
        result.started_at = started
        return Applied(result, error_for(result))

    def status_data(self) -> dict[str, Any]:
        swarm = self.swarm
        rows = swarm.status()
        releases = swarm.releases()
        m = self._manifest
        project = owner_of(swarm.name, releases, swarm.observe().containers).path or None
        return {
            "app": m.app,
            "environment": m.environment.name,
            "engine": "swarm",
            "hosts": [
                {
                    "host": swarm.name,
                    "latest_release": releases[-1].id if releases else None,
                    "project": project,  # the GitLab project the environment belongs to
                    "releases": [r.id for r in reversed(releases)],
                    "services": [r.as_dict() for r in rows],
                }
            ],
        }

    def status(self, fmt: str) -> str:
        """Services, digests, replicas running/desired, the update's state."""
        data = self.status_data()
        if fmt == "json":
            return json.dumps(data, indent=2, sort_keys=True) + "\n"
        from deployer.report.status import render_swarm

        return render_swarm(data)
