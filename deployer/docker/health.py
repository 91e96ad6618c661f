"""Health gating by polling ``inspect`` with a deadline: nothing here can hang (FACTS 4).

With a healthcheck (the image's or the manifest's), a container is healthy when Docker
says so. Without one, it is healthy once it has been running, not restarted, for
``stable`` seconds. An exit, a restart or an ``unhealthy`` verdict fails at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker

from deployer.docker.containers import logs, wrapped
from deployer.engine import HealthOutcome

POLL = 0.25


def _health_log(state: dict[str, Any], last: int = 3) -> str:
    entries = ((state.get("Health") or {}).get("Log") or [])[-last:]
    lines = []
    for e in entries:
        out = (e.get("Output") or "").strip().replace("\n", " | ")
        lines.append(f"healthcheck exit {e.get('ExitCode')}: {out[:300]}")
    return "\n".join(lines)


def snapshot(info: dict[str, Any]) -> HealthOutcome:
    """One look at an inspected container."""
    state = info["State"]
    health = state.get("Health")
    if state.get("Restarting"):
        return HealthOutcome(False, "restarting", _health_log(state))
    if not state.get("Running"):
        return HealthOutcome(False, f"exited (code {state.get('ExitCode')})", _health_log(state))
    if health:
        status = str(health.get("Status") or "starting")
        return HealthOutcome(status == "healthy", status, _health_log(state))
    return HealthOutcome(True, "running")


def health_now(client: docker.DockerClient, host: str, container_id: str) -> HealthOutcome:
    with wrapped(f"inspect {container_id[:12]}", host):
        return snapshot(client.api.inspect_container(container_id))


def wait_healthy(
    client: docker.DockerClient,
    host: str,
    container_id: str,
    timeout: float,
    stable: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> HealthOutcome:
    """Poll until healthy, failed, or ``timeout`` seconds passed."""
    api: docker.APIClient = client.api
    start = clock()
    deadline = start + timeout
    first_started: str | None = None
    first_restarts: int | None = None
    running_since: float | None = None
    while True:
        with wrapped(f"inspect {container_id[:12]}", host):
            info = api.inspect_container(container_id)
        state = info["State"]
        now = clock()
        elapsed = now - start
        restarts = int(info.get("RestartCount") or 0)
        if first_restarts is None:
            first_restarts = restarts
            first_started = state.get("StartedAt")
        look = snapshot(info)
        restarted = restarts != first_restarts or state.get("StartedAt") != first_started
        if restarted or look.status == "restarting":
            return _failed(client, host, container_id, "restarting", look.detail, elapsed)
        if look.status.startswith("exited"):
            return _failed(client, host, container_id, look.status, look.detail, elapsed)
        if state.get("Health"):
            if look.status == "healthy":
                return HealthOutcome(True, "healthy", look.detail, elapsed)
            if look.status == "unhealthy":
                return _failed(client, host, container_id, "unhealthy", look.detail, elapsed)
        else:
            running_since = running_since if running_since is not None else now
            if now - running_since >= stable:
                return HealthOutcome(True, f"running for {stable:g}s", "", elapsed)
        if now >= deadline:
            return _failed(
                client,
                host,
                container_id,
                f"timeout ({look.status} after {timeout:g}s)",
                look.detail,
                elapsed,
            )
        sleep(min(POLL, max(deadline - now, 0.01)))


def _failed(
    client: docker.DockerClient, host: str, cid: str, status: str, health: str, elapsed: float
) -> HealthOutcome:
    tail = logs(client, host, cid, 20).strip()
    detail = "\n".join(p for p in (health, "last log lines:\n" + tail if tail else "") if p)
    return HealthOutcome(False, status, detail, elapsed)
