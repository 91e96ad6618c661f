"""One app's data stays its own: the named volumes and lending containers a manifest
names must be this app's and environment's, on each host, before anything changes.

A named volume is created when it is missing and mounted as it is when it exists, so a
manifest that names another app's volume (a top-level ``name: <its volume>``, or the
name the deployer gives another environment's) would mount that app's data. Docker
Compose warns in that case ("already exists but was created for project ...; use
`external: true`") and goes ahead; a deploy job's warning is read by nobody, so the
deployer refuses: an existing volume must carry this app's and environment's labels, or
be the compose project's own (``com.docker.compose.project``: an app that ``docker
compose up`` started, adopted on its first deploy) that no container of another app or
environment mounts. A volume meant to be shared is
declared ``external: true``, which says so in the manifest.

``volumes_from: [container:NAME]`` gives the service every mount of that container, its
named volumes included: the container must be this app's and environment's (or the
compose project's), unless ``policy.allow`` lists ``foreign-container``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.containers import wrapped
from deployer.docker.symlinks import Key, _where, lending_containers
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest
from deployer.naming import app_volume_name, network_name, stack_network_name

FOREIGN_CONTAINER = "foreign-container"


def mounted_volumes(manifest: Manifest) -> list[tuple[Key, str]]:
    """(key path, engine name) of each named volume the services mount that the deployer
    (or Swarm) creates when it is missing (not ``external``), once each: at the top-level
    volume's ``name:`` when it has one, else at the first mount. The engine name is the
    environment's: ``<app>_<volume>`` on a Swarm."""
    top = {v.name: v for v in manifest.volumes}
    out: dict[str, Key] = {}
    for svc in manifest.services:
        for i, m in enumerate(svc.volumes):
            if m.type != "volume" or not m.source:
                continue
            tv = top.get(m.source)
            if tv is not None and tv.external:
                continue
            real = app_volume_name(manifest, m.source)
            if real in out:
                continue
            if tv is not None and tv.engine_name and not tv.data_dir:
                out[real] = ("volumes", m.source, "name")
            else:
                out[real] = ("services", svc.name, "volumes", i)
    return [(key, real) for real, key in out.items()]


def owner(labels: dict[str, str]) -> str:
    if L.APP in labels:
        return (
            f'it belongs to the app "{labels.get(L.APP)}", environment '
            f'"{labels.get(L.ENVIRONMENT, "")}"'
        )
    if L.COMPOSE_PROJECT in labels:
        return f'docker compose created it for the project "{labels[L.COMPOSE_PROJECT]}"'
    if L.STACK_NAMESPACE in labels:
        return f'it belongs to the Swarm stack "{labels[L.STACK_NAMESPACE]}"'
    return (
        "it carries no label of the deployer or of docker compose (made by hand or by another tool)"
    )


def _ours(manifest: Manifest, labels: dict[str, str]) -> bool:
    if L.APP in labels:
        return (
            labels.get(L.APP) == manifest.app
            and labels.get(L.ENVIRONMENT) == manifest.environment.name
        )
    project = manifest.compose_project
    return bool(project) and labels.get(L.COMPOSE_PROJECT) == project


def _labels(data: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (data or {}).items()}


def _used_by_another(
    manifest: Manifest, api: docker.APIClient, host: str, volume: str
) -> dict[str, str] | None:
    """The labels of a container of another app or environment that mounts ``volume``, a
    volume of the compose project: once the deployer has adopted a compose app, its
    containers say whose the project's volumes are (another manifest giving its compose
    project the same name does not make them its own)."""
    return _another_user(manifest, api, host, "volume", volume)


def _another_user(
    manifest: Manifest, api: docker.APIClient, host: str, kind: str, name: str
) -> dict[str, str] | None:
    """The labels of a container of another app or environment that uses the ``kind``
    (volume, network) ``name``, None when there is none."""
    with wrapped(f"look at the containers of the {kind} {name}", host):
        users = api.containers(all=True, filters={kind: name})
    for c in users:
        labels = _labels(c.get("Labels"))
        if L.APP in labels and not _ours(manifest, labels):
            return labels
    return None


