"""The status of an app's containers on each host, as data (the JSON of `deployer status`):
per replica its release, image digest, commit, merge request, health, uptime and who
deployed it; the releases kept; leftovers of an interrupted deploy; the edge proxy."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from deployer import labels as L
from deployer.docker.host import DockerHost
from deployer.manifest.model import Manifest
from deployer.ownership import owner_of
from deployer.plan import ObservedContainer


def started_at(info: Mapping[str, Any]) -> float | None:
    raw = str((info.get("State") or {}).get("StartedAt") or "")
    if not raw or raw.startswith("0001-"):
        return None
    main, _, frac = raw.rstrip("Z").partition(".")
    try:
        base = datetime.fromisoformat(main + "+00:00").timestamp()
    except ValueError:
        return None
    return base + float("0." + (frac[:6] or "0"))


def collect(
    manifest: Manifest, hosts: Sequence[DockerHost], now: float | None = None
) -> dict[str, Any]:
    """The status of every host as data (the JSON format)."""
    now = time.time() if now is None else now
    app, env = manifest.app, manifest.environment.name
    out: dict[str, Any] = {"app": app, "environment": env, "hosts": []}
    for host in sorted(hosts, key=lambda h: str(h.name)):
        observed = host.observe(
            app,
            env,
            compose_project=manifest.compose_project,
            services=manifest.services,
            engine_names=manifest.engine_names(),
        )
        recorded = host.releases(app, env)
        releases = {r.id: r for r in recorded}
        latest = max(releases) if releases else None
        project = owner_of(host.name, recorded, observed.containers).path or None
        rows = []
        once = {s.name for s in manifest.services if s.may_exit}
        by_ip: dict[str, dict[str, Any]] = {}
        for c in sorted(observed.containers, key=lambda c: (c.service, c.replica)):
            info = host.api.inspect_container(c.id)
            labels = (info.get("Config") or {}).get("Labels") or {}
            rel = releases.get(c.release or "")
            started = started_at(info) if c.running else None
            health = ((info.get("State") or {}).get("Health") or {}).get("Status")
            rows.append(
                {
                    "service": c.service,
                    "replica": c.replica,
                    "container": c.name,
                    "running": c.running,
                    "health": health or _state(c, c.service in once),
                    "uptime_seconds": round(now - started, 1) if started else None,
                    "release": c.release,
                    "image": labels.get(L.IMAGE, ""),
                    "digest": c.image_digest or "",
                    "commit": labels.get(L.COMMIT) or (rel.commit if rel else ""),
                    "merge_request": labels.get(L.MR) or (rel.merge_request if rel else ""),
                    "deployed_by": labels.get(L.USER) or (rel.user if rel else ""),
                    "deployed_at": labels.get(L.TIME, ""),
                    "adopted_from": c.adopted_from,
                }
            )
            nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
            for net in nets.values():
                if net.get("IPAddress"):
                    by_ip[net["IPAddress"]] = rows[-1]
        edge: dict[str, Any] = {"proxy": None, "routes": []}
        if manifest.edge is not None:
            from deployer.proxy.status import routes

            edge = routes(manifest, host.client, host.name, by_ip)
        out["hosts"].append(
            {
                "host": host.name,
                "latest_release": latest,
                "project": project,  # the GitLab project the environment belongs to
                "releases": sorted(releases, reverse=True),
                "kept_containers": len(host.kept(app, env)),
                "services": rows,
                # left by an interrupted deploy; the next deploy cleans them up first
                "leftovers": [
                    {"container": c.name, "service": c.service, "running": c.running, "why": c.why}
                    for c in observed.leftovers
                ],
                "edge_proxy": edge["proxy"],
                "routes": edge["routes"],
            }
        )
    return out


def _state(c: ObservedContainer, runs_once: bool) -> str:
    """Without a health verdict: running, or how it stopped (a service that runs once
    shows "completed" after exit 0)."""
    if c.running:
        return "running"
    if runs_once and c.exit_code == 0:
        return "completed"
    return "stopped" if c.exit_code is None else f"exited ({c.exit_code})"
