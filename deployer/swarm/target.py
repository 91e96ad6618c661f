"""A Swarm environment (``engine: swarm``): observe, resolve, apply a plan, status.

The environment's first host (or ``DOCKER_HOST``) is a Swarm manager. Each service of the
manifest becomes the Swarm service ``<app>_<service>``, its image pinned to the digest
resolved for this deploy, updated with Swarm's own rolling update (``update_config``
from the manifest, ``failure_action: rollback``). The deployer then waits, with a
deadline, until Swarm reports the update ``completed``; ``rollback_completed``,
``rollback_paused`` and ``paused`` are failures. When one service fails, every service
this run already changed is put back to its previous spec (created ones are removed),
so the app never ends split between releases.

``tasks:`` run as Swarm jobs (mode ``replicated-job``, one completion) on the app's
network, their output copied to the job log. A Swarm config object named
``<app>_<environment>_deploy-lock`` is the deploy lock: creating it is atomic across
the swarm. CI secrets are passed as environment variables, as in container mode;
Swarm secrets are not used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Self

from deployer.context import Context
from deployer.docker import registry
from deployer.engine import Release
from deployer.errors import DeployerError, Unreachable
from deployer.manifest.model import Manifest, Service, Task
from deployer.plan import Observed, Plan, make_plan
from deployer.report.log import Log
from deployer.result import DeployResult, StepRecord
from deployer.swarm import apply as A
from deployer.swarm import lock, records
from deployer.swarm import observe as obs
from deployer.swarm import spec as S
from deployer.swarm.api import SwarmApi
from deployer.swarm.apply import raise_for_outcome
from deployer.swarm.converge import Verdict, wait_converged
from deployer.swarm.engine import DockerSwarmEngine
from deployer.swarm.lock import LOCK_EXPIRES, LOCK_HOLDER, SwarmLease
from deployer.swarm.owners import check_lan_networks, check_volume_owners, check_volume_policy
from deployer.swarm.support import check_support

__all__ = [
    "LOCK_EXPIRES",
    "LOCK_HOLDER",
    "SwarmLease",
    "SwarmTarget",
    "Verdict",
    "raise_for_outcome",
]


class SwarmTarget:
    """One Swarm (through one manager) for one app and environment. It holds ``swarm``,
    the app's raw calls (``swarm.api.SwarmApi``), and hands them to the lock
    (``swarm.lock``), convergence (``swarm.converge``), release records
    (``swarm.records``) and applying a plan (``swarm.apply``)."""

    def __init__(self, swarm: SwarmApi) -> None:
        self.swarm = swarm
        self.planned_from: Observed | None = None  # what the last plan() was made from

    @property
    def name(self) -> str:
        """The manager, as shown to people."""
        return self.swarm.name

    @property
    def manifest(self) -> Manifest:
        return self.swarm.manifest

    @property
    def environ(self) -> Mapping[str, str]:
        return self.swarm.environ

    def close(self) -> None:
        self.swarm.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection ---------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        manifest: Manifest,
        environ: Mapping[str, str] | None = None,
        *,
        context: Context | None = None,
    ) -> SwarmTarget:
        """Connect to the environment's Swarm manager: the first of its hosts (else
        DOCKER_HOST) that answers and is a manager; the others are fallbacks."""
        from deployer.docker import connect as C

        environ = os.environ if environ is None else environ
        problems: list[DeployerError] = []
        for url in C.host_urls(manifest.environment.hosts, environ):
            try:
                conn = C.connect(
                    url, environ, allow_insecure_tcp=manifest.environment.allow_insecure_tcp
                )
            except Unreachable as e:
                problems.append(e)
                continue
            target = cls(
                SwarmApi(
                    manifest,
                    DockerSwarmEngine(conn.client.api),
                    conn.name,
                    context=context,
                    environ=environ,
                    on_close=conn.close,
                )
            )
            try:
                target.swarm.check_manager()
            except DeployerError as e:
                target.close()
                problems.append(e)
                continue
            except BaseException:
                target.close()
                raise
            return target
        if len(problems) == 1:
            raise problems[0]
        first = problems[0]
        also = "\n".join(f"  also: {p.message}" for p in problems[1:])
        raise type(first)(f"{first.message}\n{also}", hint=first.hint) from first

    # -- reading ------------------------------------------------------------------------

    def observe(self) -> Observed:
        services = self.swarm.app_services()
        tasks = self.swarm.tasks_of([s["ID"] for s in services])
        m = self.manifest
        return obs.observed(self.name, m.app, m.environment.name, services, tasks)

    def status(self) -> list[obs.ServiceStatus]:
        services = self.swarm.app_services()
        return obs.status_rows(
            self.manifest.app, services, self.swarm.tasks_of([s["ID"] for s in services])
        )

    def render_status(self) -> str:
        m = self.manifest
        return obs.render_status(self.name, m.app, m.environment.name, self.status())

    # -- digests ------------------------------------------------------------------------

    def resolve_image(self, service: Service) -> str:
        """The image of ``service`` as ``repo@sha256:...`` (never a tag: Swarm must not
        resolve tags itself, FACTS 14); its local ID for ``pull_policy: never``."""
        if "@sha256:" in service.image:
            return S.pinned(service.image)
        auth = None if service.pull_policy == "never" else self.swarm.auth_for(service.image)
        return registry.resolve(
            self.swarm.api, self.name, service.image, auth, pull_policy=service.pull_policy
        )

    def resolve(self, only: Sequence[str] | None = None) -> dict[str, str]:
        return {
            s.name: self.resolve_image(s)
            for s in self.manifest.services
            if only is None or s.name in only
        }

    def plan(self, only: Sequence[str] | None = None) -> Plan:
        for service in self.manifest.services:
            S.check_supported(self.manifest, service)  # refuse before anything changes
        check_volume_owners(self.swarm)  # another stack's data
        check_volume_policy(self.swarm)  # a volume binding /etc, as it is on the manager
        check_lan_networks(self.swarm)  # an external macvlan network: the host's LAN
        check_support(self.swarm)  # an external network, a driver (plugin) it lacks
        self.planned_from = self.observe()
        return make_plan(self.manifest, [self.planned_from], self.resolve(only), only)

    # -- the lock -----------------------------------------------------------------------

    def lock_name(self) -> str:
        return lock.lock_name(self.swarm)

    def acquire_lock(self, holder: str, ttl: float, wait: float = 0.0) -> SwarmLease:
        return lock.acquire_lock(self.swarm, holder, ttl, wait)

    def renew_lock(self, lease: SwarmLease, ttl: float) -> SwarmLease:
        return lock.renew_lock(self.swarm, lease, ttl)

    def release_lock(self, lease: SwarmLease) -> None:
        lock.release_lock(self.swarm, lease)

    # -- releases -----------------------------------------------------------------------

    def release_labels(self, release: str) -> dict[str, str]:
        return records.release_labels(self.swarm, release)

    def record_release(self, result: DeployResult) -> None:
        records.record_release(self.swarm, result)

    def releases(self) -> list[Release]:
        """The recorded releases of the app and environment, oldest first."""
        return records.releases(self.swarm)

    # -- applying -----------------------------------------------------------------------

    def wait_converged(
        self, service_id: str, *, rolling: bool, since: str | None, deadline: float
    ) -> Verdict:
        return wait_converged(
            self.swarm, service_id, rolling=rolling, since=since, deadline=deadline
        )

    def run_task(self, task: Task, digest: str, log: Log, extra: Mapping[str, str]) -> StepRecord:
        return A.run_task(self.swarm, task, digest, log, extra)

    def apply(
        self,
        plan: Plan,
        log: Log,
        *,
        lock_wait: float = 0.0,
        release: str | None = None,
        run_tasks: bool = True,
        record: bool = True,
    ) -> DeployResult:
        """Apply ``plan`` (made by ``self.plan()``), locked; see ``swarm.apply.apply``.
        ``PlanOutdated`` when the run waited for the lock and the services are no longer
        those the plan was made from (nothing changed; plan again)."""
        return A.apply(
            self.swarm,
            plan,
            log,
            lock_wait=lock_wait,
            release=release,
            run_tasks=run_tasks,
            record=record,
            after_lock=(
                partial(A.check_current, self.swarm, self.planned_from, self.observe)
                if lock_wait > 0 and self.planned_from is not None
                else None
            ),
        )
