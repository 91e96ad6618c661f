"""A deploy lease per app and environment on a host: a container created, never started.

Creating a container by name is atomic on the engine (409 when the name exists), so
the lock container ``deployer-lock-<app>-<env>`` is the lease. Its labels name the
holder and the expiry; an expired lease is removed by its id (not its name, so a lease
someone else just took is never removed) and taken again. The container runs nothing:
its image is an empty one the deployer imports itself, so no registry is needed.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
from collections.abc import Callable

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
        expires = float(theirs.get(EXPIRES) or 0)
        if expires <= now:
            with (
                wrapped(f"remove the expired deploy lock {key}", host),
                contextlib.suppress(docker.errors.NotFound),
            ):
                api.remove_container(info["Id"], force=True)
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


def release(client: docker.DockerClient, host: str, lease: Lease) -> None:
    """Give the lease back (only ours: removed by the id we created)."""
    with wrapped(f"release the deploy lock {lease.key}", host):
        try:
            client.api.remove_container(lease.token, force=True)
        except docker.errors.NotFound:
            return
