"""The deploy lock of every host: taken in a fixed order (two deploys sharing hosts cannot
deadlock), renewed while the deploy runs, released at the end, also on failure."""

from __future__ import annotations

from deployer.engine import Lease, lock_key
from deployer.errors import DeployerError
from deployer.leases import Held
from deployer.result import StepStatus
from deployer.rollout.state import RunState


def held(r: RunState) -> Held[Lease]:
    """The run's leases (none taken yet): renewed and released on the host each is from."""
    return Held(
        r.manifest.rollout.lock_ttl,
        lambda lease, ttl: r.hosts[lease.host].renew_lock(lease, ttl),
        lambda lease: r.hosts[lease.host].release_lock(lease),
        lambda lease, text: r.line(text, lease.host),
    )


def lock_all(r: RunState, leases: Held[Lease]) -> None:
    """Take the lock of every host, in sorted order, then keep them renewed; on a failure
    the locks already taken are released again."""
    key = lock_key(r.manifest.app, r.manifest.environment.name)
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
            leases.add(lease)
            r.done(rec, detail=f"held by {lease.holder}")
            r.line(f"lock {key} taken", host)
    except DeployerError:
        leases.release()
        raise
    leases.keep()
