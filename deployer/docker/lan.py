"""A network that already exists on a host is joined as it is, whatever the manifest says:
an ``external: true`` one states no driver at all. A macvlan or ipvlan network puts the
app's containers on the host's LAN (``deployer.manifest.policy.lan_driver``), so before
anything changes each network the services join that exists on the host is inspected and
judged by its own driver: it needs ``policy.allow: [host-lan]`` as a manifest's macvlan
network does. A network not there yet is created from the manifest (judged when read).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from deployer.docker.owners import joined_networks, judge_network_owners, network_user
from deployer.docker.symlinks import _where
from deployer.docker.transport import wrapped
from deployer.errors import InvalidInput
from deployer.manifest import policy
from deployer.manifest.model import Manifest

Look = Callable[[str], dict[str, Any] | None]


def check_networks(manifest: Manifest, api: docker.APIClient, host: str) -> None:
    """Refuse (InvalidInput, exit 2) a network the services would join that exists on
    ``host`` with a driver that puts them on the host's LAN, unless ``policy.allow``
    lists ``host-lan``. Reads only."""

    def look(name: str) -> dict[str, Any] | None:
        with wrapped(f"look at the network {name}", host):
            try:
                info: dict[str, Any] = api.inspect_network(name)
            except docker.errors.NotFound:
                return None
        # an ID's prefix answers too: not the network of that name
        return info if info.get("Name") == name else None

    judge_networks(manifest, look, host, network_user(manifest, api, host))


def judge_networks(
    manifest: Manifest,
    look: Look,
    where: str,
    used_by: Callable[[str], dict[str, str] | None] | None = None,
) -> None:
    """:func:`check_networks` with ``look`` (a network by its exact name, None when there
    is none) on ``where`` (a host, a Swarm). A Swarm's macvlan network takes its options
    from a config-only network (``--config-from``): the parent is that one's. A network
    of another app or environment is refused first (``owners.judge_network_owners``)."""
    judge_network_owners(manifest, look, where, used_by)
    if policy.HOST_LAN in manifest.policy_allow:
        return
    for key, real in joined_networks(manifest):
        info = look(real)
        if info is None:
            continue
        opts = {str(k): str(v) for k, v in (info.get("Options") or {}).items()}
        config = (info.get("ConfigFrom") or {}).get("Network")
        if config and (source := look(str(config))) is not None:
            opts = {str(k): str(v) for k, v in (source.get("Options") or {}).items()} | opts
        why = policy.lan_driver(info.get("Driver"), opts)
        if why:
            raise InvalidInput(
                f'{_where(manifest, key)} on {where}, the network "{real}" (as it is on the '
                f"host) is refused by the safety policy: {why}",
                hint=f'add "{policy.HOST_LAN}" to `policy: {{allow: [...]}}` if this app '
                "really needs it; or join another network",
            )
