"""One app's data stays its own on a Swarm too (``deployer.docker.owners`` for hosts).

A stack's named volume is ``<app>_<volume>``, or the top-level volume's ``name:``; Swarm
creates it on the node a task runs on, and mounts it as it is when it exists. A manifest
that names another stack's volume would mount that stack's data. Before anything changes,
the deployer refuses (exit 2) a volume it would create that

- a service of another stack mounts (the services are the Swarm's, whatever node their
  tasks run on), or
- exists on the manager with labels that are not this app's: another stack's, another
  app's, another compose project's, or none (made by hand).

The manager's engine sees only its own volumes: a volume made by hand on a worker is not
seen. A volume meant to be shared is declared ``external: true``.

A volume that exists on the manager, an ``external`` one above all, mounts what its own
driver options say (``o: bind, device: /etc``): it is judged as a bind of those host
paths, as on a host (``deployer.docker.symlinks.volume_sources``), on the written paths
(no symlink is followed on a Swarm). Volumes are each node's own: a worker's volume of
that name is not seen from the manager.
"""

from __future__ import annotations

from typing import Any

import docker.errors

from deployer import labels as L
from deployer.docker.lan import judge_networks
from deployer.docker.owners import (
    FOREIGN_VOLUME,
    all_volumes,
    external_volumes,
    mounted_volumes,
    owner,
)
from deployer.docker.symlinks import _judge_lent, _where
from deployer.errors import InvalidInput
from deployer.manifest import policy
from deployer.swarm.api import SwarmApi

_HINT = (
    "give the volume a name of its own (or remove its `name:`); or, if this app is meant "
    "to use that volume, declare it `external: true`"
)


def _ours(app: str, compose_project: str | None, labels: dict[str, str]) -> bool:
    if L.STACK_NAMESPACE in labels:
        return labels[L.STACK_NAMESPACE] == app
    if L.APP in labels:
        return labels[L.APP] == app
    return bool(compose_project) and labels.get(L.COMPOSE_PROJECT) == compose_project


def _mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    template = service.get("Spec", {}).get("TaskTemplate") or {}
    return list((template.get("ContainerSpec") or {}).get("Mounts") or [])


def check_external_volume_owners(swarm: SwarmApi, services: list[dict[str, Any]]) -> None:
    """Refuse an ``external`` volume that a service of another app mounts or that exists on
    the manager as another app's (the deployer's labels: that app's data), unless
    ``policy.allow`` lists ``foreign-volume``, as in container mode."""
    m = swarm.manifest
    if FOREIGN_VOLUME in m.policy_allow:
        return
    for key, real in external_volumes(m):
        whose: dict[str, str] | None = None
        for s in services:
            labels = {str(k): str(v) for k, v in (s["Spec"].get("Labels") or {}).items()}
            if L.APP not in labels or labels[L.APP] == m.app:
                continue
            if any(x.get("Source") == real for x in _mounts(s)):
                whose = labels
        if whose is None:
            with swarm.wrapped(f"look at the volume {real}"):
                try:
                    found = swarm.api.inspect_volume(real)
                except docker.errors.NotFound:
                    found = {}
            labels = {str(k): str(v) for k, v in (found.get("Labels") or {}).items()}
            if L.APP in labels and labels[L.APP] != m.app:
                whose = labels
        if whose is not None:
            raise InvalidInput(
                f'{_where(m, key)} on the Swarm {swarm.name}, the external volume "{real}" '
                f"is not this app's: {owner(whose)}; the deployer would mount its data into "
                "this app's services",
                hint="give the volume a name of its own; if this app really is to share that "
                f'app\'s data, add "{FOREIGN_VOLUME}" to `policy: {{allow: [...]}}`',
            )


def check_volume_owners(swarm: SwarmApi) -> None:
    """Refuse (InvalidInput, exit 2) a volume of the manifest that another stack mounts,
    or that exists on the manager and is not this app's; an ``external`` one of another
    app (``check_external_volume_owners``). Reads only."""
    m = swarm.manifest
    volumes = mounted_volumes(m)
    if not volumes and not external_volumes(m):
        return
    with swarm.wrapped("list the services"):
        services = swarm.api.services()
    check_external_volume_owners(swarm, services)
    for key, real in volumes:
        for s in services:
            labels = {str(k): str(v) for k, v in (s["Spec"].get("Labels") or {}).items()}
            if labels.get(L.STACK_NAMESPACE) == m.app:
                continue
            if any(
                x.get("Type", "volume") == "volume" and x.get("Source") == real for x in _mounts(s)
            ):
                raise InvalidInput(
                    f'{_where(m, key)} on the Swarm {swarm.name}, the volume "{real}" is '
                    f'mounted by the service "{s["Spec"].get("Name")}", which is not this '
                    f"app's: {owner(labels)}; the deployer would mount its data into this "
                    "app's services",
                    hint=_HINT,
                )
        with swarm.wrapped(f"look at the volume {real}"):
            try:
                found = swarm.api.inspect_volume(real)
            except docker.errors.NotFound:
                continue
        labels = {str(k): str(v) for k, v in (found.get("Labels") or {}).items()}
        if _ours(m.app, m.compose_project, labels):
            continue
        raise InvalidInput(
            f'{_where(m, key)} on the Swarm {swarm.name}, the volume "{real}" already exists '
            f"on the manager and is not this app's: {owner(labels)}; the deployer would "
            "mount its data into this app's services",
            hint=_HINT,
        )


def check_volume_policy(swarm: SwarmApi) -> None:
    """Refuse (InvalidInput, exit 2) a named volume the services mount that exists on the
    manager and mounts, through its own driver options, a host path the safety policy
    refuses and ``policy.allow`` does not accept. Reads only."""
    m = swarm.manifest
    allowed = set(m.policy_allow)
    for key, real in all_volumes(m):  # each once, at its first mount
        mount = m.service(str(key[1])).volumes[int(key[3])]
        with swarm.wrapped(f"look at the volume {real}"):
            try:
                found = swarm.api.inspect_volume(real)
            except docker.errors.NotFound:
                continue
        opts = {str(k): str(v) for k, v in (found.get("Options") or {}).items()}
        for source, ro in policy.volume_host_paths(found.get("Driver"), opts):
            path = policy.canonical(source)
            who = (
                f'the volume "{real}" (as it is on the manager) mounts, through its '
                "driver options,",
                "volume",
            )
            where = f"the Swarm {swarm.name}"
            _judge_lent(m, where, allowed, key, who, source, path, ro or mount.read_only)


def check_lan_networks(swarm: SwarmApi) -> None:
    """Refuse (InvalidInput, exit 2) a network the services join that exists on the Swarm
    as a macvlan or ipvlan one (``deployer.docker.lan``), unless ``policy.allow`` lists
    ``host-lan``. Reads only."""

    def look(name: str) -> dict[str, Any] | None:
        with swarm.wrapped(f"look at the network {name}"):
            found = swarm.api.networks(names=[name])
        return next((n for n in found if n.get("Name") == name), None)

    judge_networks(swarm.manifest, look, f"the Swarm {swarm.name}")
