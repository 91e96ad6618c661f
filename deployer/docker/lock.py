"""A deploy lease per app and environment on a host: a container created, never started.

Creating a container by name is atomic on the engine (409 when the name exists), so
the lock container ``deployer-lock-<app>-<env>`` is the lease. Its labels name the
holder and the expiry; an expired lease is removed by its id (not its name, so a lease
someone else just took is never removed) and taken again. The container runs nothing:
its image is an empty one the deployer imports itself, so no registry is needed.

A deploy longer than the lease renews it: labels cannot change, so each renewal is a
second never-started container naming the lease (by id) and a later expiry; the lease
holds until the latest of them. A renewal is created before the previous one is removed,
so there is no moment without one; an expired lease is removed with its renewals.

Expiry is judged on the engine's clock, never on a CI runner's: each lock container
carries its time to live (``lock-ttl``), and it expires ``ttl`` after the engine created
it, compared with the engine's own time (``SystemTime`` of ``/info``). Runners whose
clocks disagree (a runner minutes ahead would see a live lease as expired and take it
while its holder still deploys) agree on the engine's. A lease written by an older
deployer (``lock-expires`` alone) is judged by its absolute time, as before.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import tarfile
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.containers import wrapped
from deployer.engine import Lease
from deployer.errors import Blocked

LOCK_IMAGE = "deployer-lock:1"
HOLDER = L.PREFIX + "lock-holder"
EXPIRES = L.PREFIX + "lock-expires"
KEY = L.PREFIX + "lock-key"
SINCE = L.PREFIX + "lock-since"
LEASE = L.PREFIX + "lock-lease"  # on a renewal: the id of the lease container it extends
TTL = L.PREFIX + "lock-ttl"  # seconds from the engine's creation of the container


def lock_name(key: str) -> str:
    return "deployer-lock-" + key.replace("/", "-")


def ensure_lock_image(client: docker.DockerClient, host: str) -> None:
    api: docker.APIClient = client.api
    with wrapped("prepare the lock image", host):
        try:
            api.inspect_image(LOCK_IMAGE)
            return
        except docker.errors.NotFound:
            pass
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w"):
            pass
        repo, tag = LOCK_IMAGE.split(":")
        api.import_image_from_data(
            buf.getvalue(),
            repository=repo,
            tag=tag,
            changes=['CMD ["/lease"]', f"LABEL {L.MANAGED}=true {L.ROLE}={L.ROLE_LOCK}"],
        )


def acquire(
    client: docker.DockerClient,
    host: str,
    key: str,
    holder: str,
    ttl: float,
    wait: float = 0.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Lease:
    """Take the lease, or raise ``Blocked`` naming the holder once ``wait`` has passed."""
    api: docker.APIClient = client.api
    ensure_lock_image(client, host)
    name = lock_name(key)
    app, _, env = key.partition("/")
    give_up = clock() + wait
    while True:
        now = clock()
        labels = {
            L.MANAGED: "true",
            L.ROLE: L.ROLE_LOCK,
            L.APP: app,
            L.ENVIRONMENT: env,
            KEY: key,
            HOLDER: holder,
            SINCE: f"{now:.3f}",
            EXPIRES: f"{now + ttl:.3f}",  # shown by `status`; expiry is judged by TTL
            TTL: f"{ttl:.3f}",
        }
        with wrapped(f"take the deploy lock {key}", host):
            try:
                created = api.create_container(
                    LOCK_IMAGE, name=name, labels=labels, network_disabled=True
                )
                return Lease(host, key, holder, now + ttl, created["Id"])
            except docker.errors.APIError as e:
                if e.status_code != 409:
                    raise
            try:
                info = api.inspect_container(name)
            except docker.errors.NotFound:
                continue  # released between our create and inspect: try again
        theirs = info["Config"].get("Labels") or {}
        with wrapped(f"read the deploy lock {key}", host):
            renewals = _renewals(api, key, info["Id"])
            engine_now = _engine_time(api)
            left = max(_left(c, engine_now, now) for c in [info, *_inspected(api, renewals)])
        if left <= 0:
            with wrapped(f"remove the expired deploy lock {key}", host):
                for c in [info, *renewals]:
                    if not _remove_raced(api, c["Id"]):
                        sleep(0.2)  # another deploy is removing it: look again
            continue
        if clock() >= give_up:
            since = float(theirs.get(SINCE) or 0)
            raise Blocked(
                f"{host}: another deploy of {key} holds the lock: {theirs.get(HOLDER, '?')} "
                f"(since {time.strftime('%H:%M:%S', time.gmtime(since))} UTC, expires in "
                f"{left:.0f}s)",
                hint="wait for it to finish, or retry with `--wait-lock 10m`; if that deploy "
                "is gone (killed, its runner lost), `deployer unlock` breaks its lock now",
            )
        sleep(min(1.0, max(give_up - clock(), 0.05)))


def renew(
    client: docker.DockerClient,
    host: str,
    lease: Lease,
    ttl: float,
    clock: Callable[[], float] = time.time,
) -> Lease:
    """Extend our lease to ``ttl`` seconds from now; raise ``Blocked`` when it is gone
    (it expired and another deploy removed it)."""
    api: docker.APIClient = client.api
    app, _, env = lease.key.partition("/")
    expires = clock() + ttl
    with wrapped(f"renew the deploy lock {lease.key}", host):
        try:
            api.inspect_container(lease.token)
        except docker.errors.NotFound:
            raise Blocked(
                f"{host}: the deploy lock {lease.key} expired and was taken away",
                hint="raise rollout.lock_ttl above the longest a deploy may take",
            ) from None
        previous = _renewals(api, lease.key, lease.token)
        api.create_container(
            LOCK_IMAGE,
            name=f"{lock_name(lease.key)}--renewed-{secrets.token_hex(4)}",
            labels={
                L.MANAGED: "true",
                L.ROLE: L.ROLE_LOCK,
                L.APP: app,
                L.ENVIRONMENT: env,
                KEY: lease.key,
                LEASE: lease.token,
                HOLDER: lease.holder,
                EXPIRES: f"{expires:.3f}",
                TTL: f"{ttl:.3f}",
            },
            network_disabled=True,
        )
        for c in previous:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(c["Id"], force=True)
    return Lease(lease.host, lease.key, lease.holder, expires, lease.token)


def release(client: docker.DockerClient, host: str, lease: Lease) -> None:
    """Give the lease back (only ours: removed by the id we created), with its renewals."""
    api: docker.APIClient = client.api
    with wrapped(f"release the deploy lock {lease.key}", host):
        for c in [{"Id": lease.token}, *_renewals(api, lease.key, lease.token)]:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(c["Id"], force=True)


def _remove_raced(api: docker.APIClient, container_id: str) -> bool:
    """Remove a lock container that another deploy may be removing at the same moment;
    False when the engine says its removal is already in progress (409). Any other error
    is raised."""
    try:
        api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError as e:
        if e.status_code == 409:
            return False
        raise
    return True


def _renewals(api: docker.APIClient, key: str, token: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.containers(
        all=True, filters={"label": [f"{KEY}={key}", f"{LEASE}={token}"]}
    )
    return found


def _inspected(api: docker.APIClient, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listed containers inspected: their creation time to the nanosecond (a listing
    gives whole seconds, which would end a lease up to a second early)."""
    out = []
    for c in listed:
        with contextlib.suppress(docker.errors.NotFound):
            out.append(api.inspect_container(c["Id"]))
    return out


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def engine_timestamp(text: str) -> float:
    """An engine's RFC 3339 time (nanoseconds, ``Z`` or an offset) as Unix seconds."""
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not a time: {text!r}")
    frac = (m.group(2) or ".0")[:7]
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{m.group(1)}{frac}{zone}").timestamp()


def _engine_time(api: docker.APIClient) -> float:
    """The engine's clock now."""
    return engine_timestamp(str(api.info()["SystemTime"]))


def _left(container: dict[str, Any], engine_now: float, now: float) -> float:
    """Seconds the lock container ``container`` (inspected, or listed) still holds: on the
    engine's clock when it carries its time to live, else (an older deployer's) by its
    absolute expiry on the runner's clock."""
    labels = (container.get("Config") or {}).get("Labels") or container.get("Labels") or {}
    created = container.get("Created")
    if isinstance(created, str):
        created = engine_timestamp(created)
    return lease_left(labels.get(TTL), created, labels.get(EXPIRES), lambda: engine_now, now)


def lease_left(
    ttl: str | None,
    written: float | None,
    expires: str | None,
    engine_now: Callable[[], float],
    now: float,
) -> float:
    """Seconds a lease still holds: ``ttl`` seconds after the engine wrote it (``written``,
    on the engine's clock, as ``engine_now``) when it carries its time to live; else (an
    older deployer's lease) until its absolute ``expires``, on the runner's clock ``now``.
    The container lock and the Swarm lock both judge by it."""
    if ttl and written is not None:
        return written + float(ttl) - engine_now()
    return float(expires or 0) - now
