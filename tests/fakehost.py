"""A hand-written, recording in-memory implementation of ``deployer.engine.HostEngine``.

It keeps containers with names, running state and aliases like an engine would, so
the rollout's effects (what serves after a deploy or a rollback) can be asserted as
state, and the order of calls (``calls``) as a log. Faults are injected by digest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from deployer import labels as L
from deployer.engine import (
    KEPT_SEP,
    NEXT_MARK,
    HealthOutcome,
    HookOutcome,
    Lease,
    Release,
    TaskOutcome,
)
from deployer.errors import Blocked, DeployFailed, Unreachable
from deployer.manifest.model import Hook, Manifest, RegistryAuth, Service
from deployer.plan import Leftover, Observed, ObservedContainer

_ids = itertools.count(1)


@dataclass
class FakeContainer:
    id: str
    name: str
    service: str
    replica: int
    digest: str
    running: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class FakeHost:
    host: str
    unhealthy: set[str] = field(default_factory=set)  # digests whose containers fail health
    # digests whose containers passed the deployer's own check, Docker's first still due
    no_verdict: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)  # digests whose pull fails
    flapping: set[str] = field(default_factory=set)  # digests that fail after the switch
    task_exit: dict[str, int] = field(default_factory=dict)  # command[0] -> exit code
    down: bool = False
    fail_on: set[str] = field(default_factory=set)  # method names that raise DeployFailed
    held_by: str | None = None
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    released: list[Release] = field(default_factory=list)
    lock_log: list[str] = field(default_factory=list)
    shared_log: list[str] | None = None  # across hosts: order of lock operations

    # -- helpers for tests ---------------------------------------------------------------

    def seed(self, app: str, env: str, service: str, digest: str, replicas: int = 1) -> None:
        for r in range(1, replicas + 1):
            cid = f"c{next(_ids):04d}"
            self.containers[cid] = FakeContainer(
                cid,
                f"{app}-{env}-{service}-{r}",
                service,
                r,
                digest,
                running=True,
                labels={L.RELEASE: "r0"},
                aliases={"net": [service]},
            )

    def serving(self, service: str) -> list[tuple[str, str]]:
        """(name, digest) of running containers of the service that hold its alias."""
        return sorted(
            (c.name, c.digest)
            for c in self.containers.values()
            if c.service == service and c.running and any(service in a for a in c.aliases.values())
        )

    def _check(self, method: str) -> None:
        if self.down:
            raise Unreachable(f"{self.host}: the Docker engine did not answer")
        if method in self.fail_on:
            raise DeployFailed(f"{self.host}: {method} failed (injected)")

    def _call(self, *args: str) -> None:
        self._check(args[0])
        self.calls.append(args)

    # -- HostEngine ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.host

    def observe(self, app: str, environment: str) -> Observed:
        self._check("observe")
        return Observed(
            self.host,
            tuple(
                ObservedContainer(
                    id=c.id,
                    name=c.name,
                    service=c.service,
                    replica=c.replica,
                    running=c.running,
                    image_digest=c.digest,
                    config_hash=c.labels.get(L.CONFIG_HASH),
                    release=c.labels.get(L.RELEASE),
                )
                for c in self.containers.values()
                if KEPT_SEP not in c.name
            ),
            tuple(self.leftovers(app, environment)),
        )

    def kept(self, app: str, environment: str) -> Sequence[ObservedContainer]:
        return []

    def leftovers(self, app: str, environment: str) -> Sequence[Leftover]:
        return [
            Leftover(c.id, c.name, c.service, c.running, "replacement of an interrupted deploy")
            for c in sorted(self.containers.values(), key=lambda c: c.name)
            if NEXT_MARK in c.name
        ]

    def resolve(self, image: str, auth: RegistryAuth | None) -> str:
        return image

    def pull(self, ref: str, auth: RegistryAuth | None, progress: Callable[[str], None]) -> None:
        self._call("pull", ref)
        if ref in self.missing:
            raise DeployFailed(f"{self.host}: pull {ref} failed: manifest unknown")
        progress(f"{ref}: Status: Downloaded newer image")

    def ensure_infrastructure(self, manifest: Manifest) -> None:
        self._call("ensure_infrastructure")

    def create(
        self,
        manifest: Manifest,
        service: Service,
        digest: str,
        replica: int,
        labels: Mapping[str, str],
        name: str,
        anonymous_volumes_from: str | None = None,
        aliases: bool = True,
    ) -> str:
        self._call("create", name, digest)
        if any(c.name == name for c in self.containers.values()):
            raise DeployFailed(f"{self.host}: name {name} in use")
        cid = f"c{next(_ids):04d}"
        self.containers[cid] = FakeContainer(
            cid,
            name,
            service.name,
            replica,
            digest,
            labels=dict(labels),
            aliases={"net": [service.name] if aliases else []},
        )
        return cid

    def start(self, container_id: str) -> None:
        self._call("start", self.containers[container_id].name)
        self.containers[container_id].running = True

    def stop(self, container_id: str, timeout: float) -> None:
        self._call("stop", self.containers[container_id].name)
        self.containers[container_id].running = False

    def run_hook(self, container_id: str, hook: Hook, timeout: float) -> HookOutcome:
        self._call("hook", self.containers[container_id].name, " ".join(hook.command))
        return HookOutcome(0, "", 0.0)

    def rename(self, container_id: str, name: str) -> None:
        self._call("rename", self.containers[container_id].name, name)
        if any(c.name == name for c in self.containers.values()):
            raise DeployFailed(f"{self.host}: name {name} in use")
        self.containers[container_id].name = name

    def remove(self, container_id: str) -> None:
        self._call("remove", self.containers[container_id].name)
        del self.containers[container_id]

    def detach_aliases(self, container_id: str) -> Mapping[str, Sequence[str]]:
        c = self.containers[container_id]
        self._call("detach_aliases", c.name)
        had = c.aliases
        c.aliases = {n: [] for n in had}
        return had

    def attach_aliases(self, container_id: str, aliases: Mapping[str, Sequence[str]]) -> None:
        c = self.containers[container_id]
        self._call("attach_aliases", c.name)
        c.aliases = {n: list(a) for n, a in aliases.items()}

    def ensure_aliases(self, container_id: str, aliases: Mapping[str, Sequence[str]]) -> bool:
        c = self.containers[container_id]
        lacking = {n: a for n, a in aliases.items() if n in c.aliases}
        missing = any(not set(a) <= set(c.aliases[n]) for n, a in lacking.items())
        if missing:
            self._call("ensure_aliases", c.name)
            c.aliases.update({n: list(a) for n, a in lacking.items()})
        return missing

    def health_now(self, container_id: str) -> HealthOutcome:
        c = self.containers[container_id]
        if c.running and c.digest in self.no_verdict:
            return HealthOutcome(False, "starting")
        ok = c.running and c.digest not in self.unhealthy
        return HealthOutcome(ok, "healthy" if ok else "unhealthy")

    def wait_healthy(
        self, container_id: str, timeout: float, stable: float, start_interval: float | None = None
    ) -> HealthOutcome:
        c = self.containers[container_id]
        self._call("wait_healthy", c.name)
        if c.digest in self.unhealthy:
            return HealthOutcome(False, "unhealthy", "healthcheck exit 1: connection refused")
        return HealthOutcome(True, "healthy", "", 0.5)

    def wait_completed(self, container_id: str, timeout: float) -> HealthOutcome:
        c = self.containers[container_id]
        self._call("wait_completed", c.name)
        c.running = False
        if c.digest in self.unhealthy:
            return HealthOutcome(False, "exited (code 1)", "migration failed")
        return HealthOutcome(True, "completed (exit 0)", "", 0.5)

    def watch(
        self, container_ids: Sequence[str], seconds: float, exit_ok: bool = False
    ) -> tuple[str, HealthOutcome] | None:
        self._call("watch", *[self.containers[c].name for c in container_ids])
        for cid in container_ids:
            if self.containers[cid].digest in self.flapping:
                return cid, HealthOutcome(False, "unhealthy", "healthcheck exit 1")
        return None

    def logs(self, container_id: str, tail: int) -> str:
        return "log line"

    def run_task(
        self,
        manifest: Manifest,
        service: Service,
        digest: str,
        command: Sequence[str],
        labels: Mapping[str, str],
        timeout: float,
        progress: Callable[[str], None] | None = None,
    ) -> TaskOutcome:
        self._call("run_task", command[0], digest)
        code = self.task_exit.get(command[0], 0)
        if progress:
            progress(f"{command[0]} output")
        return TaskOutcome(code, f"{command[0]} output", 0.1)

    def acquire_lock(self, key: str, holder: str, ttl: float, wait: float = 0.0) -> Lease:
        self._check("acquire_lock")
        if self.shared_log is not None:
            self.shared_log.append(f"lock {self.host}")
        if self.held_by and self.held_by != holder:
            raise Blocked(f"{self.host}: another deploy of {key} holds the lock: {self.held_by}")
        self.held_by = holder
        self.lock_log.append("acquire")
        return Lease(self.host, key, holder, 0.0, "lease")

    def renew_lock(self, lease: Lease, ttl: float) -> Lease:
        self.lock_log.append("renew")
        return lease

    def release_lock(self, lease: Lease) -> None:
        if self.shared_log is not None:
            self.shared_log.append(f"unlock {self.host}")
        self.held_by = None
        self.lock_log.append("release")

    def releases(self, app: str, environment: str) -> Sequence[Release]:
        return sorted(self.released, key=lambda r: r.id)

    def record_release(self, release: Release) -> None:
        self._call("record_release", release.id)
        self.released.append(release)

    def prune(self, app: str, environment: str, keep: Sequence[Release]) -> list[str]:
        self._call("prune", *[r.id for r in keep])
        return []

    def close(self) -> None:
        pass
