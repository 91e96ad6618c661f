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
"""

from __future__ import annotations

import contextlib
import io
import secrets
import tarfile
import time
from collections.abc import Callable
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
            EXPIRES: f"{now + ttl:.3f}",
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
        expires = max([float(theirs.get(EXPIRES) or 0)] + [_expiry(r) for r in renewals])
        if expires <= now:
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
                f"{expires - now:.0f}s)",
                hint="wait for it to finish, or retry with `--wait-lock 10m`",
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


def _expiry(container: dict[str, Any]) -> float:
    return float((container.get("Labels") or {}).get(EXPIRES) or 0)
