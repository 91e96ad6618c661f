"""The app's networks and named volumes on a host, created when missing (never changed).

A bridge network is created with an explicit subnet (the one the engine picks for it), so
that a container can reconnect to it keeping its address (``deployer.docker.aliases``).
"""

from __future__ import annotations

import docker
import docker.errors
import docker.types

from deployer import labels as L
from deployer.docker.symlinks import _where
from deployer.docker.transport import wrapped
from deployer.engine import network_name, volume_name
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest, TopNetwork, TopVolume


def _labels(manifest: Manifest) -> dict[str, str]:
    return {
        L.APP: manifest.app,
        L.ENVIRONMENT: manifest.environment.name,
        L.MANAGED: "true",
    }


def networks_used(manifest: Manifest) -> dict[str, TopNetwork]:
    """Engine name → top-level network of every network a service joins."""
    wanted: dict[str, TopNetwork] = {}
    top = {n.name: n for n in manifest.networks}
    for svc in manifest.services:
        if svc.network_mode:
            continue
        for n in [a.name for a in svc.networks] or ["default"]:
            wanted[network_name(manifest, n)] = top.get(n) or TopNetwork(n)
    return wanted


def volumes_used(manifest: Manifest) -> dict[str, tuple[str, TopVolume | None]]:
    """Engine name → (manifest name, top-level volume) of every named volume mounted."""
    top = {v.name: v for v in manifest.volumes}
    out: dict[str, tuple[str, TopVolume | None]] = {}
    for svc in manifest.services:
        for m in svc.volumes:
            if m.type == "volume" and m.source:
                out[volume_name(manifest, m.source)] = (m.source, top.get(m.source))
    return out


def check_external(client: docker.DockerClient, host: str, manifest: Manifest) -> None:
    """Refuse (InvalidInput, exit 2) an ``external: true`` network or volume the host does
    not have, every one at once, before anything of the app changes. Reads only.

    The deployer never creates what the manifest says exists outside it; without this
    check a deploy found out after it had created the app's other networks, and `plan`
    showed a plan that could not run.
    """
    api: docker.APIClient = client.api
    missing: list[str] = []
    with wrapped("look at the external networks and volumes", host):
        externals = [(n, t) for n, t in networks_used(manifest).items() if t.external]
        if externals:
            existing = {n["Name"] for n in api.networks()}
            for name, t in sorted(externals):
                if name not in existing:
                    where = _where(manifest, ("networks", t.name, "external"))
                    missing.append(
                        f'{where} on {host}, the external network "{name}" does not exist '
                        f"(create it there: `docker network create {name}`)"
                    )
        for real, (source, tv) in sorted(volumes_used(manifest).items()):
            if tv is None or not tv.external:
                continue
            try:
                api.inspect_volume(real)
            except docker.errors.NotFound:
                where = _where(manifest, ("volumes", source, "external"))
                missing.append(
                    f'{where} on {host}, the external volume "{real}" does not exist '
                    f"(create it there: `docker volume create {real}`)"
                )
    if missing:
        raise InvalidInput(
            "\n".join(missing),
            hint="create what is missing on the host before the deploy (the deployer never "
            "creates what the manifest says exists outside it), or drop `external: true` "
            "so that the deployer creates and owns it",
        )


def ensure_infrastructure(client: docker.DockerClient, host: str, manifest: Manifest) -> None:
    """Create the app's networks and named volumes that are missing (never changes others);
    nothing when an external one is missing (``check_external``)."""
    api: docker.APIClient = client.api
    check_external(client, host, manifest)
    ours = _labels(manifest)
    with wrapped("create networks", host):
        existing = {n["Name"] for n in api.networks()}
        for name, t in sorted(networks_used(manifest).items()):
            if name in existing or t.external:
                continue
            labels = {**dict(t.labels), **ours}
            if t.subnets or t.enable_ipv6 or t.ipam_driver or t.driver_opts or t.attachable:
                _create_configured_network(api, name, t, labels)
            else:
                _create_network(api, name, t.driver or "bridge", t.internal, labels)
    with wrapped("create volumes", host):
        for real, (_, tv) in sorted(volumes_used(manifest).items()):
            if tv is not None and tv.external:
                continue
            try:
                api.inspect_volume(real)
                continue
            except docker.errors.NotFound:
                pass
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
