"""The app's networks and named volumes on a host, created when missing (never changed).

A bridge network is created with an explicit subnet (the one the engine picks for it), so
that a container can reconnect to it keeping its address (``deployer.docker.aliases``).
"""

from __future__ import annotations

import docker
import docker.errors
import docker.types

from deployer import labels as L
from deployer.docker.transport import wrapped
from deployer.engine import network_name, volume_name
from deployer.errors import DeployFailed
from deployer.manifest.model import Manifest, TopNetwork


def ensure_infrastructure(client: docker.DockerClient, host: str, manifest: Manifest) -> None:
    """Create the app's networks and named volumes that are missing (never changes others)."""
    api: docker.APIClient = client.api
    ours = {
        L.APP: manifest.app,
        L.ENVIRONMENT: manifest.environment.name,
        L.MANAGED: "true",
    }
    wanted: dict[str, tuple[TopNetwork, dict[str, str]]] = {}
    top = {n.name: n for n in manifest.networks}
    for svc in manifest.services:
        if svc.network_mode:
            continue
        names = [a.name for a in svc.networks] or ["default"]
        for n in names:
            t = top.get(n) or TopNetwork(n)
            wanted[network_name(manifest, n)] = (t, {**dict(t.labels), **ours})
    with wrapped("create networks", host):
        existing = {n["Name"] for n in api.networks()}
        for name, (t, labels) in sorted(wanted.items()):
            if name in existing:
                continue
            if t.external:
                raise DeployFailed(
                    f"{host}: external network {name!r} does not exist",
                    hint=f"create it on the host (`docker network create {name}`) or drop "
                    "`external: true`",
                )
            if t.subnets or t.enable_ipv6 or t.ipam_driver or t.driver_opts or t.attachable:
                _create_configured_network(api, name, t, labels)
            else:
                _create_network(api, name, t.driver or "bridge", t.internal, labels)
    volumes: set[str] = set()
    for svc in manifest.services:
        for m in svc.volumes:
            if m.type == "volume" and m.source:
                volumes.add(m.source)
    topv = {v.name: v for v in manifest.volumes}
    with wrapped("create volumes", host):
        for vol in sorted(volumes):
            real = volume_name(manifest, vol)
            tv = topv.get(vol)
            try:
                api.inspect_volume(real)
                continue
            except docker.errors.NotFound:
                pass
            if tv and tv.external:
                raise DeployFailed(
                    f"{host}: external volume {real!r} does not exist",
                    hint=f"create it on the host (`docker volume create {real}`)",
                )
            api.create_volume(
                real,
                driver=(tv.driver if tv and tv.driver else "local"),
                driver_opts=dict(tv.driver_opts) if tv and tv.driver_opts else None,
                labels={**dict(tv.labels if tv else ()), **ours},
            )


def _create_configured_network(
    api: docker.APIClient, name: str, t: TopNetwork, labels: dict[str, str]
) -> None:
    """A network with the manifest's own address management (ipam), IPv6 or options."""
    pools = [
        docker.types.IPAMPool(subnet=subnet, gateway=gateway or None, iprange=ip_range or None)
        for subnet, gateway, ip_range in t.subnets
    ]
    try:
        api.create_network(
            name,
            driver=t.driver or "bridge",
            internal=t.internal,
            labels=labels,
            enable_ipv6=t.enable_ipv6,
            attachable=t.attachable or None,
            options=dict(t.driver_opts) or None,
            ipam=docker.types.IPAMConfig(driver=t.ipam_driver or "default", pool_configs=pools),
        )
    except docker.errors.APIError as e:
        if e.status_code != 409:
            raise


def _create_network(
    api: docker.APIClient, name: str, driver: str, internal: bool, labels: dict[str, str]
) -> None:
    """Create the network with an explicit subnet (the one the engine picks for it).

    A bridge network only lets a container reconnect with a given IP address when its
    subnet was configured explicitly; draining needs that (``detach_aliases``). So the
    network is created once to learn a free subnet, then again with that subnet.
    """
    try:
        if driver != "bridge":
            api.create_network(name, driver=driver, internal=internal, labels=labels)
            return
        for _ in range(3):
            probe = api.create_network(name, driver=driver, internal=internal, labels=labels)
            config = (api.inspect_network(probe["Id"]).get("IPAM") or {}).get("Config") or []
            api.remove_network(probe["Id"])
            if not config or not config[0].get("Subnet"):
                break
            pool = docker.types.IPAMPool(
                subnet=config[0]["Subnet"], gateway=config[0].get("Gateway")
            )
            try:
                api.create_network(
                    name,
                    driver=driver,
                    internal=internal,
                    labels=labels,
                    ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                )
                return
            except docker.errors.APIError as e:
                if e.status_code == 409:
                    return  # created meanwhile by a concurrent deploy
                continue  # the subnet was taken meanwhile: try again
        api.create_network(name, driver=driver, internal=internal, labels=labels)
    except docker.errors.APIError as e:
        if e.status_code != 409:
            raise
