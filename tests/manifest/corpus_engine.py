"""The accepted corpus cases on the real engine: each service's container created (not
started) by the deployer's own code, as a deploy creates it, with the test image in place
of the service's (no registry is reachable here; what is checked is what the deployer
gives the engine). A sample covers every service key the accepted cases use.

Found this way, creating every service of the 381 accepted cases: an external network or
volume, or a logging driver, the host lacks, met by the engine mid-rollout; now refused
before anything changes (tests/docker/test_external.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.host import DockerHost
from deployer.docker.support import missing
from deployer.engine import network_name, volume_name
from deployer.manifest.model import Manifest
from deployer.plan import waves

# keys whose value is a mapping of settings (not of names: environment, labels, ulimits)
_NESTED = ("deploy", "healthcheck", "logging", "build", "blkio_config", "develop")
# keys whose items, or the values of whose mapping, are mappings of settings
_ITEMS = ("volumes", "ports", "networks", "configs", "secrets", "depends_on", "devices")


def service_keys(compose_json: Mapping[str, Any]) -> set[str]:
    """The keys a case's services use, as compose prints them: the service's own, the
    settings under the keys of ``_NESTED``, and those of each item of ``_ITEMS``; and the
    keys of the top-level networks and volumes."""
    keys: set[str] = set()
    for svc in (compose_json.get("services") or {}).values():
        for k, v in svc.items():
            keys.add(k)
            if k in _NESTED and isinstance(v, Mapping):
                keys.update(f"{k}.{sub}" for sub in v)
            if k in _ITEMS:
                items = v.values() if isinstance(v, Mapping) else v
                for item in items if isinstance(items, Iterable) else ():
                    if isinstance(item, Mapping):
                        keys.update(f"{k}[].{sub}" for sub in item)
    for section in ("networks", "volumes"):
        for top in (compose_json.get(section) or {}).values():
            keys.update(f"{section}.{k}" for k in (top or {}))
    return keys


def covering(cases: Iterable[tuple[str, set[str]]]) -> list[str]:
    """Greedily, the fewest cases whose keys cover every key of all of them."""
    todo = dict(cases)
    left = set().union(*todo.values()) if todo else set()
    chosen = []
    while left:
        best = max(sorted(todo), key=lambda c: len(todo[c] & left))
        chosen.append(best)
        left -= todo.pop(best)
    return chosen


def overlapping(api: Any, manifest: Manifest) -> list[str]:
    """The manifest's explicit subnets that a network of this engine already has: the
    engine refuses them ("Pool overlaps"), for compose as for the deployer; which ones
    depends on what else runs on the engine."""
    taken = []
    for n in api.networks():
        for c in (n.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError):
                taken.append((ipaddress.ip_network(c.get("Subnet", ""), strict=False), n["Name"]))
    out = []
    for top in manifest.networks:
        for subnet, _, _ in top.subnets:
            with contextlib.suppress(ValueError):
                mine = ipaddress.ip_network(subnet, strict=False)
                out += [f"{subnet} ({name})" for net, name in taken if net.overlaps(mine)]
    return out


def create_all(host: DockerHost, manifest: Manifest, image: str) -> list[str] | None:
    """Create every service's container of ``manifest`` (under a fresh app name) in the
    order of its waves, and remove them; the engine's refusals, one line each (None:
    nothing tried, as the engine lacks a driver the manifest names, which a deploy refuses
    before anything changes, or has a network with a subnet the manifest gives).
    External networks and volumes are made first (the team's own), and removed after."""
    api: Any = host.client.api
    m = dataclasses.replace(manifest, app="cx" + secrets.token_hex(4))
    made: list[tuple[str, str]] = []
    info = api.info()
    if missing(m, info.get("Plugins") or {}, info.get("Runtimes"), "here"):
        return None  # refused before anything changes (tests/docker/test_external.py)
    if overlapping(api, m):
        return None
    errors: list[str] = []
    try:
        for n in m.networks:
            if n.external:
                made.append(("network", api.create_network(network_name(m, n.name))["Id"]))
        for v in m.volumes:
            if v.external:
                made.append(("volume", api.create_volume(volume_name(m, v.name))["Name"]))
        host.ensure_infrastructure(m)
        by_name = {s.name: s for s in m.services}
        for wave in waves(m.services):
            for name in wave:
                svc = by_name[name]
                labels = {
                    L.APP: m.app,
                    L.ENVIRONMENT: m.environment.name,
                    L.SERVICE: name,
                    L.REPLICA: "1",
                }
                if m.compose_project:
                    labels[L.COMPOSE_PROJECT] = m.compose_project
                    labels[L.COMPOSE_SERVICE] = name
                try:
                    host.create(m, svc, image, 1, labels, f"{m.app}-{name}-1")
                except docker.errors.APIError as e:
                    errors.append(f"{name}: {e.explanation or e}")
                except Exception as e:
                    errors.append(f"{name}: {type(e).__name__}: {e}")
        return errors
    finally:
        for c in api.containers(all=True, filters={"label": f"{L.APP}={m.app}"}):
            api.remove_container(c["Id"], force=True, v=True)
        for n in api.networks(filters={"label": f"{L.APP}={m.app}"}):
            api.remove_network(n["Id"])
        for v in api.volumes(filters={"label": f"{L.APP}={m.app}"}).get("Volumes") or []:
            api.remove_volume(v["Name"], force=True)
        for kind, ref in made:
            if kind == "network":
                api.remove_network(ref)
            else:
                api.remove_volume(ref, force=True)
