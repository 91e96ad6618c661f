"""A container's network aliases moved during a start-first rollout, and its start.

The service's name (and its compose aliases) must resolve to healthy containers only:
the new container gets them once healthy (``attach_aliases``), the old one loses them
before it stops (``detach_aliases``). The engine cannot change an endpoint's aliases in
place, so each move is a disconnect and a connect that pins the container's address, and
connections in flight to it survive the moment it is out of the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors

from deployer.docker.transport import wrapped


def _links(ep: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """The endpoint's links (``external_links``, "CONTAINER:ALIAS"): a reconnect gives
    them again, or the container loses them."""
    pairs = [str(x).partition(":") for x in (ep or {}).get("Links") or []]
    return [(name, alias or name) for name, _, alias in pairs] or None


def _reconnect(
    api: docker.APIClient,
    container_id: str,
    net: str,
    ip: str,
    aliases: list[str] | None,
    ep: Mapping[str, Any] | None = None,
) -> None:
    """Reconnect keeping the container's IP address when the network allows it, so that
    connections in flight to it survive the moment it is out of the network; with the
    endpoint's links and gateway priority as they were (``ep``: its inspect)."""
    if ip:
        try:
            _connect(api, container_id, net, aliases, ep, ip)
            return
        except docker.errors.APIError as e:
            if e.status_code == 404:
                raise
    _connect(api, container_id, net, aliases, ep)


def _connect(
    api: docker.APIClient,
    container_id: str,
    net: str,
    aliases: list[str] | None,
    ep: Mapping[str, Any] | None,
    ip: str | None = None,
) -> None:
    endpoint = api.create_endpoint_config(aliases=aliases, links=_links(ep), ipv4_address=ip)
    priority = (ep or {}).get("GwPriority")
    if priority:
        endpoint["GwPriority"] = priority
    connect_endpoint(api, container_id, net, endpoint)


def connect_endpoint(
    api: docker.APIClient, container_id: str, net: str, endpoint: Mapping[str, Any]
) -> None:
    """Connect the container to ``net`` with ``endpoint`` as built (docker-py's own connect
    builds one without ``GwPriority``)."""
    url = api._url("/networks/{0}/connect", net)
    data = {"Container": container_id, "EndpointConfig": dict(endpoint)}
    api._raise_for_status(api._post_json(url, data=data))


def detach_aliases(
    client: docker.DockerClient, host: str, container_id: str
) -> dict[str, list[str]]:
    """Reconnect the container to each network without aliases; return what it had."""
    api: docker.APIClient = client.api
    with wrapped("take the old container out of the network aliases", host):
        info = api.inspect_container(container_id)
        short = container_id[:12]
        had: dict[str, list[str]] = {}
        for net, ep in (info["NetworkSettings"].get("Networks") or {}).items():
            aliases = [a for a in (ep.get("Aliases") or []) if a not in (short, container_id)]
            if not aliases or net in ("host", "none", "bridge"):
                continue
            had[net] = aliases
            ip = str(ep.get("IPAddress") or "")
            api.disconnect_container_from_network(container_id, net)
            _reconnect(api, container_id, net, ip, None, ep)
        return had


def attach_aliases(
    client: docker.DockerClient, host: str, container_id: str, aliases: Mapping[str, Sequence[str]]
) -> None:
    api: docker.APIClient = client.api
    with wrapped("give the container its network aliases back", host):
        networks = api.inspect_container(container_id)["NetworkSettings"].get("Networks") or {}
        for net, names in aliases.items():
            ip = str((networks.get(net) or {}).get("IPAddress") or "")
            try:
                api.disconnect_container_from_network(container_id, net)
            except docker.errors.APIError as e:
                if e.status_code not in (404, 500):
                    raise
            _reconnect(api, container_id, net, ip, list(names), networks.get(net))


def ensure_aliases(
    client: docker.DockerClient, host: str, container_id: str, aliases: Mapping[str, Sequence[str]]
) -> bool:
    """Attach the aliases the container lacks on each network; True when it lacked some."""
    api: docker.APIClient = client.api
    with wrapped("check the container's network aliases", host):
        networks = api.inspect_container(container_id)["NetworkSettings"].get("Networks") or {}
    missing = {
        net: names
        for net, names in aliases.items()
        if net in networks and not set(names) <= set(networks[net].get("Aliases") or [])
    }
    if missing:
        attach_aliases(client, host, container_id, missing)
    return bool(missing)


def start(client: docker.DockerClient, host: str, container_id: str) -> None:
    """Start the container; one whose pinned address another container took meanwhile
    gives it up and starts on a free one.

    ``detach_aliases`` and ``attach_aliases`` reconnect a container with its IP pinned (so
    connections in flight survive), and once it stops another container may take that IP:
    starting it again fails ("Address already in use"). Then it is reconnected without a
    pinned address and started again. This is done when a start needs it, not at every
    stop: a deploy stops every old container and starts one again only to roll back, and
    each reconnect is two network operations the engine runs one at a time.
    """
    with wrapped(f"start {container_id[:12]}", host):
        try:
            client.api.start(container_id)
            return
        except docker.errors.APIError as e:
            if "already in use" not in str(e).lower():
                raise
    release_addresses(client, host, container_id)
    with wrapped(f"start {container_id[:12]}", host):
        client.api.start(container_id)


def release_addresses(client: docker.DockerClient, host: str, container_id: str) -> None:
    """Reconnect a stopped container without the addresses pinned on its networks."""
    api: docker.APIClient = client.api
    with wrapped(f"release the pinned address of {container_id[:12]}", host):
        try:
            info = api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        if info["State"].get("Running"):
            return
        short = container_id[:12]
        for net, ep in (info["NetworkSettings"].get("Networks") or {}).items():
            ipam = ep.get("IPAMConfig") or {}
            if not (ipam.get("IPv4Address") or ipam.get("IPv6Address")):
                continue
            aliases = [a for a in (ep.get("Aliases") or []) if a not in (short, container_id)]
            api.disconnect_container_from_network(container_id, net)
            _connect(api, container_id, net, aliases or None, ep)
