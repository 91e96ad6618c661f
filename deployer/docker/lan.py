"""A network that already exists on a host is joined as it is, whatever the manifest says:
an ``external: true`` one states no driver at all. A macvlan or ipvlan network puts the
app's containers on the host's LAN (``deployer.manifest.policy.lan_driver``), and so do a
bridge network's options that take a host interface or open the containers to the
machines the host routes for (``policy.bridge_options``), so before anything changes each
network the services join that exists on the host is inspected and judged by its own
driver and options: it needs ``policy.allow: [host-lan]`` as a manifest's network does. A
network not there yet is created from the manifest (judged when read); one the manifest
names a bridge for is refused, whatever the policy, when that is the bridge of a network
the host has already: the engine would put the app's containers with that network's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from deployer.docker.owners import joined_networks, judge_network_owners, network_user
from deployer.docker.symlinks import Key, _where
from deployer.docker.transport import wrapped
from deployer.errors import InvalidInput
from deployer.manifest import policy
from deployer.manifest.model import Manifest, TopNetwork

Look = Callable[[str], dict[str, Any] | None]


def check_networks(manifest: Manifest, api: docker.APIClient, host: str) -> None:
    """Refuse (InvalidInput, exit 2) a network the services would join that exists on
    ``host`` with a driver or bridge options that put them on the host's LAN, unless
    ``policy.allow`` lists ``host-lan``; and a bridge network the manifest would create
    on the bridge interface of a network the host has already. Reads only."""

    def look(name: str) -> dict[str, Any] | None:
        with wrapped(f"look at the network {name}", host):
            try:
                info: dict[str, Any] = api.inspect_network(name)
            except docker.errors.NotFound:
                return None
        # an ID's prefix answers too: not the network of that name
        return info if info.get("Name") == name else None

    def bridges() -> dict[str, str]:
        with wrapped("list the networks", host):
            found: list[dict[str, Any]] = api.networks()
        return host_bridges(found)

    judge_networks(manifest, look, host, network_user(manifest, api, host), bridges)


def host_bridges(networks: list[dict[str, Any]]) -> dict[str, str]:
    """The bridge interface of each bridge network of a host, with the network's name: its
    ``com.docker.network.bridge.name``, else the engine's own name ``br-<ID[:12]>``."""
    out: dict[str, str] = {}
    for n in networks:
        if n.get("Driver") != "bridge":
            continue
        opts = n.get("Options") or {}
        name = str(opts.get(policy.BRIDGE_NAME) or "") or f"br-{str(n.get('Id', ''))[:12]}"
        out[name] = str(n.get("Name"))
    return out


def _options(look: Look, info: dict[str, Any]) -> dict[str, str]:
    """A network's driver options; a Swarm's macvlan network takes its options from a
    config-only network (``--config-from``). The engine's default bridge (the network
    ``bridge``) is the engine's own: its interface is not the app's choice."""
    opts = {str(k): str(v) for k, v in (info.get("Options") or {}).items()}
    config = (info.get("ConfigFrom") or {}).get("Network")
    if config and (source := look(str(config))) is not None:
        opts = {str(k): str(v) for k, v in (source.get("Options") or {}).items()} | opts
    if info.get("Name") == "bridge" and opts.get(policy.DEFAULT_BRIDGE) == "true":
        opts.pop(policy.BRIDGE_NAME, None)
    return opts


def judge_networks(
    manifest: Manifest,
    look: Look,
    where: str,
    used_by: Callable[[str], dict[str, str] | None] | None = None,
    bridges: Callable[[], dict[str, str]] | None = None,
) -> None:
    """:func:`check_networks` with ``look`` (a network by its exact name, None when there
    is none) on ``where`` (a host, a Swarm), and ``bridges`` (:func:`host_bridges` of the
    host; None on a Swarm). A network of another app or environment is refused first
    (``owners.judge_network_owners``)."""
    judge_network_owners(manifest, look, where, used_by)
    allowed = policy.HOST_LAN in manifest.policy_allow
    taken: dict[str, str] | None = None
    for key, real in joined_networks(manifest):
        info = look(real)
        if info is None:
            top = _created(manifest, key)
            name = dict(top.driver_opts).get(policy.BRIDGE_NAME, "").strip() if top else ""
            if name and bridges is not None:
                taken = bridges() if taken is None else taken
                if name in taken:
                    raise InvalidInput(
                        f"{_where(manifest, (*key, 'driver_opts', policy.BRIDGE_NAME))} on "
                        f'{where}, the network "{real}" would be made on the bridge {name} '
                        f'of the network "{taken[name]}" of the host: the engine would plug '
                        "this app's containers into that bridge, beside that network's "
                        "containers (on the default network's bridge, engine 20.10 drops the "
                        "default network until the engine restarts)",
                        hint=f"remove {policy.BRIDGE_NAME} (the engine names the bridge "
                        "itself), or give a name no network of the host uses",
                    )
            continue
        if allowed:
            continue
        opts = _options(look, info)
        reasons = [why] if (why := policy.lan_driver(info.get("Driver"), opts)) else []
        reasons += [why for _, why in policy.bridge_options(info.get("Driver"), opts)]
        if reasons:
            raise InvalidInput(
                f'{_where(manifest, key)} on {where}, the network "{real}" (as it is on the '
                f"host) is refused by the safety policy: {'; '.join(reasons)}",
                hint=f'add "{policy.HOST_LAN}" to `policy: {{allow: [...]}}` if this app '
                "really needs it; or join another network",
            )


def _created(manifest: Manifest, key: Key) -> TopNetwork | None:
    """The top-level network at ``key`` that the deployer would create (not external)."""
    if key[0] != "networks":
        return None
    for n in manifest.networks:
        if n.name == key[1] and not n.external and (n.driver or "bridge").lower() == "bridge":
            return n
    return None
