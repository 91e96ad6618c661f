"""`deployer unlock` on two hosts (socket or SSH, and tcp+TLS), GitLab faked at the HTTP
layer: the lock of a job GitLab reports as failed is broken on every host, the lock of a
running job is not (exit 4), `--force` breaks any lock, and without a way to ask GitLab
nothing is broken."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
import responses

from deployer.docker import lock as _lock
from deployer.engine import Lease
from tests.gitlab.helpers import ENGINES, HOLDER, HOLDER_JOB, JOB_TOKEN, SERVER, fixture
from tests.ops.conftest import ONE_TRANSPORT, Fleet


def lock_ids(client: docker.DockerClient, app: str) -> list[str]:
    found = client.api.containers(all=True, filters={"label": f"{_lock.KEY}={app}/prod"})
    return [c["Id"] for c in found]


@pytest.fixture
def held(fleet: Fleet) -> Iterator[list[Lease]]:
    """The deploy lock on both hosts, held by job 76001 (as a deploy killed hard leaves it)."""
    leases = [
        _lock.acquire(c, f"engine{i}", f"{fleet.app}/prod", HOLDER, 1800)
        for i, c in enumerate(fleet.clients)
    ]
    yield leases
    for client, lease in zip(fleet.clients, leases, strict=True):
        _lock.release(client, "engine", lease)


@pytest.fixture
def in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_SERVER_URL", SERVER)
    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)


@ONE_TRANSPORT
@pytest.mark.integration
@responses.activate
def test_unlock_breaks_the_lock_of_a_failed_job(
    fleet: Fleet, held: list[Lease], in_ci: None
) -> None:
    responses.add_passthru(ENGINES)
    call = responses.get(HOLDER_JOB, json=fixture("job_failed.json"))
    code, out = fleet.run("unlock")
    assert code == 0, out
    assert call.call_count == 1
    assert call.calls[0].request.headers["JOB-TOKEN"] == JOB_TOKEN
    assert "job 76001 of shop/checkout is failed" in out
    assert HOLDER in out
    for client in fleet.clients:
        assert lock_ids(client, fleet.app) == []
    code, out = fleet.run("unlock")  # nothing left: says so
    assert code == 0 and "no deploy lock is held" in out


@ONE_TRANSPORT
@pytest.mark.integration
@responses.activate
def test_unlock_refuses_the_lock_of_a_running_job(
    fleet: Fleet, held: list[Lease], in_ci: None
) -> None:
    responses.add_passthru(ENGINES)
    responses.get(HOLDER_JOB, json=fixture("job_running.json"))
    code, out = fleet.run("unlock")
    assert code == 4, out
    for client in fleet.clients:
        assert len(lock_ids(client, fleet.app)) == 1

    code, out = fleet.run("unlock", "--force")  # the operator knows better
    assert code == 0, out
    assert HOLDER in out and "--force" in out
    for client in fleet.clients:
        assert lock_ids(client, fleet.app) == []


@ONE_TRANSPORT
@pytest.mark.integration
def test_unlock_without_gitlab_breaks_nothing(
    fleet: Fleet, held: list[Lease], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_SERVER_URL", raising=False)
    code, out = fleet.run("unlock")
    assert code == 4, out
    for client in fleet.clients:
        assert len(lock_ids(client, fleet.app)) == 1


@ONE_TRANSPORT
@pytest.mark.integration
@responses.activate
def test_a_deploy_breaks_the_lock_of_a_failed_job_and_waits_for_a_running_one(
    fleet: Fleet, held: list[Lease], in_ci: None
) -> None:
    responses.add_passthru(ENGINES)
    running = responses.get(HOLDER_JOB, json=fixture("job_running.json"))
    fleet.write()
    code, out = fleet.run("deploy", "--report-dir", str(fleet.path.parent))
    assert code == 4, out  # the job runs: its lock holds
    assert running.call_count == 1
    for client in fleet.clients:
        assert len(lock_ids(client, fleet.app)) == 1

    responses.replace(responses.GET, HOLDER_JOB, json=fixture("job_failed.json"))
    code, out = fleet.run("deploy", "--report-dir", str(fleet.path.parent))
    assert code == 0, out
    assert "is failed: its lock is stale" in out and "stale deploy lock" in out