def all_volumes(manifest: Manifest) -> list[tuple[Key, str]]:
    """(key path of its first mount, engine name) of every named volume the services
    mount, ``external`` ones included."""
    out: dict[str, Key] = {}
    for svc in manifest.services:
        for i, m in enumerate(svc.volumes):
            if m.type == "volume" and m.source:
                out.setdefault(
                    app_volume_name(manifest, m.source), ("services", svc.name, "volumes", i)
                )
    return [(key, real) for real, key in out.items()]


def check_edge_volumes(manifest: Manifest, api: docker.APIClient, host: str) -> None:
    """Refuse a volume of the host's edge proxy (its config and certificates: every app's
    private keys), ``external`` or not, unless ``policy.allow`` lists ``edge-proxy``."""
    if L.EDGE_PROXY_ALLOW in manifest.policy_allow:
        return
    volumes = all_volumes(manifest)
    if not volumes:
        return
    with wrapped("look at the edge proxies", host):
        proxies = api.containers(all=True, filters={"label": f"{L.ROLE}={L.ROLE_EDGE}"})
    held = {
        str(m.get("Name")): str(c["Names"][0]).lstrip("/")
        for c in proxies
        for m in c.get("Mounts") or []
        if m.get("Type") == "volume"
    }
    for key, real in volumes:
        if real in held:
            raise InvalidInput(
                f'{_where(manifest, key)} on {host}, the volume "{real}" is the edge proxy\'s '
                f"({held[real]}): it holds the routes and certificates, "
                "private keys included, of every app on the host",
                hint="give the volume a name of its own; if this app manages the host's edge "
                f'proxy, add "{L.EDGE_PROXY_ALLOW}" to `policy: {{allow: [...]}}`',
            )


FOREIGN_VOLUME = "foreign-volume"


def external_volumes(manifest: Manifest) -> list[tuple[Key, str]]:
    """(key path of the top-level volume, engine name) of each ``external`` volume the
    services mount, once each."""
    top = {v.name: v for v in manifest.volumes}
    out: dict[str, Key] = {}
    for svc in manifest.services:
        for m in svc.volumes:
            tv = top.get(m.source or "")
            if m.type == "volume" and tv is not None and tv.external:
                out.setdefault(app_volume_name(manifest, tv.name), ("volumes", tv.name))
    return [(key, real) for real, key in out.items()]


def check_external_volumes(manifest: Manifest, api: docker.APIClient, host: str) -> None:
    """Refuse an ``external`` volume that is another app's or environment's (its deployer
    labels: that app's data), unless ``policy.allow`` lists ``foreign-volume``; one a
    compose project made or one made by hand (shared on purpose) is mounted as before."""
    if FOREIGN_VOLUME in manifest.policy_allow:
        return
    for key, real in external_volumes(manifest):
        with wrapped(f"look at the volume {real}", host):
            try:
                labels = _labels(api.inspect_volume(real).get("Labels"))
            except docker.errors.NotFound:
                continue  # check_external says so
        if L.APP not in labels or _ours(manifest, labels):
            continue
        raise InvalidInput(
            f'{_where(manifest, key)} on {host}, the external volume "{real}" is not this '
            f"app's and environment's: {owner(labels)}; the deployer would mount its data "
            "into this app's containers",
            hint="give the volume a name of its own; if this app really is to share that "
            f'app\'s data, add "{FOREIGN_VOLUME}" to `policy: {{allow: [...]}}`',
        )


def joined_networks(manifest: Manifest) -> list[tuple[Key, str]]:
    """(key path, engine name) of each network the services join, once each: at the
    top-level network when the manifest declares it, else at the service."""
    declared = {n.name for n in manifest.networks}
    name_of = stack_network_name if manifest.environment.engine == "swarm" else network_name
    out: dict[str, Key] = {}
    for svc in manifest.services:
        if svc.network_mode:
            continue
        for n in [a.name for a in svc.networks] or ["default"]:
            key: Key = ("networks", n) if n in declared else ("services", svc.name)
            out.setdefault(name_of(manifest, n), key)
    return [(key, real) for real, key in out.items()]


def network_user(
    manifest: Manifest, api: docker.APIClient, host: str
) -> Callable[[str], dict[str, str] | None]:
    """For :func:`judge_network_owners`: the labels of a container of another app or
    environment on a network of ``host``, None when there is none."""

    def used_by(network: str) -> dict[str, str] | None:
        return _another_user(manifest, api, host, "network", network)

    return used_by


