"""What the Swarm must have for the manifest, checked by `plan` (and so by a deploy)
before anything changes: each ``external: true`` network, as a swarm-scoped network (a
network of one host cannot carry a service), and the logging, volume and network drivers
the manifest names, on at least one node that can run tasks (the scheduler places a task
only on a node that has them; with none, the task waits forever and the rollout times
out). The same judgement as on a host (``deployer.docker.support``), on the nodes' plugins.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from deployer.docker.support import missing, refuse, wanted
from deployer.docker.symlinks import _where
from deployer.errors import InvalidInput
from deployer.naming import stack_network_name
from deployer.swarm import spec as S
from deployer.swarm.api import SwarmApi


def _plugins(nodes: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Kind -> plugin names of the nodes that are ready and active."""
    out: dict[str, set[str]] = defaultdict(set)
    for node in nodes:
        if (node.get("Status") or {}).get("State") != "ready":
            continue
        if (node.get("Spec") or {}).get("Availability", "active") != "active":
            continue
        for p in ((node.get("Description") or {}).get("Engine") or {}).get("Plugins") or []:
            out[str(p.get("Type"))].add(str(p.get("Name")))
    return out


def check_external_networks(swarm: SwarmApi) -> list[str]:
    m = swarm.manifest
    tops = {stack_network_name(m, n.name): n for n in m.networks if n.external}
    out = []
    for name, external in S.app_networks(m):
        if not external or name not in tops:
            continue
        where = _where(m, ("networks", tops[name].name, "external"))
        with swarm.wrapped(f"look up the network {name}"):
            found = [n for n in swarm.api.networks(names=[name]) if n["Name"] == name]
        if not found:
            out.append(
                f'{where} on the Swarm of {swarm.name}, the external network "{name}" does '
                f"not exist (create it: `docker network create -d overlay --attachable {name}`)"
            )
        elif found[0].get("Scope") != "swarm":
            out.append(
                f'{where} on the Swarm of {swarm.name}, the external network "{name}" is a '
                f"network of one host ({found[0].get('Driver')}, scope "
                f"{found[0].get('Scope')}): a Swarm service joins swarm-scoped networks "
                f"(create one: `docker network create -d overlay --attachable {name}`)"
            )
    return out


def check_support(swarm: SwarmApi) -> None:
    """Refuse (InvalidInput, exit 2) a missing external network, and a driver no node that
    can run tasks has, every one at once. Reads only."""
    problems = check_external_networks(swarm)
    if problems:
        raise InvalidInput(
            "\n".join(problems),
            hint="create the network on a manager before the deploy (the deployer never "
            "creates what the manifest says exists outside it), or drop `external: true` so "
            "that the deployer creates and owns it",
        )
    if not wanted(swarm.manifest):
        return
    with swarm.wrapped("look at the nodes' plugins"):
        nodes = swarm.api.nodes()
    where = f"the Swarm of {swarm.name} (no node that can run tasks)"
    problems = missing(swarm.manifest, _plugins(nodes), None, where)
    if problems:
        raise refuse(problems)
