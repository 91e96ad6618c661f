"""The edge proxy's TLS settings, as data: each app and environment owns its part, and a
deploy (or `deployer down`) changes its own part only.

- ACME: one automation policy per app and environment (``@id`` ``deployer-acme:<app>:<env>``)
  naming its host names as subjects, with the issuer its environment's ``proxy.acme`` says
  and its own file for ``acme.ca_root``. The proxy takes the first policy that names a
  host, so one app's ACME directory, account or trusted root never governs another app's
  certificates. Policies that name hosts come before any that names none.
- Certificates from files: tagged with their route's id.
- ``skip_certificates`` (the hosts Caddy must not get a certificate for, because files give
  it): the app's hosts leave it unless they have files now, so a route that moves from
  files to ACME gets its certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.manifest.model import EdgeProxy
from deployer.proxy.routes import TLS_SERVER, owner_of, routes_in, safe_name

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
AUTOMATION = "/config/apps/tls/automation"
LOAD_PEM = "/config/apps/tls/certificates/load_pem"
SKIP = f"/config/apps/http/servers/{TLS_SERVER}/automatic_https/skip_certificates"
POLICY_PREFIX = "deployer-acme:"


def policy_id(app: str, environment: str) -> str:
    return f"{POLICY_PREFIX}{app}:{environment}"


def ca_root_file(app: str, environment: str) -> str:
    """Where the proxy keeps this environment's ``acme.ca_root`` (its own file)."""
    return f"/config/deployer/acme/{safe_name((app, environment))}.pem"


def acme_policy(
    edge: EdgeProxy, app: str, environment: str, hosts: Iterable[str]
) -> dict[str, Any]:
    """Certificates for ``hosts`` from the environment's ACME directory (Let's Encrypt by
    default)."""
    issuer: dict[str, Any] = {
        "module": "acme",
        "ca": edge.acme_directory or LETS_ENCRYPT,
        "challenges": {"tls-alpn": {"disabled": True}},
    }
    if edge.acme_email:
        issuer["email"] = edge.acme_email
    if edge.acme_ca_root:
        issuer["trusted_roots_pem_files"] = [ca_root_file(app, environment)]
    return {
        "@id": policy_id(app, environment),
        "subjects": sorted(set(hosts)),
        "issuers": [issuer],
    }


@dataclass(frozen=True)
class Part:
    """What one app and environment wants of the TLS settings."""

    policy: dict[str, Any] | None = None  # its ACME policy, if it has ACME routes
    certificates: list[dict[str, Any]] = field(default_factory=list)  # load_pem entries
    file_hosts: frozenset[str] = frozenset()  # the hosts whose certificate comes from files
    hosts: frozenset[str] = frozenset()  # every host it routes now or routed before


def hosts_of(config: Mapping[str, Any], app: str, environment: str) -> set[str]:
    """The hosts of the routes ``app``/``environment`` has in the proxy now."""
    out: set[str] = set()
    for server in config.get("apps", {}).get("http", {}).get("servers", {}) or {}:
        for route in routes_in(config, server):
            owner = owner_of(str(route.get("@id", "")))
            if owner is not None and owner[:2] == (app, environment):
                for m in route.get("match", []):
                    out.update(str(h) for h in m.get("host", []))
    return out


def changes(config: Mapping[str, Any], app: str, environment: str, part: Part) -> dict[str, Any]:
    """The TLS settings (admin API path → whole new value) that differ once this app's
    part is as ``part`` says, every other app's part as it is."""
    out: dict[str, Any] = {}
    tls = (config.get("apps") or {}).get("tls") or {}
    automation = tls.get("automation") or {}
    policies = list(automation.get("policies") or [])
    pid = policy_id(app, environment)
    wanted = [p for p in policies if p.get("@id") != pid]
    if part.policy is not None:
        wanted.append(part.policy)
    wanted.sort(key=lambda p: (not p.get("subjects"), str(p.get("@id", ""))))
    if wanted != policies:
        out[AUTOMATION] = {**automation, "policies": wanted}

    loaded = list((tls.get("certificates") or {}).get("load_pem") or [])
    keep = [c for c in loaded if not _owned(c.get("tags") or [], app, environment)]
    certificates = keep + part.certificates
    if _unordered(certificates) != _unordered(loaded):  # the order means nothing there
        out[LOAD_PEM] = certificates

    servers = ((config.get("apps") or {}).get("http") or {}).get("servers") or {}
    if TLS_SERVER in servers:
        have = list(
            (servers[TLS_SERVER].get("automatic_https") or {}).get("skip_certificates") or []
        )
        skip = sorted((set(have) - part.hosts) | part.file_hosts)
        if skip != sorted(have):
            out[SKIP] = skip
    return out


def _owned(tags: Iterable[str], app: str, environment: str) -> bool:
    for tag in tags:
        owner = owner_of(str(tag))
        if owner is not None and owner[:2] == (app, environment):
            return True
    return False


def _unordered(items: Iterable[Any]) -> list[str]:
    return sorted(json.dumps(i, sort_keys=True) for i in items)
