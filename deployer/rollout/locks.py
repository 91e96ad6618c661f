"""The deploy lock of every host: taken in a fixed order (two deploys sharing hosts cannot
deadlock), renewed while the deploy runs, released at the end, also on failure."""

from __future__ import annotations

from collections.abc import Callable

from deployer.engine import Lease, keep_renewing, lock_key
from deployer.errors import DeployerError
from deployer.result import StepStatus
from deployer.rollout.state import RunState


def lock_all(r: RunState) -> list[Lease]:
    key = lock_key(r.manifest.app, r.manifest.environment.name)
    leases: list[Lease] = []
    try:
        for host in r.order:  # fixed order: no deadlock between deploys sharing hosts
            rec = r.step(host, f"lock {key}", "lock")
            try:
                lease = r.hosts[host].acquire_lock(
                    key, r.context.holder, r.manifest.rollout.lock_ttl, r.wait_lock
                )
            except DeployerError as e:
                r.done(rec, StepStatus.FAILED, e.message)
                raise
            leases.append(lease)
            r.done(rec, detail=f"held by {lease.holder}")
            r.line(f"lock {key} taken", host)
    except DeployerError:
        unlock_all(r, leases)
        raise
    return leases


def keep_leases(r: RunState, leases: list[Lease]) -> Callable[[], None]:
    """Renew the leases while this deploy runs (big pulls, slow health, a canary can
    outlast ``lock_ttl``); returns the stop."""
    ttl = r.manifest.rollout.lock_ttl

    def renew_all() -> None:
        for i, lease in enumerate(leases):
            try:
                leases[i] = r.hosts[lease.host].renew_lock(lease, ttl)
            except DeployerError as e:
                r.line(f"could not renew the deploy lock: {e.message}", lease.host)

    return keep_renewing(renew_all, ttl)


def unlock_all(r: RunState, leases: list[Lease]) -> None:
    for lease in reversed(leases):
        try:
            r.hosts[lease.host].release_lock(lease)
        except DeployerError as e:
            r.line(f"could not release the lock (it expires by itself): {e.message}", lease.host)
    leases.clear()
