"""Removing an environment's network from a host, whatever else the engine has on it.

The engine refuses to remove a network while it counts an endpoint on it ("has active
endpoints"). After the environment's containers are gone, what can still be there:

- the edge proxy, which joins the network of each app it routes to (also one whose
  manifest names no proxy any more: its services were public once): taken off;
- an endpoint whose container no longer exists (an engine that stopped uncleanly):
  force-disconnected by its name, as ``docker network disconnect -f`` does;
- a container that is not the app's (an operator's debug container, another app that
  joined the network): left alone, and the network with it;
- nothing at all: engine 20.10 can keep a wrong count of a network's endpoints (seen
  after many containers were created and removed on it at once); only a restart of the
  engine sets it right (it recounts at start).

The last two are reported as a ``KeptNetwork`` naming the network and the commands to
run, after a bounded wait (a few seconds), never a long silent one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.errors import LeftBehind

SETTLE = 3.0  # seconds a refusal with nothing on the network is tried again


@dataclass(frozen=True)
class KeptNetwork:
    """A network the engine kept: why, and what the operator can run on the host."""

    host: str
    network: str
    reason: str
    commands: tuple[str, ...]
    users: tuple[str, ...] = ()  # the containers on it that are not the app's

    def render(self) -> str:
        return f"{self.host}: network {self.network}: {self.reason}"


def refused_in_use(e: docker.errors.APIError) -> bool:
    """The engine refused to remove a network (or volume) because something is on it:
    409, 403 "has active endpoints", or a Swarm manager's "is in use by task"."""
    why = str(e.explanation or "")
    return e.status_code == 409 or (
        e.status_code in (400, 403) and ("active endpoints" in why or "in use by task" in why)
    )


def remove_network(
    api: Any,
    host: str,
    net: Mapping[str, Any],
    ours: Callable[[Mapping[str, str]], bool],
    say: Callable[[str], None],
    settle: float = SETTLE,
    leaving: Callable[[Mapping[str, str]], bool] = lambda _: False,
) -> bool | KeptNetwork:
    """Remove ``net`` (as ``api.networks()`` lists it) from ``host``. True when removed,
    False when gone already, a ``KeptNetwork`` when the engine keeps it. ``ours(labels)``
    tells the environment's containers (taken off the network like the edge proxy);
    ``leaving(labels)`` those that leave by themselves (the tasks of removed Swarm
    services, as they stop): waited for, up to ``settle``."""
    net_id, name = str(net["Id"]), str(net.get("Name") or net["Id"])
    give_up = time.monotonic() + settle
    while True:
        try:
            api.remove_network(net_id)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as e:
            if not refused_in_use(e):
                raise
        try:
            attached = api.inspect_network(net_id).get("Containers") or {}
        except docker.errors.NotFound:
            return False
        foreign, took_off = [], False
        for key, ep in attached.items():
            what = _take_off(api, net_id, key, ep, ours, leaving)
            if what is None:
                foreign.append(str(ep.get("Name") or key))
            elif what:
                took_off = True
                say(f"{host}: {what} left network {name}")
        if foreign:  # not ours to disconnect, and it will not go by itself: no wait
            return KeptNetwork(
                host,
                name,
                f"still used by {', '.join(sorted(foreign))}, which "
                f"{'is' if len(foreign) == 1 else 'are'} not the app's: left alone",
                (
                    *(f"docker network disconnect {name} {c}" for c in sorted(foreign)),
                    f"docker network rm {name}",
                ),
                tuple(sorted(foreign)),
            )
        now = time.monotonic()
        # Past the wait, once nothing more could be taken off (bounded all the same).
        if now > give_up and (not took_off or now > give_up + settle):
            return _kept(host, name, attached)
        if not took_off:
            time.sleep(0.2)


def _kept(host: str, name: str, attached: Mapping[str, Any]) -> KeptNetwork:
    """The engine still refuses after every endpoint that could go was taken off."""
    names = sorted(
        str(ep.get("Name") or k) for k, ep in attached.items() if not k.startswith("lb-")
    )
    if names:  # it would not let them go (or they did not leave in time)
        return KeptNetwork(
            host,
            name,
            f"the engine keeps {', '.join(names)} on it",
            (
                *(f"docker network disconnect -f {name} {n}" for n in names),
                f"docker network rm {name}",
            ),
        )
    return KeptNetwork(
        host,
        name,
        "the engine says it has active endpoints, but nothing is on it (its count of the "
        "network's endpoints is wrong, a fault of the engine that only its restart sets "
        "right); nothing uses it, and a deploy of this environment uses it again",
        (f"docker network rm {name}  # after the engine's next restart",),
    )


def _take_off(
    api: Any,
    net_id: str,
    key: str,
    ep: Mapping[str, Any],
    ours: Callable[[Mapping[str, str]], bool],
    leaving: Callable[[Mapping[str, str]], bool],
) -> str | None:
    """Take one endpoint of the network off: what it was ("" when it went meanwhile or
    is to be waited for), or None when it is a container that is not ours to disconnect.
    ``key`` is the container's id, ``ep-<endpoint id>`` for an endpoint without a
    container, or ``lb-<network>`` for an overlay network's own load balancer."""
    name = str(ep.get("Name") or key)
    labels: Mapping[str, str] | None = None
    if key.startswith("lb-"):
        return ""  # the network's own: goes with it
    if not key.startswith("ep-"):
        try:
            labels = api.inspect_container(key)["Config"].get("Labels") or {}
        except docker.errors.NotFound:
            labels = None  # removed: its endpoint stayed behind
    if labels is not None and leaving(labels):
        return ""
    if labels is not None and labels.get(L.ROLE) == L.ROLE_EDGE:
        what = f"edge proxy {name}"
    elif labels is not None and ours(labels):
        what = f"container {name}"
    elif labels is None:
        what = f"stale endpoint {name} (its container is gone)"
    else:
        return None
    # By id when the container exists; by the endpoint's name when it is gone (the
    # engine then deletes the endpoint itself, as `docker network disconnect -f` does).
    try:
        api.disconnect_container_from_network(
            key if labels is not None else name, net_id, force=True
        )
    except docker.errors.NotFound:
        return ""
    except docker.errors.APIError:
        return ""  # gone meanwhile, or the engine would not: the next removal says
    return what


def left_behind(what: str, removed: Sequence[str], kept: Sequence[KeptNetwork]) -> LeftBehind:
    """``down`` of ``what`` (app/environment) removed ``removed`` but not ``kept``."""
    lines = "".join(f"\n  {k.render()}" for k in kept)
    runs = "; ".join(f"on {k.host}: {' && '.join(k.commands)}" for k in kept)
    return LeftBehind(
        f"{what} is down ({len(removed)} removed), but the engine kept "
        f"{len(kept)} network(s):{lines}",
        hint=runs,
    )
