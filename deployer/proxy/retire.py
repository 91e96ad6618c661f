"""Routes an environment no longer has: taken away after a deploy that succeeded (a
service no longer public), and by `deployer down` (all of them), under the proxy lock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from deployer.engine import HostEngine
from deployer.errors import DeployFailed
from deployer.manifest.model import Manifest
from deployer.proxy import routes as R
from deployer.proxy import tls as T
from deployer.proxy.switch import Line, proxy_lock, proxy_of

if TYPE_CHECKING:
    from deployer.proxy.caddy import CaddyHost


def forget(
    proxy: CaddyHost,
    engine: HostEngine,
    app: str,
    environment: str,
    holder: str,
    say: Callable[[str], None],
    keep: frozenset[str] = frozenset(),
) -> list[str]:
    """The routes of ``app``/``environment`` but ``keep`` (route ids) go, with their
    upstream files, and with no route kept, its part of the TLS settings too (a deploy
    sets that part for the routes it keeps). Under the proxy lock: a deploy of another app
    may be editing the proxy's config (a wait for it is said). The ids of the routes
    removed."""
    with proxy_lock(engine, proxy.edge.name, holder, say):
        config = proxy.get("/config/") or {}
        routes = [r for s in R.listeners(proxy.edge) for r in R.routes_in(config, s)]
        rids = {str(r.get("@id")) for r in R.stale_routes(routes, app, environment, keep)}
        removed = proxy.remove_routes(rids, config) if rids else []
        if not keep:
            part = T.Part(hosts=frozenset(T.hosts_of(config, app, environment)))
            for path, value in T.changes(config, app, environment, part).items():
                proxy.ensure_value(path, value)
        stale = [R.upstream_dir(rid) for rid in sorted(rids)]
        if not keep:
            stale.append(T.ca_root_file(app, environment))
        if stale:
            proxy.exec(["rm", "-rf", *stale])
        return removed


def retire_routes(
    manifest: Manifest, engines: Mapping[str, HostEngine], line: Line, holder: str
) -> None:
    """After a deploy succeeded: the routes this environment left on a host's proxy for
    services that are no longer public (their ``proxy:`` removed, or the service gone),
    also when none is public any more. Looked at without the lock first (a deploy that
    has nothing to retire takes no lock)."""
    from deployer.proxy.caddy import CaddyHost  # the Docker SDK, only when needed

    edge = proxy_of(manifest)
    app, env = manifest.app, manifest.environment.name
    keep = frozenset(R.route_id(app, env, s.name) for s in manifest.public_services)
    for name, engine in engines.items():
        client = getattr(engine, "client", None)
        if client is None:
            continue
        proxy = CaddyHost(client, name, edge)
        c = proxy._container()
        if c is None or c.status != "running":
            continue
        try:
            routes = proxy.all_routes()
        except DeployFailed:
            continue
        if not R.stale_routes(routes, app, env, keep):
            continue
        for rid in forget(proxy, engine, app, env, holder, _on(line, name), keep):
            line(f"edge proxy: route of {R.service_of(rid)} removed (not public any more)", name)


def _on(line: Line, host: str) -> Callable[[str], None]:
    def say(text: str) -> None:
        line(text, host)

    return say
