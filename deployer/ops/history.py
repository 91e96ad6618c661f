"""What a container's own state still tells of its past, as events.

An engine keeps only its most recent events in memory (256 on Docker 20.10 to 27, for the
whole host): every healthcheck is three `exec_*` events, so on a host with a few checked
containers a deploy's events are gone within a minute. The state of each container the
host still has (the app's current ones and the old ones kept for rollback) keeps, however
long ago: when it was created, its last start (with how many times its restart policy
restarted it), its last exit with the exit code and an OOM kill, and its last five
healthchecks. ``merge`` adds those to the engine's events, an event both tell once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deployer.ops import Event, parse_stamped

# an event of the state and one of the engine this close in time are the same event
SAME_NS = 2_000_000_000


def stamp_ns(text: object) -> int | None:
    """The engine's time (RFC 3339 in UTC, as its inspect data writes it) as unix
    nanoseconds; None for the zero time it gives what never happened
    (``0001-01-01T00:00:00Z``)."""
    if not isinstance(text, str):
        return None
    ns = parse_stamped(text + " ")[0]
    return ns if ns > 0 else None


def state_events(
    info: Mapping[str, Any], where: str, service_label: str, replica_label: str
) -> list[Event]:
    """The events the container's inspect data still holds."""
    config = info.get("Config") or {}
    labels = config.get("Labels") or {}
    if service_label not in labels:  # the deploy lock, not a replica
        return []
    name = str(info.get("Name") or "").lstrip("/")
    service, replica = str(labels[service_label]), str(labels.get(replica_label, "?"))
    state = info.get("State") or {}
    out: list[Event] = []

    def add(at: object, action: str, detail: str = "") -> None:
        ns = stamp_ns(at)
        if ns is not None:
            out.append(Event(ns, where, service, replica, action, f"{name}{detail}"))

    add(info.get("Created"), "create")
    restarts = int(info.get("RestartCount") or 0)
    add(
        state.get("StartedAt"),
        "start",
        f" (restarted {restarts} time(s) by its restart policy)" if restarts else "",
    )
    if not state.get("Running"):
        finished = state.get("FinishedAt")
        if state.get("OOMKilled"):
            add(finished, "oom")
        code = state.get("ExitCode", "?")
        # the engine may miss an OOM kill (its event came after the exit): 137 says SIGKILL
        killed = ", killed: out of memory, or a stop past its grace period" if code == 137 else ""
        add(finished, "die", f" (exit code {code}{killed})")
    for probe in (state.get("Health") or {}).get("Log") or []:
        code = probe.get("ExitCode")
        if code not in (0, None):  # -1: the engine's, for a check that timed out or failed to run
            why = "timed out, or could not run" if code == -1 else f"exit code {code}"
            add(probe.get("End"), "health check failed", f" ({why})")
    return out


def merge(engine: Sequence[Event], state: Iterable[Event]) -> list[Event]:
    """The engine's events, and those of the state the engine no longer has (the same
    container, the same action, within ``SAME_NS``)."""
    seen: dict[tuple[str, str, str], list[int]] = {}
    for e in engine:
        seen.setdefault((e.where, _container(e.detail), e.action), []).append(e.time_ns)
    out = list(engine)
    for e in state:
        times = seen.get((e.where, _container(e.detail), e.action), [])
        if not any(abs(t - e.time_ns) <= SAME_NS for t in times):
            out.append(e)
    return out


def _container(detail: str) -> str:
    return detail.split(" ", 1)[0]


def task_events(task: Mapping[str, Any], service: str, where: str) -> list[Event]:
    """A Swarm task's history as the manager keeps it (the last tasks of each slot, on
    every node, whatever the engines' events): the task's creation, and its current
    state since when (``task running``, ``task failed``, ``task shutdown``...), with
    the node's error or the exit code."""
    status = task.get("Status") or {}
    slot = str(task.get("Slot") or "?")
    name = f"{service}.{slot}.{task.get('ID', '?')}"
    node = str(task.get("NodeID") or "")[:12]
    on = f" on node {node}" if node else ""
    out: list[Event] = []
    created = stamp_ns(task.get("CreatedAt"))
    if created is not None:
        out.append(Event(created, where, service, slot, "task created", f"{name}{on}"))
    at = stamp_ns(status.get("Timestamp"))
    state = str(status.get("State") or "")
    if at is not None and state:
        why = [str(status["Err"])] if status.get("Err") else []
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        if state in ("failed", "complete", "shutdown") and code is not None:
            why.append(f"exit code {code}")
        detail = f"{name}{on}" + (f" ({'; '.join(why)})" if why else "")
        out.append(Event(at, where, service, slot, f"task {state}", detail))
    return out
