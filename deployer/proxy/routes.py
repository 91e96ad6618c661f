"""Caddy JSON for the edge proxy (pure: no Docker, no I/O).

A route's ``@id`` is ``deployer:<app>:<environment>:<service>``: an app reads and changes
only the objects whose id carries its own app and environment. Upstream addresses live in
files, one per replica, under ``UPSTREAMS``; the route names them with ``{file.<path>}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployer.errors import DeployFailed
from deployer.manifest.model import EdgeProxy, Route


class EdgeError(DeployFailed):
    """The edge proxy could not be run, configured or switched (the rollout rolls back)."""


class ProxyDown(EdgeError):
    """The proxy container does not run (any more): ``wrote`` when a switch may have
    written an upstream file before it stopped."""

    def __init__(self, message: str, *, hint: str | None = None, wrote: bool = True) -> None:
        super().__init__(message, hint=hint)
        self.wrote = wrote


SERVER = "deployer"
TLS_SERVER = "deployer-tls"
UPSTREAMS = "/config/deployer/upstreams"
ID_PREFIX = "deployer:"


def servers_in(config: Any) -> dict[str, Any]:
    """The http servers of a whole config ({} when it has none)."""
    if not isinstance(config, dict):
        return {}
    servers = ((config.get("apps") or {}).get("http") or {}).get("servers")
    return servers if isinstance(servers, dict) else {}


def routes_in(config: Any, server: str) -> list[dict[str, Any]]:
    """The routes of ``server`` in a whole config."""
    got = (servers_in(config).get(server) or {}).get("routes")
    return list(got) if isinstance(got, list) else []


def route_id(app: str, environment: str, service: str) -> str:
    return f"{ID_PREFIX}{app}:{environment}:{service}"


def owner_of(rid: str) -> tuple[str, str, str] | None:
    """(app, environment, service) of a route id the deployer wrote, else None."""
    if not rid.startswith(ID_PREFIX):
        return None
    parts = rid[len(ID_PREFIX) :].split(":")
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def service_of(rid: str) -> str:
    """The service a route id names (the id itself when it is not the deployer's)."""
    owner = owner_of(rid)
    return owner[2] if owner is not None else rid


def owned_by(route: Mapping[str, Any], app: str, environment: str) -> bool:
    """Whether ``route`` is one the deployer wrote for ``app``/``environment``."""
    owner = owner_of(str(route.get("@id", "")))
    return owner is not None and owner[:2] == (app, environment)


def stale_routes(
    routes: Iterable[Mapping[str, Any]], app: str, environment: str, keep: Iterable[str]
) -> list[Mapping[str, Any]]:
    """The routes of ``app``/``environment`` whose ids are not in ``keep`` (the routes of
    the services public now): services no longer public, or no longer there."""
    kept = set(keep)
    return [r for r in routes if owned_by(r, app, environment) and r.get("@id") not in kept]


def listeners(edge: EdgeProxy) -> tuple[str, ...]:
    """The proxy's servers the deployer's routes live in."""
    return (SERVER, TLS_SERVER) if edge.https else (SERVER,)


def safe_name(parts: Sequence[str]) -> str:
    """One file name for (app, environment[, service]): joined by "@" and with an
    environment's "/" as "=", characters no name may hold, so no app can name another
    app's file (with "--" as the joint, app "a--b" in environment "c" and app "a" in
    environment "b--c" shared one)."""
    return "@".join(p.replace("/", "=").replace(":", "@") for p in parts)


def upstream_dir(rid: str) -> str:
    """The folder of route ``rid``'s replica slots."""
    owner = owner_of(rid)
    return f"{UPSTREAMS}/{safe_name(owner if owner is not None else (rid,))}"


def upstream_file(rid: str, replica: int) -> str:
    """The file of one replica slot of route ``rid``."""
    return f"{upstream_dir(rid)}/{replica}"


def listen_port(address: str) -> str:
    return address.rpartition(":")[2]


def base_config(edge: EdgeProxy) -> dict[str, Any]:
    """The proxy's config with no route: admin inside the container, the listeners."""
    servers: dict[str, Any] = {
        SERVER: {
            "listen": [":80"],
            "automatic_https": {"disable": True},
            "routes": [],
        }
    }
    if edge.https:
        servers[TLS_SERVER] = {
            "listen": [":443"],
            "routes": [],
            "tls_connection_policies": [{}],
            "automatic_https": {"disable_redirects": True},
        }
    return {
        "admin": {"listen": "127.0.0.1:2019"},
        "apps": {
            "http": {
                "grace_period": f"{max(1.0, edge.drain_timeout):g}s",
                "servers": servers,
            }
        },
    }


def route_json(rid: str, route: Route, replicas: int) -> dict[str, Any]:
    """One service's route: match host (and path prefix), proxy to its replicas' files."""
    match: dict[str, Any] = {"host": [route.host]}
    if route.path_prefix not in ("", "/"):
        prefix = route.path_prefix.rstrip("/")
        match["path"] = [prefix, prefix + "/*"]
    return {
        "@id": rid,
        "match": [match],
        "handle": [
            {
                "handler": "reverse_proxy",
                "upstreams": [
                    {"dial": "{file." + upstream_file(rid, n) + "}"}
                    for n in range(1, max(1, replicas) + 1)
                ],
                # a replica slot whose file is empty (scaling up) or an upstream that just
                # went away is retried on the next one, within the same request
                "load_balancing": {
                    "selection_policy": {"policy": "round_robin"},
                    "try_duration": "5s",
                    "try_interval": "50ms",
                },
                # an idle connection to an old container closes soon after its last
                # request, so a drain sees only requests still in flight
                "transport": {"protocol": "http", "keep_alive": {"idle_timeout": "1s"}},
            }
        ],
        "terminal": True,
    }


def server_of(route: Route) -> str:
    return TLS_SERVER if route.tls != "none" else SERVER


def route_order_key(route: Mapping[str, Any]) -> tuple[bool, int, str]:
    """The proxy takes the first route that matches: host names before wildcards (one
    app's ``*.example.com`` never takes another's ``shop.example.com``, whatever either's
    paths), then longer path prefixes first, so /api/* of a host wins over its /."""
    paths: list[str] = []
    hosts: list[str] = []
    for m in route.get("match", []):
        paths.extend(m.get("path", []))
        hosts.extend(m.get("host", []))
    longest = max((len(p) for p in paths), default=0)
    wildcard = any(str(h).startswith("*") for h in hosts)
    return (wildcard, -longest, str(route.get("@id", "")))


@dataclass(frozen=True)
class Claim:
    host: str
    path_prefix: str
    owner: str  # "<app>/<environment>"


def claims_of(routes: Iterable[Mapping[str, Any]]) -> list[Claim]:
    out = []
    for r in routes:
        owner = owner_of(str(r.get("@id", "")))
        if owner is None:
            continue
        for m in r.get("match", []):
            paths = m.get("path", [])
            prefix = paths[0] if paths else "/"
            for h in m.get("host", []):
                out.append(Claim(h, prefix, f"{owner[0]}/{owner[1]}"))
    return out


def conflicts(
    existing: Iterable[Mapping[str, Any]], app: str, environment: str, wanted: Sequence[Route]
) -> list[str]:
    """Messages for each host name of ``wanted`` that another app (or environment) owns."""
    me = f"{app}/{environment}"
    taken: dict[str, str] = {}
    for c in claims_of(existing):
        if c.owner != me:
            taken.setdefault(c.host, c.owner)
    out = []
    for r in wanted:
        other = taken.get(r.host)
        if other:
            out.append(f"the host name {r.host} is routed to {other} already, not to {me}")
    return out
