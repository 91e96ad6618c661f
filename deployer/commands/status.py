"""`deployer status [-f FILE] [--env NAME] [--format text|json]`.

What runs where, per host and service replica: release, image digest, commit, merge
request, health, uptime, who deployed it and when. Read from the containers' labels
and the release records on each host; nothing changes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from deployer import labels as L
from deployer.errors import EXIT_OK
from deployer.manifest.model import Manifest
from deployer.report.status import host_heading, host_table


def _started(info: Mapping[str, Any]) -> float | None:
    raw = str((info.get("State") or {}).get("StartedAt") or "")
    if not raw or raw.startswith("0001-"):
        return None
    main, _, frac = raw.rstrip("Z").partition(".")
    try:
        base = datetime.fromisoformat(main + "+00:00").timestamp()
    except ValueError:
        return None
    return base + float("0." + (frac[:6] or "0"))


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"


def _short(digest: str) -> str:
    if "@sha256:" in digest:
        return digest.split("@sha256:", 1)[1][:12]
    return digest.removeprefix("sha256:")[:12]


def collect(manifest: Manifest, hosts: list[Any], now: float | None = None) -> dict[str, Any]:
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
        releases = {r.id: r for r in host.releases(app, env)}
        latest = max(releases) if releases else None
        rows = []
        by_ip: dict[str, dict[str, Any]] = {}
        for c in sorted(observed.containers, key=lambda c: (c.service, c.replica)):
            info = host.api.inspect_container(c.id)
            labels = (info.get("Config") or {}).get("Labels") or {}
            rel = releases.get(c.release or "")
            started = _started(info) if c.running else None
            health = ((info.get("State") or {}).get("Health") or {}).get("Status")
            rows.append(
                {
                    "service": c.service,
                    "replica": c.replica,
                    "container": c.name,
                    "running": c.running,
                    "health": health or ("running" if c.running else "stopped"),
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
        if manifest.edge is not None and getattr(host, "client", None) is not None:
            from deployer.proxy.status import routes

            edge = routes(manifest, host.client, host.name, by_ip)
        out["hosts"].append(
            {
                "host": host.name,
                "latest_release": latest,
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


def render_text(data: Mapping[str, Any]) -> str:
    parts = []
    for h in data["hosts"]:
        head = host_heading(h["host"], data, h)
        head += f" · {len(h['releases'])} release(s) kept for rollback"
        rows = [
            [
                r["container"],
                r["release"] or ("adopted" if r["adopted_from"] else "-"),
                _short(r["digest"]),
                (r["commit"] or "")[:8],
                r["merge_request"] or "-",
                r["health"],
                _uptime(r["uptime_seconds"]),
                r["deployed_by"] or "-",
                r["deployed_at"] or "-",
            ]
            for r in h["services"]
        ]
        headers = [
            "container",
            "release",
            "digest",
            "commit",
            "MR",
            "health",
            "up",
            "deployed by",
            "deployed at",
        ]
        left = "".join(
            f"  leftover: {c['container']} ({'running' if c['running'] else 'stopped'}; "
            f"{c['why']}): the next deploy cleans it up\n"
            for c in h.get("leftovers", [])
        )
        parts.append(head + "\n" + host_table(rows, headers) + left)
        if h.get("edge_proxy"):
            from deployer.proxy.status import render

            parts.append(render({"proxy": h["edge_proxy"], "routes": h.get("routes", [])}))
    return "\n".join(parts)


def run(args: argparse.Namespace, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.manifest import load_manifest
    from deployer.targets import close_all, connect_hosts

    env = dict(os.environ if environ is None else environ)
    manifest = load_manifest(args.file, args.env, env)
    if manifest.environment.engine == "swarm":
        from deployer.swarm import commands as swarm

        out.write(swarm.status(manifest, env, getattr(args, "format", "text")))
        out.flush()
        return EXIT_OK
    hosts = connect_hosts(manifest, env)
    try:
        data = collect(manifest, hosts)
    finally:
        close_all(hosts)
    if getattr(args, "format", "text") == "json":
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        out.write(render_text(data))
    out.flush()
    return EXIT_OK
