"""``network_mode`` / ``pid`` / ``ipc: service:NAME`` in a rollout: the dependents of a
service this run replaces live in its old container's namespaces, so a rollback does not
start their old containers on their own; once NAME's old container runs again, they are
restarted into it, their ``pre_stop`` / ``post_start`` hooks run as for any restart."""

from __future__ import annotations

from functools import partial

from deployer.manifest.model import Service
from deployer.plan import Action, ObservedContainer
from deployer.rollout import hooks
from deployer.rollout.state import RunState, grace_of


def follows_replaced(r: RunState, host: str, svc: Service) -> bool:
    """``svc`` shares the network (PID, IPC namespace) of a service this run replaces (or
    creates: its container was gone) on ``host``: its old containers lived in the old
    container's namespace, and come back with it on a rollback (``stopping``), not on
    their own (that container is still stopped then)."""
    names = svc.joins
    if not names:
        return False
    hp = next(h for h in r.plan.hosts if h.host == host)
    renewed = (Action.REPLACE, Action.CREATE)
    return any(s.service in names and s.action in renewed for s in hp.steps)


def stopping(r: RunState, host: str, svc: Service, old: ObservedContainer) -> None:
    """Before the old container of a service others share a namespace of stops: on a
    rollback, once it runs again (its restart is journalled after this, so undone before),
    their old containers restart to join its new namespace."""
    sharing = [s for s in r.manifest.services if svc.name in s.joins]
    if not sharing:
        return
    names = ", ".join(s.name for s in sharing)
    r.do(host, f"rejoin {names} to {old.name}", partial(_rejoin, r, host, sharing))


def _rejoin(r: RunState, host: str, sharing: list[Service]) -> None:
    """Restart the old containers of ``sharing`` that ran before the run, as ``docker
    compose restart`` does: ``pre_stop`` in one still running (in the old namespace), then
    the stop, the start and ``post_start``."""
    engine = r.hosts[host]
    for svc in sharing:
        for c in r.observed[host].of_service(svc.name):
            if not c.running:  # before the run
                continue
            # a container in a PID namespace whose first process ended was killed with it
            if svc.pre_stop and not engine.health_now(c.id).status.startswith("exited"):
                hooks.pre_stop(r, host, svc, c.id, c.name, grace_of(svc))
            engine.stop(c.id, grace_of(svc))
            hooks.start_again(r, host, svc, c.id, c.name)
