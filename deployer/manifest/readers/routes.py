"""A service's route through the edge proxy (``proxy:``, or compose's ``x-deployer-proxy:``),
and the checks of all routes of an environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from deployer.manifest.model import Environment, Route, Service
from deployer.manifest.problems import Path
from deployer.manifest.readers.values import HOSTNAME, port_int

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

TlsMode = Literal["none", "auto", "file"]


def route(b: Builder, path: Path, raw: dict[str, Any]) -> Route | None:
    key = "proxy"
    if "x-deployer-proxy" in raw:
        if "proxy" in raw:
            b.err(
                (*path, "x-deployer-proxy"),
                "both `proxy` and `x-deployer-proxy` are set",
                "keep one of them",
                key=True,
            )
            return None
        key = "x-deployer-proxy"
    spec = raw.get(key)
    if spec is None:
        return None
    p = (*path, key)
    if not isinstance(spec, dict):
        b.err(p, "must be a mapping", "write {host: shop.example.com, port: 8080}")
        return None
    host, port = host_port(b, p, spec)
    prefix = spec.get("path_prefix", "/")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        b.err((*p, "path_prefix"), f'"{prefix}" is not a path', "start it with /")
    check = spec.get("healthcheck")
    if check is not None and (not isinstance(check, str) or not check.startswith("/")):
        b.err((*p, "healthcheck"), f'"{check}" is not an HTTP path', "e.g. /up")
    mode, cert, key_file = tls(b, p, spec.get("tls", "none"))
    if mode == "auto" and isinstance(host, str) and host.startswith("*"):
        b.err(
            (*p, "tls"),
            f"an ACME certificate for the wildcard {host} needs a DNS challenge, which the "
            "edge proxy does not make",
            "give the certificate as files (tls: {certificate: ..., key: ...}), or route "
            "each host name",
        )
    if not isinstance(host, str) or not isinstance(port, int) or not isinstance(prefix, str):
        return None
    return Route(
        host=host.lower(),
        port=port,
        path_prefix=prefix,
        healthcheck=check if isinstance(check, str) else None,
        tls=mode,
        certificate=cert,
        key=key_file,
    )


def host_port(b: Builder, p: Path, spec: dict[str, Any]) -> tuple[Any, Any]:
    host, port = spec.get("host"), spec.get("port")
    if host is None:
        b.err(p, "missing required key `host`", "add `host: shop.example.com`")
    elif not isinstance(host, str) or not HOSTNAME.match(host):
        b.err((*p, "host"), f'"{host}" is not a host name', "e.g. shop.example.com")
    if port is None:
        b.err(p, "missing required key `port`", "add the container port, e.g. `port: 8080`")
    else:
        try:
            port = port_int(port)
        except ValueError:
            b.err((*p, "port"), f'"{port}" is not a port number (1-65535)')
            port = None
    return host, port


def pem_file(b: Builder, p: Path, name: str) -> str:
    """A PEM file the manifest names for the edge proxy, which ships it to the hosts: an
    absolute path (a File-type CI/CD variable's file) as it is; a relative one is a file
    of the repository, beside the file that names it, refused when it resolves outside
    the checkout (``../`` past its top, a committed symlink pointing out)."""
    if os.path.isabs(name):
        if b.repo is not None:
            b.repo.job_file(b, p, name, name, key=str(p[-1]))
        return name
    full = os.path.normpath(os.path.join(os.path.dirname(b.doc.pos(p).file), name))
    if b.repo is not None:
        b.repo.escapes(b, p, full, name, key=str(p[-1]))
    return full


def tls(b: Builder, p: Path, value: Any) -> tuple[TlsMode, str | None, str | None]:
    """``tls:``: none, auto (ACME) or a certificate and key from files."""
    if value is True or value == "auto":
        return "auto", None, None
    if isinstance(value, dict):
        files: dict[str, str | None] = {}
        for name in ("certificate", "key"):
            given = value.get(name)
            if not isinstance(given, str) or not given:
                b.err(
                    (*p, "tls"),
                    f"missing `{name}`",
                    f"set `{name}:` to a PEM file, e.g. a File-type CI/CD variable",
                )
                files[name] = None
            else:
                files[name] = pem_file(b, (*p, "tls", name), given)
        return "file", files["certificate"], files["key"]
    if value not in ("none", False, None):
        b.err((*p, "tls"), f'"{value}" is not a TLS mode', "use auto, none or {certificate, key}")
    return "none", None, None


def proxy_checks(b: Builder, env: Environment, services: list[Service], env_name: str) -> None:
    public = [s for s in services if s.proxy is not None]
    if env.engine == "swarm" and (public or env.proxy is not None):
        where: Path = (
            ("environments", env_name, "proxy")
            if env.proxy is not None
            else ("services", public[0].name, "proxy")
        )
        b.err(
            where,
            "the edge proxy runs in container mode only: Swarm routes public ports through "
            "its own ingress",
            "remove `proxy:` for this environment, or use engine: container",
            key=True,
        )
    seen: dict[tuple[str, str], str] = {}
    for svc in public:
        assert svc.proxy is not None
        slot = (svc.proxy.host, svc.proxy.path_prefix)
        if slot in seen:
            b.err(
                ("services", svc.name, "proxy", "host"),
                f"{svc.proxy.host}{svc.proxy.path_prefix} is routed to service "
                f'"{seen[slot]}" already',
                "give each public service its own host name or path_prefix",
            )
        seen[slot] = svc.name
