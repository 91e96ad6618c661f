"""Health gating by polling ``inspect`` with a deadline: nothing here can hang (FACTS 4).

With a healthcheck (the image's or the manifest's), a container is healthy when Docker
says so. Without one, it is healthy once it has been running, not restarted, for
``stable`` seconds. An exit, a restart or an ``unhealthy`` verdict fails at once.

Docker runs a container's first check one ``interval`` after it starts (30 s by default);
only engines with API >= 1.44 know ``start_interval``, the faster checks while a container
starts. So while Docker still says ``starting``, the deployer runs the same check itself
(an exec of the healthcheck's test, as Docker runs it, bounded by its timeout) every
``start_interval`` (default 1 s), and takes a pass as healthy. A failed check of its own
fails nothing: Docker's verdict decides ``unhealthy``. An engine that does the start
checks itself (the container has ``StartInterval`` and ``StartPeriod``) is left to it; so
is a healthcheck whose ``interval`` is no longer than ``start_interval`` after the
deployer's first check (each check is a process started in the container).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import docker
import docker.errors

from deployer.apispec import NS
from deployer.docker.containers import logs, wrapped
from deployer.engine import COMPLETED, HealthOutcome, exited

POLL = 0.25
FIRST_POLL = 0.05  # a container that is ready at once is seen at once: 0.05, 0.1, 0.2, 0.25 s
START_INTERVAL = 1.0  # the deployer's own checks while a container starts (see above)


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
        return HealthOutcome(False, exited(state.get("ExitCode")), _health_log(state))
    if health:
        status = str(health.get("Status") or "starting")
        return HealthOutcome(status == "healthy", status, _health_log(state))
    return HealthOutcome(True, "running")


def health_now(client: docker.DockerClient, host: str, container_id: str) -> HealthOutcome:
    with wrapped(f"inspect {container_id[:12]}", host):
        return snapshot(client.api.inspect_container(container_id))


def start_check(info: dict[str, Any]) -> tuple[list[str], float, float] | None:
    """The command, timeout and Docker's interval of the check the deployer runs while the
    container starts; None without a healthcheck, or when the engine runs start checks
    itself."""
    hc = (info.get("Config") or {}).get("Healthcheck") or {}
    test = list(hc.get("Test") or [])
    if hc.get("StartInterval") and hc.get("StartPeriod"):
        return None  # API >= 1.44 keeps StartInterval only when it uses it
    if len(test) >= 2 and test[0] == "CMD":
        command = test[1:]
    elif len(test) == 2 and test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", test[1]]
    else:
        return None  # none, NONE, or a shape Docker would not run either
    return command, (hc.get("Timeout") or 30 * NS) / NS, (hc.get("Interval") or 30 * NS) / NS


def run_check(
    api: docker.APIClient,
    container_id: str,
    command: list[str],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Run ``command`` once in the container as Docker runs a healthcheck (an exec, as the
    container's user, with its environment); True when it exits 0 within ``timeout``."""
    ex = api.exec_create(container_id, command, stdout=False, stderr=False)
    api.exec_start(ex["Id"], detach=True)
    end = clock() + timeout
    while True:
        info = api.exec_inspect(ex["Id"])
        if not info.get("Running") and info.get("ExitCode") is not None:
            return bool(info["ExitCode"] == 0)
        if clock() >= end:
            return False  # left to finish on its own: the API cannot kill an exec
        sleep(0.05)


def wait_healthy(
    client: docker.DockerClient,
    host: str,
    container_id: str,
    timeout: float,
    stable: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    start_interval: float | None = None,
) -> HealthOutcome:
    """Poll until healthy, failed, or ``timeout`` seconds passed."""
    api: docker.APIClient = client.api
    start = clock()
    deadline = start + timeout
    every = start_interval or START_INTERVAL
    check: tuple[list[str], float, float] | None = None
    next_check = start
    first_started: str | None = None
    first_restarts: int | None = None
    running_since: float | None = None
    poll = FIRST_POLL
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
            check = start_check(info)
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
            if check is not None and now >= next_check:
                try:
                    passed = run_check(
                        api,
                        container_id,
                        check[0],
                        min(check[1], max(deadline - now, 0.1)),
                        clock,
                        sleep,
                    )
                except (docker.errors.DockerException, OSError):
                    passed, check = False, None  # exec refused (stopped, no shell): Docker decides
                if passed:
                    detail = "its healthcheck passed (run by the deployer while it started)"
                    return HealthOutcome(True, "healthy", detail, clock() - start)
                next_check = clock() + every
                if check is not None and check[2] <= every:
                    check = None  # Docker checks as often from now on: no second process
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
        pause = min(poll, max(deadline - now, 0.01))
        poll = min(poll * 2, POLL)
        if check is not None and state.get("Health"):
            pause = min(pause, max(next_check - now, 0.01))
        sleep(pause)


