"""A plan against a recorded state instead of the hosts: what a manifest would change
compared with the ``state`` section of an earlier deploy's report.

Pure data and text, like ``deployer/plan.py``: no Docker, no GitLab. Images are
compared as written in the manifest (a merge request pipeline has no host to resolve
digests with), configuration by the per-key hashes the report recorded (key names are
printed, never values), replicas by count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.manifest.model import SEALED, Manifest, differing_parts, sealed_part


@dataclass(frozen=True)
class Baseline:
    """Where the recorded state comes from (for the headline)."""

    environment: str
    deployment_id: int | None = None
    job_id: int | None = None
    commit: str = ""
    release: str | None = None
    finished_at: str = ""


@dataclass(frozen=True)
class Change:
    service: str
    action: str  # create, remove, replace, scale, unchanged
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselinePlan:
    app: str
    environment: str
    baseline: Baseline
    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> int:
        return sum(1 for c in self.changes if c.action != "unchanged")


class NotAState(ValueError):
    """The report holds no usable state section (the message says why)."""


def recorded_services(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The state section's services, checked for shape; raises ``NotAState``."""
    state = report.get("state")
    if not isinstance(state, dict) or not isinstance(state.get("services"), dict):
        raise NotAState("it has no state section (written by an older deployer?)")
    out: dict[str, dict[str, Any]] = {}
    for name, svc in state["services"].items():
        if not isinstance(svc, dict) or not isinstance(svc.get("config_parts"), dict):
            raise NotAState(f"its state of service {name!r} is incomplete")
        out[str(name)] = svc
    return out


def compare(manifest: Manifest, report: Mapping[str, Any], baseline: Baseline) -> BaselinePlan:
    """The manifest's services against the recorded ones; raises ``NotAState``."""
    recorded = recorded_services(report)
    changes: list[Change] = []
    for svc in manifest.services:
        have = recorded.get(svc.name)
        if have is None:
            changes.append(Change(svc.name, "create", ("new service",)))
            continue
        reasons: list[str] = []
        if svc.image != have.get("image"):
            reasons.append(f"image {have.get('image')} → {svc.image}")
        had = have["config_parts"]
        want = svc.config_parts()
        for key, part in had.items():  # sealed as the deploy's report sealed them
            if isinstance(part, str) and part.startswith(SEALED) and key in want:
                where = (manifest.app, manifest.environment.name, svc.name, str(key))
                want[key] = sealed_part(want[key], where)
        keys = differing_parts(want, had)
        if keys:
            reasons.append("changed: " + ", ".join(keys))
        if reasons:
            changes.append(Change(svc.name, "replace", tuple(reasons)))
        elif svc.replicas != have.get("replicas"):
            changes.append(
                Change(svc.name, "scale", (f"replicas {have.get('replicas')} → {svc.replicas}",))
            )
        else:
            changes.append(Change(svc.name, "unchanged"))
    for name in sorted(set(recorded) - set(manifest.service_names)):
        changes.append(Change(name, "remove", ("not in the manifest",)))
    return BaselinePlan(manifest.app, manifest.environment.name, baseline, tuple(changes))


def headline(plan: BaselinePlan) -> str:
    b = plan.baseline
    parts = []
    if b.deployment_id is not None:
        parts.append(f"deployment #{b.deployment_id}")
    if b.job_id is not None:
        parts.append(f"job {b.job_id}")
    if b.commit:
        parts.append(f"commit {b.commit[:8]}")
    if b.release:
        parts.append(f"release {b.release}")
    where = f" ({', '.join(parts)})" if parts else ""
    return (
        f"Plan: {plan.app} → {plan.environment}, against the last deployment{where}, "
        "not the hosts' live state"
    )


def render_text(plan: BaselinePlan) -> str:
    lines = [headline(plan)]
    width = max((len(c.service) for c in plan.changes), default=7)
    for c in plan.changes:
        why = f"  {'; '.join(c.reasons)}" if c.reasons else ""
        lines.append(f"  {c.service:<{width}}  {c.action:<9}{why}".rstrip())
    lines.append(
        f"{plan.changed} service(s) would change. Images are compared as written (tags are "
        "not resolved here); the deploy job plans against the hosts themselves."
    )
    return "\n".join(lines) + "\n"


def render_markdown(plan: BaselinePlan) -> str:
    lines = [f"**{headline(plan)}**", "", "| service | action | why |", "|---|---|---|"]
    for c in plan.changes:
        why = "; ".join(c.reasons).replace("|", "\\|")
        lines.append(f"| {c.service} | {c.action} | {why} |")
    lines += ["", f"{plan.changed} service(s) would change."]
    return "\n".join(lines) + "\n"


def as_dict(plan: BaselinePlan) -> dict[str, Any]:
    return {
        "against": "last-deployment",
        "app": plan.app,
        "environment": plan.environment,
        "baseline": plan.baseline.__dict__,
        "changes": plan.changed,
        "services": [
            {"service": c.service, "action": c.action, "reasons": list(c.reasons)}
            for c in plan.changes
        ],
    }
