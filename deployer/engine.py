"""The interface the rollout drives: one Docker host, whatever the transport.

Pure declarations (no docker import), so the rollout can be tested against any
implementation of it; the real one is ``deployer.docker.host.DockerHost``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deployer.manifest.model import Hook, Manifest, RegistryAuth, Service
from deployer.naming import (
    KEPT_SEP,
    NEXT_MARK,
    canonical_name,
    default_network,
    kept_name,
    lock_key,
    network_name,
    next_name,
    service_networks,
    volume_name,
)
from deployer.plan import Leftover, Observed, ObservedContainer

# The names of what the deployer creates live in ``deployer.naming``; the rollout and the
# adapters import them from here too.
__all__ = [
    "KEPT_SEP",
    "NEXT_MARK",
    "HealthOutcome",
    "HookOutcome",
    "HostEngine",
    "Lease",
    "Release",
    "TaskOutcome",
    "canonical_name",
    "default_network",
    "keep_renewing",
    "kept_name",
    "lock_key",
    "network_name",
    "next_name",
    "service_networks",
    "volume_name",
]


@dataclass(frozen=True)
class HealthOutcome:
    healthy: bool
    status: str  # "healthy", "unhealthy", "exited (code 1)", "restarting", "timeout"
    detail: str = ""  # health log or last log lines, secrets never included
    seconds: float = 0.0


COMPLETED = "completed (exit 0)"  # the status of a run that ended as it should


def exited(code: object) -> str:
    """The status of a container that exited with ``code``."""
    return f"exited (code {code})"


@dataclass(frozen=True)
class TaskOutcome:
    exit_code: int
    output: str
    seconds: float


@dataclass(frozen=True)
class HookOutcome:
    """A lifecycle hook's run: ``exit_code`` None when it still ran at its time limit."""

    exit_code: int | None
    output: str  # its last output
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class Lease:
    """A held deploy lock on one host."""

    host: str
    key: str  # "<app>/<environment>"
    holder: str
    expires_at: float
    token: str  # identifies our lease (the lock container's id)


def keep_renewing(renew: Callable[[], None], ttl: float) -> Callable[[], None]:
    """Call ``renew`` every third of ``ttl`` in a background thread until the returned
    stop is called, so a deploy longer than its lock's ttl never loses the lock.

    The interval is kept between 1 s and 10 min whatever ``ttl`` is (a huge ttl would
    overflow the wait; a tiny one would renew in a busy loop), and an error of one
    renewal does not end the thread: the next one tries again."""
    stop = threading.Event()
    interval = 600.0 if math.isnan(ttl) else min(max(ttl / 3, 1.0), 600.0)

    def loop() -> None:
        while not stop.wait(interval):
            try:
                renew()
            except Exception:  # noqa: BLE001 - the renewal reports its own trouble
                continue

    keeper = threading.Thread(target=loop, name="lock-renewal", daemon=True)
    keeper.start()

    def done() -> None:
        stop.set()
        keeper.join(timeout=60)

    return done


@dataclass(frozen=True)
class Release:
    """A deploy that succeeded: what ran, from which commit, by whom."""

    id: str
    app: str
    environment: str
    digests: Mapping[str, str]  # service -> repo@sha256:...
    config_hashes: Mapping[str, str] = field(default_factory=dict)
    replicas: Mapping[str, int] = field(default_factory=dict)
    commit: str = ""
    pipeline_url: str = ""
    job_url: str = ""
    merge_request: str = ""  # "!12 Title" when known
    user: str = ""
    created_at: float = 0.0
    # service -> the files it mounted (FileMount.record(): digests, never content)
    files: Mapping[str, Sequence[Mapping[str, object]]] = field(default_factory=dict)
    # The GitLab project the app and environment belong to (``deployer.ownership``): path
    # and id (the id survives a rename or transfer). Empty in records of older deployers.
    project: str = ""
    project_id: str = ""


class HostEngine(Protocol):
    """One Docker host. Every call has a deadline; errors are ``DeployerError``s."""

    @property
    def name(self) -> str:
        """The host as shown to people: its URL without credentials."""
        ...

    def observe(self, app: str, environment: str) -> Observed: ...

    def kept(self, app: str, environment: str) -> Sequence[ObservedContainer]: ...

    def leftovers(self, app: str, environment: str) -> Sequence[Leftover]:
        """Containers of the app no release accounts for (deployer/docker/observe.py)."""
        ...

    def resolve(self, image: str, auth: RegistryAuth | None) -> str: ...

    def pull(
        self, ref: str, auth: RegistryAuth | None, progress: Callable[[str], None]
    ) -> None: ...

    def ensure_infrastructure(self, manifest: Manifest) -> None:
        """Create the app's networks and named volumes when missing."""
        ...

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
        """Create (not start). ``aliases`` False: on its networks without the service
        aliases (start-first gives them once the container is healthy)."""
        ...

    def start(self, container_id: str) -> None: ...

    def stop(self, container_id: str, timeout: float) -> None: ...

    def run_hook(self, container_id: str, hook: Hook, timeout: float) -> HookOutcome:
        """Run a ``post_start`` or ``pre_stop`` hook in the container (an exec), up to
        ``timeout`` seconds."""
        ...

    def rename(self, container_id: str, name: str) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def detach_aliases(self, container_id: str) -> Mapping[str, Sequence[str]]:
        """Take the container out of its networks' aliases (drain before stop).

        Returns the aliases it had per network, for ``attach_aliases`` on rollback.
        """
        ...

    def attach_aliases(self, container_id: str, aliases: Mapping[str, Sequence[str]]) -> None:
        """Give the container back the aliases ``detach_aliases`` took away."""
        ...

    def ensure_aliases(self, container_id: str, aliases: Mapping[str, Sequence[str]]) -> bool:
        """Give the container the aliases it lacks (left out by an interrupted drain);
        True when it lacked some. A container that has them is not touched."""
        ...

    def health_now(self, container_id: str) -> HealthOutcome:
        """One look: running, not restarting, and healthy when it has a healthcheck."""
        ...

    def wait_healthy(
        self, container_id: str, timeout: float, stable: float, start_interval: float | None = None
    ) -> HealthOutcome:
        """Until healthy (or ``stable`` seconds running without a healthcheck), failed, or
        ``timeout``; while it starts, its healthcheck is also run every ``start_interval``."""
        ...

    def wait_completed(self, container_id: str, timeout: float) -> HealthOutcome:
        """A container that runs once: until it exits (0: completed) or ``timeout``."""
        ...

    def watch(
        self, container_ids: Sequence[str], seconds: float, exit_ok: bool = False
    ) -> tuple[str, HealthOutcome] | None:
        """Watch switched containers for ``seconds``: the first that exits, restarts or
        turns unhealthy (with its outcome), or None when every one held. With ``exit_ok``,
        one that exited 0 is done, not failed."""
        ...

    def logs(self, container_id: str, tail: int) -> str: ...

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
        """Run a one-off container to its end (killed at ``timeout``), output line by line."""
        ...

    def acquire_lock(self, key: str, holder: str, ttl: float, wait: float = 0.0) -> Lease:
        """Take the lease or raise ``Blocked`` naming its holder (after ``wait`` seconds)."""
        ...

    def renew_lock(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease to ``ttl`` seconds from now; ``Blocked`` when it was lost."""
        ...

    def release_lock(self, lease: Lease) -> None: ...

    def releases(self, app: str, environment: str) -> Sequence[Release]: ...

    def record_release(self, release: Release) -> None: ...

    def prune(self, app: str, environment: str, keep: Sequence[Release]) -> list[str]: ...

    def close(self) -> None: ...
