"""What Swarm runs for an app, as the plan's ``Observed`` and as status rows.

Pure: works on the Engine API's JSON (``GET /services``, ``GET /tasks``), so the mapping
is unit tested without an engine.

One ``ObservedContainer`` per replica slot of a service (``Mode.Replicated.Replicas``),
all carrying the service's spec (image digest, config hash): the plan then says
create / replace (new digest, config keys) / scale (``2 → 3``) / unchanged / remove for
a Swarm service exactly as it does for containers. A slot is "running" when a task of the
service's current spec runs in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployer import labels as L
from deployer.errors import InvalidInput
from deployer.plan import Observed, ObservedContainer
from deployer.swarm.spec import STACK_NAMESPACE, pinned

FAILED_UPDATE_STATES = frozenset({"rollback_completed", "rollback_paused", "paused"})


def _labels(service: Mapping[str, Any]) -> dict[str, str]:
    return dict(service.get("Spec", {}).get("Labels") or {})


def service_of(service: Mapping[str, Any], app: str) -> str:
    """The manifest's service name of a Swarm service (``<app>_<name>`` or its label)."""
    labels = _labels(service)
    if labels.get(L.SERVICE):
        return labels[L.SERVICE]
    name: str = service["Spec"]["Name"]
    prefix = f"{app}_"
    return name[len(prefix) :] if name.startswith(prefix) else name


def image_of(service: Mapping[str, Any]) -> str:
    image: str = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    return image


def digest_of(service: Mapping[str, Any]) -> str | None:
    """``repo@sha256:...`` the service runs (``sha256:<id>`` for a local image), or None
    when its image is not pinned."""
    image = image_of(service)
    labelled = _labels(service).get(L.DIGEST)
    if image.startswith("sha256:"):
        return image  # a local image ID (pull_policy: never)
    if "@" not in image:
        return None
    if labelled and labelled.partition("@")[2] == image.partition("@")[2]:
        return labelled  # exactly as the deploy resolved it
    return pinned(image)


def replicas_of(service: Mapping[str, Any]) -> int:
    mode = service["Spec"].get("Mode") or {}
    if "Replicated" in mode:
        return int(mode["Replicated"].get("Replicas", 1))
    if "Global" in mode:
        return 1  # one slot in the plan: Swarm runs a task on every eligible node
    return 0  # jobs are not planned per replica


def is_current(task: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    """Whether a task runs the service's current spec (image and forced-update counter)."""
    want = service["Spec"]["TaskTemplate"]
    have = task.get("Spec") or {}
    return bool(
        have.get("ContainerSpec", {}).get("Image") == want["ContainerSpec"]["Image"]
        and have.get("ForceUpdate", 0) == want.get("ForceUpdate", 0)
    )


def running_slots(service: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]) -> set[int]:
    """Slots with a task of the current spec that runs and should run."""
    out: set[int] = set()
    for t in tasks:
        if t.get("ServiceID") != service["ID"]:
            continue
        if t.get("DesiredState") != "running" or t.get("Status", {}).get("State") != "running":
            continue
        if is_current(t, service):
            out.add(int(t.get("Slot") or 0))
    if "Global" in (service["Spec"].get("Mode") or {}):
        return {1} if out else set()  # global tasks have no slot: the plan's one slot
    return out


def check_environment(service: Mapping[str, Any], app: str, environment: str, host: str) -> None:
    """One stack namespace holds one environment of an app: refuse to take over another's."""
    theirs = _labels(service).get(L.ENVIRONMENT)
    if theirs and theirs != environment:
        raise InvalidInput(
            f"Swarm service {service['Spec']['Name']} on {host} belongs to environment "
            f"{theirs!r} of app {app!r}, not {environment!r}: one swarm holds one "
            f"environment of an app (stack namespace {app!r})",
            hint="deploy each environment to its own swarm, or give the app another name",
        )


