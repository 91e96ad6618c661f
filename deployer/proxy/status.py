"""The public routes of an app on one host, for `deployer status` (read only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.manifest.model import Manifest
from deployer.proxy import routes as R
from deployer.proxy.switch import proxy_of, public_urls


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


def route_changes(manifest: Manifest, client: Any, host: str) -> list[dict[str, str]]:
    """What a deploy would change in the proxy of one host: the proxy itself, each route
    (add, change, keep) and host names another app holds (the deploy would refuse)."""
    from deployer.proxy.caddy import EDGE_IMAGE, EDGE_LISTEN, CaddyHost

    # no service public: the deploy runs no proxy, but takes routes left from before away
    routed = manifest.edge is not None
    edge = proxy_of(manifest)
    proxy = CaddyHost(client, host, edge)
    c = proxy._container()
    out: list[dict[str, str]] = []
    if c is None:
        if routed:
            out.append({"host": host, "route": f"edge proxy {edge.name}", "change": "create"})
        existing: list[dict[str, Any]] = []
    else:
        labels = c.labels or {}
        moved = labels.get(EDGE_IMAGE) != edge.image or labels.get(EDGE_LISTEN) != proxy._listen()
        if routed and moved:
            out.append({"host": host, "route": f"edge proxy {edge.name}", "change": "replace"})
        existing = proxy.all_routes() if c.status == "running" else []
    app, env = manifest.app, manifest.environment.name
    for msg in R.conflicts(
        existing, app, env, [s.proxy for s in manifest.public_services if s.proxy]
    ):
        out.append({"host": host, "route": msg, "change": "refused"})
    have = {r.get("@id"): r for r in existing}
    for svc, url in zip(manifest.public_services, public_urls(manifest), strict=True):
        assert svc.proxy is not None
        rid = R.route_id(app, env, svc.name)
        want = R.route_json(rid, svc.proxy, svc.replicas)
        now = have.get(rid)
        change = "add" if now is None else ("keep" if _same(now, want) else "change")
        out.append(
            {"host": host, "route": f"{url} → {svc.name}:{svc.proxy.port}", "change": change}
        )
    public = [R.route_id(app, env, s.name) for s in manifest.public_services]
    for r in R.stale_routes(existing, app, env, public):
        hosts = [h for m in r.get("match", []) for h in m.get("host", [])]
        shown = f"{', '.join(hosts)} → {R.service_of(str(r.get('@id', '')))}"
        out.append({"host": host, "route": shown, "change": "remove"})
    return out


def _same(a: Any, b: Any) -> bool:
    import json

    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
