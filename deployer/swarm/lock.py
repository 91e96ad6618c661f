"""The deploy lock of a Swarm environment: a Swarm config named
``<app>_<environment>_deploy-lock`` (creating one is atomic across the swarm), its time to
live in a label. It expires that long after the manager last wrote it (``UpdatedAt``,
which renewing moves), judged on the manager's clock (``SystemTime``), never on a CI
runner's: a runner minutes ahead would see a live lease as expired and take it while its
holder still deploys. A lock written by an older deployer (``lock-expires-at`` alone) is
judged by its absolute time, as before."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors

from deployer import labels as L
from deployer.docker.lock import engine_timestamp, lease_left
from deployer.errors import Blocked
from deployer.manifest.model import host_form
from deployer.swarm.api import SwarmApi

LOCK_SUFFIX = "deploy-lock"
LOCK_HOLDER = L.PREFIX + "lock-holder"
LOCK_EXPIRES = L.PREFIX + "lock-expires-at"  # shown by status; expiry is judged by TTL
LOCK_TTL = L.PREFIX + "lock-ttl"  # seconds after the manager last wrote the config


@dataclass(frozen=True)
class SwarmLease:
    name: str
    config_id: str
    holder: str
    expires_at: float


def lock_name(sw: SwarmApi) -> str:
    return f"{sw.manifest.app}_{host_form(sw.manifest.environment.name)}_{LOCK_SUFFIX}"


def acquire_lock(
    sw: SwarmApi,
    holder: str,
    ttl: float,
    wait: float = 0.0,
    clock: Callable[[], float] | None = None,
) -> SwarmLease:
    """Take the app's deploy lock on the swarm, waiting up to ``wait`` seconds (``clock``:
    this runner's time, written for people to read)."""
    runner = clock or time.time
    name = lock_name(sw)
    give_up = time.monotonic() + wait
    while True:
        expires = runner() + ttl
        labels = {
            L.MANAGED: "true",
            L.ROLE: L.ROLE_LOCK,
            L.APP: sw.manifest.app,
            L.ENVIRONMENT: sw.manifest.environment.name,
            LOCK_HOLDER: holder,
            LOCK_EXPIRES: f"{expires:.0f}",
            LOCK_TTL: f"{ttl:.3f}",
        }
        try:
            created = sw.api.create_config(name, holder.encode(), labels=labels)
            return SwarmLease(name, created["ID"], holder, expires)
        except docker.errors.APIError as e:
            if e.status_code != 409:
                with sw.wrapped("taking the deploy lock"):
                    raise
        with sw.wrapped("reading the deploy lock"):
            found = sw.api.configs(filters={"name": name})
        current = next((c for c in found if c["Spec"]["Name"] == name), None)
        if current is None:
            continue  # released meanwhile
        cur_labels = current["Spec"].get("Labels") or {}
        their_expiry = float(cur_labels.get(LOCK_EXPIRES, "0") or 0)
        with sw.wrapped("reading the deploy lock"):
            left = _left(sw, current, runner)
        if left < 0:
            with (
                sw.wrapped("removing an expired deploy lock"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                sw.api.remove_config(current["ID"])
            continue
        if time.monotonic() >= give_up:
            until = time.strftime("%H:%M:%S UTC", time.gmtime(their_expiry))
            raise Blocked(
                f"another deploy of {sw.manifest.app}/{sw.manifest.environment.name} "
                f"holds the Swarm lock on {sw.name}: "
                f"{cur_labels.get(LOCK_HOLDER, 'unknown')}",
                hint=f"wait for it (--wait-lock 10m); if it died, the lock expires at {until}, "
                "or `deployer unlock` breaks it now",
            )
        sw.sleep(min(2.0, max(0.1, give_up - time.monotonic())))


def _left(sw: SwarmApi, config: dict[str, Any], clock: Callable[[], float]) -> float:
    """Seconds the lock ``config`` still holds: on the manager's clock when it carries its
    time to live, else (an older deployer's) by its absolute expiry on this runner's."""
    labels = config["Spec"].get("Labels") or {}
    updated = config.get("UpdatedAt") or config.get("CreatedAt")
    return lease_left(
        labels.get(LOCK_TTL),
        engine_timestamp(str(updated)) if updated else None,
        labels.get(LOCK_EXPIRES),
        lambda: engine_timestamp(str(sw.api.info()["SystemTime"])),
        clock(),
    )


def renew_lock(sw: SwarmApi, lease: SwarmLease, ttl: float) -> SwarmLease:
    """Push the lease's expiry to ``ttl`` seconds from now: a Swarm config's labels are
    the one thing an update may change (at its version, so no write is lost)."""
    expires = time.time() + ttl
    with sw.wrapped("renewing the deploy lock"):
        try:
            info = sw.api.inspect_config(lease.config_id)
        except docker.errors.NotFound:
            info = None
        if info is not None:
            spec = dict(info["Spec"])
            spec["Labels"] = {
                **(spec.get("Labels") or {}),
                LOCK_EXPIRES: f"{expires:.0f}",
                LOCK_TTL: f"{ttl:.3f}",
            }
            sw.api.update_config(lease.config_id, info["Version"]["Index"], spec)
    if info is None:
        raise Blocked(
            f"the Swarm lock {lease.name} on {sw.name} expired and was taken away",
            hint="raise rollout.lock_ttl above the longest a deploy may take",
        )
    return SwarmLease(lease.name, lease.config_id, lease.holder, expires)


def release_lock(sw: SwarmApi, lease: SwarmLease) -> None:
    with (
        sw.wrapped("releasing the deploy lock"),
        contextlib.suppress(docker.errors.NotFound),
    ):
        sw.api.remove_config(lease.config_id)