def check_owners(manifest: Manifest, client: docker.DockerClient, host: str) -> None:
    """Refuse (InvalidInput, exit 2) an existing volume or a lending container of ``host``
    that is not this app's and environment's, and a volume of the edge proxy. Reads only."""
    api: docker.APIClient = client.api
    check_edge_volumes(manifest, api, host)
    for key, real in mounted_volumes(manifest):
        with wrapped(f"look at the volume {real}", host):
            try:
                labels = _labels(api.inspect_volume(real).get("Labels"))
            except docker.errors.NotFound:
                continue
        if _ours(manifest, labels):
            other = _used_by_another(manifest, api, host, real) if L.APP not in labels else None
            if other is None:
                continue
            labels = other
        raise InvalidInput(
            f'{_where(manifest, key)} on {host}, the volume "{real}" already exists and is '
            f"not this app's and environment's: {owner(labels)}; the deployer would mount "
            "its data into this app's containers",
            hint="give the volume a name of its own (or remove its `name:`); or, if this app "
            "is meant to use that volume, declare it `external: true`",
        )
    check_external_volumes(manifest, api, host)
    if FOREIGN_CONTAINER in manifest.policy_allow:
        return
    for key, name, _ in lending_containers(manifest):
        with wrapped(f"look at the container {name}", host):
            try:
                info = api.inspect_container(name)
            except docker.errors.NotFound:
                continue
        labels = _labels((info.get("Config") or {}).get("Labels"))
        if _ours(manifest, labels):
            continue
        raise InvalidInput(
            f'{_where(manifest, key)} on {host}, the container "{name}" is not this app\'s '
            f"and environment's: {owner(labels)}; volumes_from would mount its volumes "
            "(its data) into this app's containers",
            hint=f'lend from a container of this app, or add "{FOREIGN_CONTAINER}" to '
            "`policy: {allow: [...]}` if this app really needs it",
        )


FOREIGN_NETWORK = "foreign-network"


def judge_network_owners(
    manifest: Manifest,
    look: Callable[[str], dict[str, Any] | None],
    where: str,
    used_by: Callable[[str], dict[str, str] | None] | None = None,
) -> None:
    """Refuse (InvalidInput, exit 2) a network the services would join that exists on
    ``where`` (a host, a Swarm) and is another app's or environment's (its deployer
    labels), ``external`` or not, unless ``policy.allow`` lists ``foreign-network``; and
    one another compose project or Swarm stack made that the manifest does not declare
    ``external``. The deployer joins an existing network as it is: another app's network
    (its database on it, an internal one above all) would be reached from this app's
    containers. ``look`` gives a network by its exact name (None when there is none);
    ``used_by`` (container mode) the labels of a container of another app or environment
    on a network, None when there is none: a compose project's network is this app's by
    its project name unless another app that adopted the project has its containers on
    it (as for its volumes)."""
    allowed = FOREIGN_NETWORK in manifest.policy_allow
    declared = {n.name: n for n in manifest.networks}
    for key, real in joined_networks(manifest):
        info = look(real)
        if info is None:
            continue
        labels = _labels(info.get("Labels"))
        if labels.get(L.STACK_NAMESPACE) == manifest.app:
            continue  # a Swarm stack of the app's name: the stack the deployer took over
        if _ours(manifest, labels):
            if L.APP in labels or used_by is None:
                continue
            other = used_by(real)
            if other is None:
                continue
            labels = other  # a compose project another app adopted: that app's
        top = declared.get(str(key[1])) if key[0] == "networks" else None
        external = top is not None and top.external
        if L.APP in labels:
            if allowed:
                continue
            raise InvalidInput(
                f'{_where(manifest, key)} on {where}, the network "{real}" is not this '
                f"app's and environment's: {owner(labels)}; its containers (a database "
                "on an internal network) would be reached from this app's",
                hint="give the network a name of its own (or remove its `name:`); if this "
                f'app really is to join that app\'s network, add "{FOREIGN_NETWORK}" to '
                "`policy: {allow: [...]}`",
            )
        if not external and (L.COMPOSE_PROJECT in labels or L.STACK_NAMESPACE in labels):
            raise InvalidInput(
                f'{_where(manifest, key)} on {where}, the network "{real}" already exists '
                f"and is not this app's and environment's: {owner(labels)}; the deployer "
                "would join it as it is",
                hint="give the network a name of its own (or remove its `name:`); or, if "
                "this app is meant to join that network, declare it `external: true`",
            )
