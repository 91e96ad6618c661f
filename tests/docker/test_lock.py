"""The deploy lease on a real engine (deployer/docker/lock.py): renewal keeps a long
deploy's lock, an expired lease goes with its renewals, a lost lease is said."""

from __future__ import annotations

import time

import docker
import pytest

from deployer.docker import lock
from deployer.docker.host import DockerHost
from deployer.errors import Blocked

pytestmark = pytest.mark.integration


def lock_containers(engine: docker.DockerClient, key: str) -> list[str]:
    found = engine.api.containers(all=True, filters={"label": [f"{lock.KEY}={key}"]})
    return sorted(c["Names"][0].lstrip("/") for c in found)


def test_a_renewed_lease_outlives_its_first_expiry_and_goes_whole_on_release(
    app: str, h1: DockerHost, engine: docker.DockerClient
) -> None:
    key = f"{app}/test"
    lease = h1.acquire_lock(key, "long deploy", ttl=1)
    lease = h1.renew_lock(lease, 60)
    lease = h1.renew_lock(lease, 60)  # the previous renewal is replaced, not piled up
    assert lease.expires_at > time.time() + 50
    held, renewal = lock_containers(engine, key)
    assert held == lock.lock_name(key) and renewal.startswith(held + "--renewed-")
    time.sleep(1.2)  # past the lease's own expiry: the renewal holds it
    with pytest.raises(Blocked, match="long deploy"):
        h1.acquire_lock(key, "second deploy", ttl=60)
    h1.release_lock(lease)
    assert lock_containers(engine, key) == []


def test_an_expired_renewal_frees_the_lock_and_a_lost_lease_is_said(
    app: str, h1: DockerHost, engine: docker.DockerClient
) -> None:
    key = f"{app}/test"
    stale = h1.renew_lock(h1.acquire_lock(key, "killed deploy", ttl=1), 1)
    time.sleep(1.2)
    second = h1.acquire_lock(key, "next deploy", ttl=60)
    assert lock_containers(engine, key) == [lock.lock_name(key)]  # the old renewal went too
    with pytest.raises(Blocked, match="taken away") as e:
        h1.renew_lock(stale, 60)
    assert e.value.exit_code == 4
    h1.release_lock(second)
    assert lock_containers(engine, key) == []
