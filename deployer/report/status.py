"""`deployer status` as text, for both engines: per host a heading and a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deployer.report.log import format_table


def host_heading(where: str, data: Mapping[str, Any], host: Mapping[str, Any]) -> str:
    """``<where>: <app>/<environment> · release <id>`` (or ``· no release``), and
    ``· GitLab project <path>`` when one is recorded (``deployer.ownership``)."""
    head = f"{where}: {data['app']}/{data['environment']}"
    latest = host["latest_release"]
    head += f" · release {latest}" if latest else " · no release"
    project = host.get("project")
    return head + (f" · GitLab project {project}" if project else "")


def host_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """The host's table, or a line saying that nothing of the app runs there."""
    return format_table(rows, headers) if rows else "  (nothing of this app runs here)\n"


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


def render_containers(data: Mapping[str, Any]) -> str:
    parts = []
    for h in data["hosts"]:
        head = host_heading(h["host"], data, h)
        head += f" · {len(h['releases'])} release(s) kept for rollback"
        if h["releases"]:
            # the names `deployer rollback --to` takes (docs/operations.md)
            head += "\n  releases, newest first (rollback --to RELEASE): " + ", ".join(
                h["releases"]
            )
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


def render_swarm(data: Mapping[str, Any]) -> str:
    """A Swarm environment: services, replicas running/desired, the update's state."""
    parts = []
    for h in data["hosts"]:
        head = host_heading(f"{h['host']} (Swarm manager)", data, h)
        rows = [
            [
                r["swarm_service"],
                f"{r['running']}/{r['desired']}",
                r["update_state"] or "-",
                r["release"] or "-",
                (r["digest"] or "(not pinned)"),
                (r["commit"] or "")[:8] or "-",
                r["deployed_by"] or "-",
                r["deployed_at"] or "-",
            ]
            for r in h["services"]
        ]
        headers = [
            "service",
            "replicas",
            "update",
            "release",
            "image",
            "commit",
            "deployed by",
            "deployed at",
        ]
        body = host_table(rows, headers)
        failed = [
            f"  {r['service']}: {r['update_state']}: {r['update_message']}"
            for r in h["services"]
            if not r["healthy"] and r["update_message"]
        ]
        parts.append(head + "\n" + body + "".join(line + "\n" for line in failed))
    return "\n".join(parts)
