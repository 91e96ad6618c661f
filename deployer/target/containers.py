"""The ``Target`` of a container environment: every host of the environment, each a
``DockerHost`` (``engine.HostEngine``), deployed by the rollout (``deployer.rollout``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from deployer.context import Context
from deployer.docker.host import DockerHost
from deployer.engine import Release
from deployer.errors import DeployerError, Unreachable
from deployer.manifest.model import Manifest
from deployer.ownership import Owner, guard, owner_of
from deployer.plan import Observed, Plan, make_plan
from deployer.releases import choose, release_digests
from deployer.target import Applied
from deployer.targets import (
    close_all,
    connect_hosts,
    connect_reachable,
    each,
    observe_all,
    prepare,
    resolve_digests,
)

if TYPE_CHECKING:
    from deployer.report.log import JobLog


class ContainerEnvironment:
    """The containers of the app on every host of the environment."""

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
        self.hosts: list[DockerHost] = []
        self._observed: dict[str, Observed] = {}
        self._unreachable: Sequence[DeployerError] = ()
        self._notes: list[str] = []

    @classmethod
    def of(
        cls,
        manifest: Manifest,
        environ: Mapping[str, str],
        context: Context,
        hosts: Iterable[DockerHost],
        observed: Mapping[str, Observed],
    ) -> ContainerEnvironment:
        """Hosts already connected and observed (a restart's plan was made on them)."""
        target = cls(manifest, environ, context)
        target.hosts = list(hosts)
        target._observed = dict(observed)
        return target

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def reached(self) -> Sequence[str]:
        return ()  # an early stop's report names no host (as it always has)

    @property
    def notes(self) -> Sequence[str]:
        return self._notes

    def owners(self, observed: Iterable[Observed]) -> list[Owner]:
        """The GitLab project each host records for the app's environment."""
        m = self._manifest
        by_host = {o.host: o.containers for o in observed}
        return each(
            lambda h: owner_of(
                h.name, h.releases(m.app, m.environment.name), by_host.get(h.name, ())
            ),
            self.hosts,
        )

    def _guard(self, observed: Iterable[Observed], log: JobLog | None) -> None:
        """Refuse (exit 2) before anything changes when another GitLab project deployed
        the environment (``deployer.ownership``); what it says goes to ``log``."""
        m = self._manifest
        self._notes = guard(
            self.owners(observed), m.app, m.environment.name, self.context, self.take_over, m.path
        )
        if log is not None:
            for line in self._notes:
                log.line(line)

    def __enter__(self) -> ContainerEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close_all(self.hosts)
        self.hosts = []

    def connect(self, log: JobLog | None) -> None:
        env = self._manifest.environment.name
        if log is None:
            self.hosts = connect_hosts(self._manifest, self.environ)
            return
        with log.section("connect", f"Connecting to {env}'s host(s)"):
            self.hosts = connect_hosts(self._manifest, self.environ)
            for h in self.hosts:
                log.line(f"{h.name}: connected")

    def connect_reachable(self) -> Sequence[DeployerError]:
        self.hosts, self._unreachable = connect_reachable(self._manifest, self.environ)
        return self._unreachable

    def _first(self) -> DockerHost:
        if not self.hosts:
            raise Unreachable(f"environment {self._manifest.environment.name} has no hosts")
        return min(self.hosts, key=lambda h: h.name)

    def observe(self) -> list[Observed]:
        observed = observe_all(self._manifest, self.hosts)
        self._observed = {o.host: o for o in observed}
        return observed

    def resolve(self, only: Sequence[str] | None) -> dict[str, str]:
        return resolve_digests(self._manifest, self.hosts[0], self.environ, only)

    def plan(self, only: Sequence[str] | None, log: JobLog | None) -> Plan:
        m = self._manifest
        if log is None:
            prepared = prepare(m, self.environ, only, connected=self.hosts)
            self._guard(prepared.observed, None)
        else:
            with log.section("plan", f"Plan: {m.app} → {m.environment.name}"):
                prepared = prepare(m, self.environ, only, connected=self.hosts)
                self._guard(prepared.observed, log)
        self._observed = prepared.observed_by_name
        return prepared.plan

    def routes(self) -> list[dict[str, str]]:
        from deployer.proxy.status import route_changes

        out: list[dict[str, str]] = []
        for h in self.hosts:
            out.extend(route_changes(self._manifest, h.client, h.name))
        return out

    def releases(self) -> list[Release]:
        m = self._manifest
        return list(self._first().releases(m.app, m.environment.name))

    def rollback_plan(self, to: str | None, log: JobLog) -> Plan:
        from deployer.releases import with_release_files

        first = self._first()
        self._guard(self.observe(), log)
        releases = self.releases()
        unrecorded = None if to else _unrecorded(releases, self._observed.values())
        if unrecorded is not None:
            target = releases[-1]
            log.line(
                f"{unrecorded} runs a release that was never recorded (a deploy interrupted "
                f"after its switch): going back to the last release recorded, {target.id}"
            )
        else:
            target = choose(releases, to, first.name)
        digests, only = release_digests(target, self._manifest)
        self._manifest = m = with_release_files(self._manifest, target)
        plan = make_plan(m, self.observe(), digests, only)
        log.line(
            f"rolling back {m.app}/{m.environment.name} to release {target.id}"
            + (f" (commit {target.commit[:12]})" if target.commit else "")
        )
        return plan

    def apply(
        self, plan: Plan, log: JobLog, *, kind: str, wait_lock: float, started: float
    ) -> Applied:
        from deployer.docker.registry import auth_lookup
        from deployer.ops.containers import ContainerOperations
        from deployer.ops.stale import break_stale_lock
        from deployer.rollout import Rollout
        from deployer.signals import cancel_on_sigterm

        m = self._manifest
        # A lock left by a job that ended (runner lost, kill -9) need not block us.
        break_stale_lock(
            ContainerOperations(m, self.hosts, self.environ),
            self.environ,
            self.context.holder,
            log.line,
        )
        rollout = Rollout(
            m,
            plan,
            {h.name: h for h in self.hosts},
            self._observed,
            self.context,
            log,
            wait_lock=wait_lock,
            kind=kind,
            auth_for=auth_lookup(m, self.environ),
            observe=lambda: observe_all(m, self.hosts),
        )
        with cancel_on_sigterm(rollout.cancelled, log):
            result = rollout.run()
        return Applied(result, rollout.error)

    def status(self, fmt: str) -> str:
        from deployer.docker.status import collect
        from deployer.report.status import render_containers

        data = collect(self._manifest, self.hosts)
        if fmt == "json":
            if self._unreachable:  # the hosts that did not answer, and why
                data["unreachable"] = [e.message for e in self._unreachable]
            return json.dumps(data, indent=2, sort_keys=True) + "\n"
        return render_containers(data)


def _unrecorded(releases: Sequence[Release], observed: Iterable[Observed]) -> str | None:
    """A running container made by a deploy after the last release recorded (release ids
    sort by time): that deploy was interrupted after its switch, and what runs is not
    the last release. Its name, else None. Rolling back then means back to the last
    release (what ran before), not to the one before it."""
    if not releases:
        return None
    last = releases[-1].id
    for o in observed:
        for c in o.containers:
            if c.running and c.release and c.release > last:
                return c.name
    return None
