"""Waiting for Swarm: poll a service until its update ended (``completed``, or one of the
failed states), its replicas run the current spec, or a deadline passed; and why it
failed, from Swarm's messages and the tasks they name."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors
import requests.exceptions

from deployer.swarm import observe as obs
from deployer.swarm.api import POLL, SwarmApi

# A rolling update starts within milliseconds of the spec change; when none started after
# this long, the change did not touch the tasks (labels only) and tasks are checked instead.
NO_UPDATE_GRACE = 3.0
_TASK_ID = re.compile(r"\btask ([a-z0-9]{25})\b")
REJECTED_LIMIT = 3  # tasks of the current spec rejected this often: give up early


@dataclass(frozen=True)
class Verdict:
    ok: bool
    state: str  # Swarm's UpdateStatus.State, "converged", or "timeout"
    detail: str = ""
    seconds: float = 0.0


def wait_converged(
    sw: SwarmApi, service_id: str, *, rolling: bool, since: str | None, deadline: float
) -> Verdict:
    """Poll until Swarm finished with the service: an update's final state, or every
    replica running the current spec. Never longer than ``deadline`` seconds."""
    start = sw.clock()
    seen: list[str] = []  # Swarm's update messages, in order (the failure's reason)
    while True:
        elapsed = sw.clock() - start
        svc = sw.inspect(service_id)
        us = svc.get("UpdateStatus") or {}
        new_update = bool(us) and us.get("StartedAt") != since
        state = str(us.get("State", "")) if new_update else ""
        message = str(us.get("Message", "")) if new_update else ""
        if message and message not in seen:
            seen.append(message)
        if state in obs.FAILED_UPDATE_STATES:
            return Verdict(False, state, why_failed(sw, svc, seen), elapsed)
        tasks = sw.tasks_of([service_id])
        running = len(obs.running_slots(svc, tasks))
        converged = running >= obs.replicas_of(svc)
        if converged and (
            state == "completed" or (not new_update and (not rolling or elapsed >= NO_UPDATE_GRACE))
        ):
            return Verdict(True, state or "converged", "", elapsed)
        if not rolling and not new_update and not converged:
            # A create or scale has no update to fail: tasks Swarm keeps rejecting
            # (an image it cannot pull, a mount it cannot make) will not get better.
            history = sw.tasks_of([service_id], running=False)
            rejected = [
                t
                for t in history
                if t.get("Status", {}).get("State") == "rejected" and obs.is_current(t, svc)
            ]
            if len(rejected) >= REJECTED_LIMIT:
                return Verdict(False, "rejected", why_failed(sw, svc, seen), elapsed)
        if elapsed >= deadline:
            why = why_failed(sw, svc, seen)
            return Verdict(
                False,
                "timeout",
                f"not converged after {deadline:.0f} s (update state {state or 'none'}, "
                f"{running}/{obs.replicas_of(svc)} running)" + (f": {why}" if why else ""),
                elapsed,
            )
        sw.sleep(POLL)


def why_failed(sw: SwarmApi, svc: Mapping[str, Any], messages: Sequence[str]) -> str:
    """Swarm's update messages and the errors of the tasks they name (or of the
    service's latest failed tasks)."""
    parts = list(messages)
    named = {m.group(1) for msg in messages for m in _TASK_ID.finditer(msg)}
    tasks: list[dict[str, Any]] = []
    for task_id in sorted(named):
        with contextlib.suppress(docker.errors.APIError):
            tasks.append(sw.api.inspect_task(task_id))
    if not tasks:
        tasks = [
            t
            for t in sw.tasks_of([svc["ID"]], running=False)
            if t.get("Status", {}).get("State") in ("failed", "rejected")
        ]
        tasks.sort(key=lambda t: str(t.get("UpdatedAt", "")), reverse=True)
    for t in tasks[:3]:
        st = t.get("Status", {})
        code = (st.get("ContainerStatus") or {}).get("ExitCode")
        err = st.get("Err") or st.get("Message") or st.get("State")
        health = container_health(sw, (st.get("ContainerStatus") or {}).get("ContainerID"))
        parts.append(
            f"task {svc['Spec']['Name']}.{t.get('Slot', '?')} ({str(t['ID'])[:12]}): "
            f"{st.get('State')}: {err}"
            + (f" (exit {code})" if code else "")
            + (f"; {health}" if health else "")
        )
    return "; ".join(parts)


def container_health(sw: SwarmApi, container_id: str | None) -> str:
    """The health of a task's container when it is on this node: why Swarm killed it."""
    if not container_id:
        return ""
    try:
        state = sw.api.inspect_container(container_id).get("State") or {}
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return ""
    health = state.get("Health") or {}
    if not health:
        return ""
    log = health.get("Log") or []
    last = str(log[-1].get("Output", "")).strip()[:200] if log else ""
    out = f"container health: {health.get('Status')}"
    if log:
        out += f" (last check exit {log[-1].get('ExitCode')}" + (f": {last})" if last else ")")
    return out


# -- comparing specs ------------------------------------------------------------------


def same_tasks(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two specs give the same tasks (so Swarm would start no rolling update)."""
    ta, tb = a.get("TaskTemplate") or {}, b.get("TaskTemplate") or {}
    ca, cb = ta.get("ContainerSpec") or {}, tb.get("ContainerSpec") or {}
    keys = ("Image", "Env", "Args", "Command", "Healthcheck", "Mounts", "User", "Labels")
    return bool(
        all(_norm(ca.get(k)) == _norm(cb.get(k)) for k in keys)
        and ta.get("ForceUpdate", 0) == tb.get("ForceUpdate", 0)
        and _norm((a.get("EndpointSpec") or {}).get("Ports"))
        == _norm((b.get("EndpointSpec") or {}).get("Ports"))
    )


def same_spec(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(
        same_tasks(a, b)
        and _norm(a.get("Labels")) == _norm(b.get("Labels"))
        and _norm(a.get("Mode")) == _norm(b.get("Mode"))
    )


def _norm(value: object) -> str:
    return json.dumps(value or None, sort_keys=True)
