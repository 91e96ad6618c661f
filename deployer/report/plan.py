"""The plan for people (a table in the job log, Markdown for an MR note) and for machines (JSON).

Nothing here can show an environment value: a plan only holds key names ("config
changed: environment"), digests and counts.

JSON (``deployer plan --format json``), stable keys::

    {
      "format": "deployer-plan/1",
      "app": str, "environment": str,
      "changes": bool,                      # anything to do on any host
      "summary": {"create": n, "replace": n, "scale": n, "remove": n, "unchanged": n},
      "waves": [[service, ...], ...],       # roll order; one wave's services are independent
      "digests": {service: "repo@sha256:..." | "sha256:<local id>"},
      "hosts": [{
        "host": str, "changes": bool,
        "steps": [{
          "service": str,
          "action": "create" | "replace" | "scale" | "unchanged" | "remove",
          "reasons": [str, ...],
          "old_digest": str | null, "new_digest": str | null,
          "strategy": "start-first" | "stop-first",
          "strategy_reason": str,           # "default", "written in update_config.order",
                                            # "fixed host port 80", "stateful: volume data
                                            # at /data is writable"
          "replicas_before": int, "replicas_after": int,
          "wave": int,                      # 0-based index into "waves" (text shows it 1-based)
          "adopted": bool,                  # its containers were started by docker compose
          "replace": [container id, ...], "remove": [container id, ...]
        }],
        "leftovers": [{                     # left by an interrupted deploy: cleaned first
          "id": str, "name": str, "service": str, "running": bool, "why": str,
          "action": "remove" | "stop"
        }]
      }]
    }
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from deployer.plan import Action, Plan, Step
from deployer.report.data import plan_data
from deployer.report.log import format_table

FORMAT = "deployer-plan/1"
_ORDER = [Action.CREATE, Action.REPLACE, Action.SCALE, Action.REMOVE, Action.UNCHANGED]
HEADERS = ["host", "service", "action", "reason", "digest (old → new)", "strategy", "wave"]


def short_digest(digest: str | None) -> str:
    """``repo@sha256:0123…`` → ``0123456789ab``; several (``a, b``) shortened each."""
    if not digest:
        return "-"
    out = []
    for d in digest.split(", "):
        hexpart = d.rsplit("sha256:", 1)[-1] if "sha256:" in d else d
        out.append(hexpart[:12])
    return ",".join(out)


def digest_change(step: Step) -> str:
    old, new = short_digest(step.old_digest), short_digest(step.new_digest)
    if step.action is Action.REMOVE:
        return f"{old} → -"
    if step.action is Action.CREATE:
        return f"- → {new}"
    if old == new:
        return new
    return f"{old} → {new}"


def reason(step: Step) -> str:
    return "; ".join(step.reasons) if step.reasons else "-"


def action_text(step: Step) -> str:
    text = str(step.action)
    scaled = step.replicas_before != step.replicas_after
    if step.action in (Action.SCALE, Action.REPLACE) and scaled:
        text += f" ({step.replicas_before}→{step.replicas_after})"
    elif step.action is Action.CREATE and step.replicas_after != 1:
        text += f" (x{step.replicas_after})"
    if step.adopted:
        text += " (adopted from compose)"
    return text


def strategy_text(step: Step) -> str:
    """``stop-first (stateful: volume data at /data is writable)``: a stop-first the
    manifest did not write says why."""
    implicit = step.strategy_reason not in ("", "default", "written in update_config.order")
    return f"{step.strategy} ({step.strategy_reason})" if implicit else step.strategy


def summary(plan: Plan) -> dict[str, int]:
    counts = Counter(s.action for h in plan.hosts for s in h.steps)
    return {str(a): counts.get(a, 0) for a in _ORDER}


def summary_line(plan: Plan) -> str:
    counts = summary(plan)
    parts = [f"{n} to {a}" for a, n in counts.items() if n and a != "unchanged"]
    if counts["unchanged"]:
        parts.append(f"{counts['unchanged']} unchanged")
    left = sum(len(h.leftovers) for h in plan.hosts)
    live = sum(1 for h in plan.hosts for lo in h.leftovers if "holds the lock" in lo.why)
    if left > live:
        parts.insert(0, f"{left - live} leftover(s) of an interrupted deploy to clean up")
    if live:
        parts.insert(0, f"{live} container(s) of the deploy that holds the lock")
    if not plan.changes:
        return "No changes: every service runs the wanted image digest and configuration."
    return "Plan: " + ", ".join(parts) + "."


def rows(plan: Plan) -> list[list[str]]:
    return [
        [
            h.host,
            s.service,
            action_text(s),
            reason(s),
            digest_change(s),
            strategy_text(s) if s.action is not Action.REMOVE else "-",
            str(s.wave + 1),
        ]
        for h in plan.hosts
        for s in h.steps
    ]


def render_text(plan: Plan) -> str:
    hosts = len(plan.hosts)
    head = f"Plan for {plan.app} → {plan.environment} ({hosts} host{'s' if hosts != 1 else ''})\n\n"
    waves = " → ".join("[" + ", ".join(w) + "]" for w in plan.waves)
    return (
        head
        + format_table(rows(plan), HEADERS)
        + leftover_lines(plan)
        + f"\nwaves: {waves}\n{summary_line(plan)}\n"
    )


def leftover_lines(plan: Plan) -> str:
    """What an interrupted deploy left, cleaned up (out of the aliases, drained) first."""
    lines = [
        f"leftover on {h.host}: {c.name} ({'running' if c.running else 'stopped'}; {c.why})"
        f" → {'stop' if c.keep else 'remove'} before any other change\n"
        for h in plan.hosts
        for c in h.leftovers
    ]
    return ("\n" + "".join(lines)) if lines else ""


def plan_json(plan: Plan) -> dict[str, Any]:
    data = plan_data(plan)
    for host, hdata in zip(plan.hosts, data["hosts"], strict=True):
        for step, sdata in zip(host.steps, hdata["steps"], strict=True):
            sdata["replace"] = list(step.replace)
            sdata["remove"] = list(step.remove)
    return {"format": FORMAT, **data, "summary": summary(plan)}


def render_json(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2, sort_keys=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan) -> str:
    lines = [
        f"### Deploy plan: `{_md(plan.app)}` → `{_md(plan.environment)}`",
        "",
        summary_line(plan),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for r in rows(plan):
        r[4] = f"`{r[4]}`"
        lines.append("| " + " | ".join(_md(c) for c in r) + " |")
    waves = " → ".join(", ".join(f"`{s}`" for s in w) for w in plan.waves)
    lines += ["", f"Order: {waves}" if waves else "Order: (no services)", ""]
    return "\n".join(lines)


def render(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    return render_text(plan)
