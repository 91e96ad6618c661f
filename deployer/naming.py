"""The names of what the deployer creates, on both engines, in one place.

Containers (``engine: container``): ``<app>-<env>-<service>-<replica>`` and its kept and
next forms, networks and volumes ``<app>-<env>-<name>`` (compose's ``<project>_<name>``
for an app compose started). Swarm (``engine: swarm``): services, networks and volumes
``<app>_<name>``, as ``docker stack deploy`` names them. Pure: no SDK.
"""

from __future__ import annotations

from collections.abc import Sequence

from deployer.manifest.model import (
    Manifest,
    NetworkAttachment,
    Service,
    TopNetwork,
    TopVolume,
    host_form,
)

# Names of what the deployer creates on a host. Labels are immutable, so a container's
# role is read from its name: ``<app>-<env>-<service>-<replica>`` is the current one,
# ``<that>--<release>`` a previous release's container kept stopped for rollback, and
# ``<that>--next-<release>`` a replacement that is starting (only during a deploy).
KEPT_SEP = "--"
NEXT_MARK = "--next-"


def canonical_name(app: str, environment: str, service: str, replica: int) -> str:
    return f"{app}-{host_form(environment)}-{service}-{replica}"


def kept_name(canonical: str, release: str | None, container_id: str) -> str:
    return f"{canonical}{KEPT_SEP}{release or 'r' + container_id[:12]}"


def next_name(canonical: str, release: str) -> str:
    return f"{canonical}{NEXT_MARK}{release}"


def default_network(app: str, environment: str) -> str:
    """The network of services that list none."""
    return f"{app}-{host_form(environment)}"


def declared_name(items: Sequence[TopNetwork | TopVolume], name: str) -> str | None:
    """The engine's name the manifest gives its network or volume ``name``, on either
    engine: compose's ``name:``, or an external one's own name; None when it gives none."""
    for item in items:
        if item.name == name and item.engine_name:
            return item.engine_name
        if item.name == name and item.external:
            return name
    return None


def network_name(manifest: Manifest, name: str) -> str:
    """The engine's name of a network of the manifest (external ones keep their name).

    An app whose services come from compose files (``compose_project``) keeps compose's
    names, ``<project>_<name>``, so replacing what compose started stays on the same
    networks and volumes (their data included).
    """
    declared = declared_name(manifest.networks, name)
    if declared:
        return declared
    if manifest.compose_project:
        return f"{manifest.compose_project}_{name}"
    if name == "default":
        return default_network(manifest.app, manifest.environment.name)
    return f"{manifest.app}-{host_form(manifest.environment.name)}-{name}"


def volume_name(manifest: Manifest, name: str) -> str:
    """The engine's name of a named volume of the manifest (external ones keep their name)."""
    declared = declared_name(manifest.volumes, name)
    if declared:
        return declared
    if manifest.compose_project:
        return f"{manifest.compose_project}_{name}"
    return f"{manifest.app}-{host_form(manifest.environment.name)}-{name}"


def by_priority(networks: tuple[NetworkAttachment, ...]) -> tuple[NetworkAttachment, ...]:
    """The networks in the order a container joins them: with a ``priority`` written, the
    highest first and equal ones by name, as compose connects them; else as written."""
    if not any(a.priority for a in networks):
        return networks
    return tuple(sorted(networks, key=lambda a: (-a.priority, a.name)))


def service_networks(manifest: Manifest, service: Service) -> list[tuple[str, list[str]]]:
    """(engine network name, aliases) for each network the service joins, in order."""
    if service.network_mode:
        return []
    # A hostname is an alias too, as docker compose (v2) gives it.
    host = [service.hostname] if service.hostname and service.hostname != service.name else []
    linked = {n: [a for m, a in service.link_aliases if m == n] for n, _ in service.link_aliases}
    if not service.networks:
        extra = [a for a in (*host, *linked.get("default", ())) if a != service.name]
        return [(network_name(manifest, "default"), [service.name, *dict.fromkeys(extra)])]
    out = []
    for att in by_priority(service.networks):
        extra = [a for a in (*att.aliases, *host, *linked.get(att.name, ())) if a != service.name]
        aliases = [service.name, *dict.fromkeys(extra)]
        out.append((network_name(manifest, att.name), aliases))
    return out


def lock_key(app: str, environment: str) -> str:
    return f"{app}/{environment}"


def edge_lock_key(proxy_name: str) -> str:
    """The lock of a host's edge proxy (named by its container), which every app and
    environment behind it takes to edit its config."""
    return f"edge/{proxy_name}"


# -- Swarm ------------------------------------------------------------------------------


def service_name(app: str, service: str) -> str:
    """A Swarm service: ``<app>_<service>``, as ``docker stack deploy`` names it."""
    return f"{app}_{service}"


def stack_network_name(manifest: Manifest, name: str) -> str:
    """A network of a Swarm environment: ``<app>_<name>`` (external ones keep their name)."""
    return declared_name(manifest.networks, name) or f"{manifest.app}_{name}"


def stack_volume_name(manifest: Manifest, name: str) -> str:
    """A named volume of a Swarm environment: ``<app>_<name>`` (external ones keep theirs)."""
    return declared_name(manifest.volumes, name) or f"{manifest.app}_{name}"


def app_volume_name(manifest: Manifest, name: str) -> str:
    """The engine's name of a named volume, on the engine of the manifest's environment."""
    if manifest.environment.engine == "swarm":
        return stack_volume_name(manifest, name)
    return volume_name(manifest, name)
