"""The public routes of an app on one host, for `deployer status` (read only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.manifest.model import Manifest
from deployer.proxy import routes as R
from deployer.proxy.switch import public_urls


def routes(
    manifest: Manifest, client: Any, host: str, by_ip: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """{"proxy": state, "routes": [{url, service, upstreams: [{replica, address,
    container, health}]}]}; ``by_ip`` maps a container address to its status row."""
    from deployer.proxy.caddy import CaddyHost

    edge = manifest.edge
    if edge is None:
        return {"proxy": None, "routes": []}
    proxy = CaddyHost(client, host, edge)
    c = proxy._container()
    state = "missing" if c is None else str(c.status)
    out: list[dict[str, Any]] = []
    urls = public_urls(manifest)
    for svc, url in zip(manifest.public_services, urls, strict=True):
        assert svc.proxy is not None
        rid = R.route_id(manifest.app, manifest.environment.name, svc.name)
        ups = []
        for n in range(1, svc.replicas + 1):
            addr = proxy.read_upstream(R.upstream_file(rid, n)) if state == "running" else ""
            row = by_ip.get(addr.rpartition(":")[0]) or {}
            ups.append(
                {
                    "replica": n,
                    "address": addr or None,
                    "container": row.get("container"),
                    "health": row.get("health") or ("unknown" if addr else "none"),
                }
            )
        out.append({"url": url, "service": svc.name, "upstreams": ups})
    return {"proxy": f"{edge.name} ({state}, {edge.image})", "routes": out}


def render(data: Mapping[str, Any]) -> str:
    if not data.get("proxy"):
        return ""
    lines = [f"edge proxy: {data['proxy']}"]
    for r in data["routes"]:
        ups = ", ".join(
            f"{u['address'] or '-'} ({u['container'] or '?'}, {u['health']})"
            for u in r["upstreams"]
        )
        lines.append(f"  {r['url']} → {r['service']}: {ups}")
    return "\n".join(lines) + "\n"
