"""The deploy lease on a real engine (deployer/docker/lock.py): renewal keeps a long
deploy's lock, an expired lease goes with its renewals, a lost lease is said."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from deployer.docker import lock
from deployer.docker.host import DockerHost, connect_host
from deployer.engine import Lease
from deployer.errors import Blocked, DeployerError
from tests.testenv import TestEnv

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


def _take(h: DockerHost, n: int, key: str, start: threading.Barrier) -> Lease | DeployerError:
    start.wait()
    try:
        return h.acquire_lock(key, f"deploy {n}", ttl=60)
    except DeployerError as e:
        return e


def test_concurrent_deploys_racing_to_remove_an_expired_lease_exit_4(
    app: str, testenv: TestEnv, engine: docker.DockerClient
) -> None:
    """8 deploys find the same expired lease at once and all remove it: exactly one takes
    the lock, every other one is Blocked (exit 4), none fails on the removal race."""
    hosts = [connect_host(testenv.engine_host, {}) for _ in range(8)]
    try:
        for round_ in range(4):
            key = f"{app}/race{round_}"
            hosts[0].renew_lock(hosts[0].acquire_lock(key, "killed deploy", ttl=1), 1)
            time.sleep(1.2)
            start = threading.Barrier(len(hosts), timeout=60)
            with ThreadPoolExecutor(len(hosts)) as pool:
                outcomes = list(
                    pool.map(
                        lambda h, n: _take(h, n, key, start),  # noqa: B023
                        hosts,
                        range(len(hosts)),
                        timeout=120,
                    )
                )
            leases = [o for o in outcomes if isinstance(o, Lease)]
            errors = [o for o in outcomes if not isinstance(o, Lease)]
            assert len(leases) == 1, [str(e) for e in errors]
            assert all(e.exit_code == 4 for e in errors), [(e.exit_code, str(e)) for e in errors]
            hosts[0].release_lock(leases[0])
            assert lock_containers(engine, key) == []
    finally:
        for h in hosts:
            h.close()


def test_runner_clocks_that_disagree_judge_the_lease_on_the_engines_clock(
    app: str, h1: DockerHost, engine: docker.DockerClient
) -> None:
    """Found this way: the expiry was an absolute time written by the holder's runner and
    compared with the next runner's clock. A runner 2 minutes ahead took a live 60 s lease
    (two deploys of one environment at once); a runner 2 minutes behind stayed blocked by
    a lease that had expired. Both now judge on the engine's clock."""
    key = f"{app}/test"
    ahead = lambda: time.time() + 120  # noqa: E731
    behind = lambda: time.time() - 120  # noqa: E731
    held = lock.acquire(h1.client, h1.name, key, "deploy on time", 60)
    with pytest.raises(Blocked, match="deploy on time"):
        lock.acquire(h1.client, h1.name, key, "deploy ahead", 60, clock=ahead)
    h1.release_lock(held)
    assert lock_containers(engine, key) == []
    # a killed deploy's lease, written by a runner 2 minutes ahead, expires after its ttl
    lock.acquire(h1.client, h1.name, key, "killed deploy ahead", 1, clock=ahead)
    time.sleep(2.1)
    taken = lock.acquire(h1.client, h1.name, key, "deploy behind", 60, clock=behind)
    assert lock_containers(engine, key) == [lock.lock_name(key)]
    h1.release_lock(taken)
    assert lock_containers(engine, key) == []