def observed(
    host: str,
    app: str,
    environment: str,
    services: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
) -> Observed:
    containers: list[ObservedContainer] = []
    for svc in services:
        labels = _labels(svc)
        if labels.get(STACK_NAMESPACE) != app and labels.get(L.APP) != app:
            continue
        mode = svc["Spec"].get("Mode") or {}
        if labels.get(L.ROLE) == L.ROLE_TASK or not ("Replicated" in mode or "Global" in mode):
            continue  # one-off jobs are not part of the plan
        check_environment(svc, app, environment, host)
        name = service_of(svc, app)
        parts: dict[str, str] | None = None
        if labels.get(L.CONFIG_PARTS) is not None:
            try:
                parts = dict(json.loads(labels[L.CONFIG_PARTS]))
            except (ValueError, TypeError):
                parts = None
        running = running_slots(svc, tasks)
        adopted = None if labels.get(L.MANAGED) == "true" else "stack"
        for slot in range(1, replicas_of(svc) + 1):
            containers.append(
                ObservedContainer(
                    id=f"{svc['ID']}.{slot}",
                    name=f"{svc['Spec']['Name']}.{slot}",
                    service=name,
                    replica=slot,
                    running=slot in running,
                    image_digest=digest_of(svc),
                    config_hash=labels.get(L.CONFIG_HASH),
                    config_parts=parts,
                    release=labels.get(L.RELEASE),
                    health="none",
                    adopted_from=adopted,
                    created=str(svc.get("CreatedAt", "")),
                    project=labels.get(L.PROJECT, ""),
                )
            )
    return Observed(host=host, containers=tuple(containers))


@dataclass(frozen=True)
class ServiceStatus:
    """One Swarm service of the app, for ``deployer status``."""

    service: str
    swarm_name: str
    digest: str | None
    running: int
    desired: int
    update_state: str  # "completed", "updating", "rollback_completed", ... or "" (never updated)
    update_message: str
    release: str | None
    commit: str | None
    deployed_by: str | None
    deployed_at: str | None

    @property
    def healthy(self) -> bool:
        return self.running >= self.desired and self.update_state not in FAILED_UPDATE_STATES

    def as_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "swarm_service": self.swarm_name,
            "digest": self.digest,
            "running": self.running,
            "desired": self.desired,
            "update_state": self.update_state,
            "update_message": self.update_message,
            "release": self.release,
            "commit": self.commit,
            "deployed_by": self.deployed_by,
            "deployed_at": self.deployed_at,
            "healthy": self.healthy,
        }


def status_rows(
    app: str, services: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]]
) -> list[ServiceStatus]:
    rows = []
    for svc in services:
        labels = _labels(svc)
        if labels.get(STACK_NAMESPACE) != app and labels.get(L.APP) != app:
            continue
        if labels.get(L.ROLE) == L.ROLE_TASK:
            continue
        us = svc.get("UpdateStatus") or {}
        rows.append(
            ServiceStatus(
                service=service_of(svc, app),
                swarm_name=svc["Spec"]["Name"],
                digest=digest_of(svc),
                running=len(running_slots(svc, tasks)),
                desired=replicas_of(svc),
                update_state=str(us.get("State", "")),
                update_message=str(us.get("Message", "")),
                release=labels.get(L.RELEASE),
                commit=labels.get(L.COMMIT),
                deployed_by=labels.get(L.USER),
                deployed_at=labels.get(L.TIME),
            )
        )
    return sorted(rows, key=lambda r: r.service)


def render_status(host: str, app: str, environment: str, rows: Sequence[ServiceStatus]) -> str:
    """A plain table for the job log."""
    lines = [f"{app} / {environment} on Swarm manager {host}"]
    if not rows:
        lines.append("  no services deployed")
        return "\n".join(lines) + "\n"
    header = ("SERVICE", "REPLICAS", "UPDATE", "RELEASE", "IMAGE")
    table = [header] + [
        (
            r.service,
            f"{r.running}/{r.desired}",
            r.update_state or "-",
            r.release or "-",
            r.digest or "(not pinned)",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  " + "  ".join([*cells, row[-1]]).rstrip())
    for r in rows:
        if r.update_state in FAILED_UPDATE_STATES and r.update_message:
            lines.append(f"  {r.service}: {r.update_state}: {r.update_message}")
    return "\n".join(lines) + "\n"