def wait_completed(
    client: docker.DockerClient,
    host: str,
    container_id: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> HealthOutcome:
    """A container that runs once (a migration, an init job): poll until it exits, 0 being
    its success, any other code or ``timeout`` seconds a failure. Restarts its restart
    policy makes (``on-failure``) are waited through: only how it ends counts."""
    api: docker.APIClient = client.api
    start = clock()
    poll = FIRST_POLL
    while True:
        with wrapped(f"inspect {container_id[:12]}", host):
            state = api.inspect_container(container_id)["State"]
        elapsed = clock() - start
        if not state.get("Running") and not state.get("Restarting"):
            code = state.get("ExitCode")
            if code == 0:
                return HealthOutcome(True, COMPLETED, "", elapsed)
            return _failed(client, host, container_id, exited(code), "", elapsed)
        if elapsed >= timeout:
            status = f"timeout (still running after {timeout:g}s)"
            return _failed(client, host, container_id, status, "", elapsed)
        sleep(min(poll, max(timeout - elapsed, 0.01)))
        poll = min(poll * 2, POLL)


def _failed(
    client: docker.DockerClient, host: str, cid: str, status: str, health: str, elapsed: float
) -> HealthOutcome:
    tail = logs(client, host, cid, 20).strip()
    detail = "\n".join(p for p in (health, "last log lines:\n" + tail if tail else "") if p)
    return HealthOutcome(False, status, detail, elapsed)


def watch(
    client: docker.DockerClient,
    host: str,
    container_ids: Sequence[str],
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    exit_ok: bool = False,
) -> tuple[str, HealthOutcome] | None:
    """Watch switched containers for ``seconds``: the first (id, outcome) that exits,
    restarts, is ``unhealthy``, or fails ``retries`` healthchecks in a row (read from the
    health log, so a flapping check is seen even between two polls); None when all held.
    With ``exit_ok`` (a service that may exit), one that exited 0 is done, not failed.
    """
    api: docker.APIClient = client.api
    deadline = clock() + seconds
    container_ids = list(container_ids)
    first: dict[str, tuple[int, str | None]] = {}
    seen: dict[str, set[str]] = {}
    streak: dict[str, int] = {}
    while True:
        for cid in list(container_ids):
            with wrapped(f"inspect {cid[:12]}", host):
                info = api.inspect_container(cid)
            state = info["State"]
            restarts = int(info.get("RestartCount") or 0)
            entries = sorted(
                (state.get("Health") or {}).get("Log") or [], key=lambda e: str(e.get("Start"))
            )
            if cid not in first:
                first[cid] = (restarts, state.get("StartedAt"))
                seen[cid] = {str(e.get("Start")) for e in entries}
                streak[cid] = 0
            look = snapshot(info)
            elapsed = seconds - max(deadline - clock(), 0.0)
            if exit_ok and look.status == exited(0):
                container_ids.remove(cid)  # done: a run that ended as it should
                continue
            if (restarts, state.get("StartedAt")) != first[cid] or look.status == "restarting":
                return cid, _failed(client, host, cid, "restarted", look.detail, elapsed)
            if look.status.startswith("exited") or look.status == "unhealthy":
                return cid, _failed(client, host, cid, look.status, look.detail, elapsed)
            retries = int(((info.get("Config") or {}).get("Healthcheck") or {}).get("Retries") or 3)
            for e in entries:
                start = str(e.get("Start"))
                if start in seen[cid]:
                    continue
                seen[cid].add(start)
                streak[cid] = streak[cid] + 1 if e.get("ExitCode") != 0 else 0
                if streak[cid] >= retries:
                    status = f"unhealthy ({streak[cid]} failed healthcheck(s) in a row)"
                    return cid, _failed(client, host, cid, status, look.detail, elapsed)
        now = clock()
        if now >= deadline or not container_ids:
            return None
        sleep(min(POLL, deadline - now))
