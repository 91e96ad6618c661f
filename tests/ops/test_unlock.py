"""`deployer unlock` on two hosts (socket or SSH, and tcp+TLS), GitLab faked at the HTTP
layer: the lock of a job GitLab reports as failed is broken on every host, the lock of a
running job is not (exit 4), `--force` breaks any lock, and without a way to ask GitLab
nothing is broken. The edge proxy's lock is shown and broken by the same rules."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import responses

from deployer.docker import lock as _lock
from deployer.engine import Lease
from deployer.manifest import load_manifest
from deployer.ops.containers import ContainerOperations
from deployer.ops.stale import break_stale_lock
from tests.cli import cli
from tests.conftest import Cleanup
from tests.gitlab.helpers import API, ENGINES, HOLDER, HOLDER_JOB, JOB_TOKEN, SERVER, fixture
from tests.ops.conftest import ONE_TRANSPORT, Fleet
from tests.proxy.conftest import free_port
from tests.testenv import TestEnv


def lock_ids(client: docker.DockerClient, app: str, key: str = "") -> list[str]:
    key = key or f"{app}/prod"
    found = client.api.containers(all=True, filters={"label": f"{_lock.KEY}={key}"})
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


@pytest.mark.integration
@responses.activate
def test_unlock_breaks_the_edge_proxy_lock_of_a_failed_job_not_of_a_running_one(
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    tmp_path: Path,
    cleanup: Cleanup,
    in_ci: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A deploy killed while it edited the edge proxy's config leaves the proxy's lock:
    every deploy behind that proxy waits up to 300 s for it. `deployer unlock` shows it
    and breaks it once GitLab reports its job ended, never while the job runs; a deploy in
    CI breaks it the same way. Neither saw it ("no deploy lock is held")."""
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST", "CI_JOB_URL"):
        monkeypatch.delenv(var, raising=False)
    responses.add_passthru(ENGINES)
    edge = f"{app}-edge"
    path = tmp_path / "deploy.yml"
    path.write_text(
        f"app: {app}\n"
        "environments:\n"
        "  prod:\n"
        f'    hosts: ["{testenv.engine_host}"]\n'
        f'    proxy: {{name: {edge}, http: "127.0.0.1:{free_port()}", https: false}}\n'
        f"services:\n  web:\n    image: {testenv.image_base}\n"
    )
    key = f"edge/{edge}"
    lease = _lock.acquire(engine, "engine", key, HOLDER, 1800)
    cleanup.later(lambda: _lock.release(engine, "engine", lease))
    unlock = ("unlock", "-f", str(path), "--env", "prod")

    responses.get(HOLDER_JOB, json=fixture("job_running.json"))
    code, out = cli(*unlock)
    assert code == 4, out
    assert f"edge proxy lock {key} held by {HOLDER}" in out
    err = capsys.readouterr().err
    assert f"the edge proxy lock {key} is held by job 76001 of shop/checkout" in err, err
    assert len(lock_ids(engine, app, key)) == 1

    responses.replace(responses.GET, HOLDER_JOB, json=fixture("job_failed.json"))
    code, out = cli(*unlock)
    assert code == 0, out
    assert "job 76001 of shop/checkout is failed" in out
    assert f"removed {testenv.engine_host}: edge proxy lock {key}" in out, out
    assert lock_ids(engine, app, key) == []

    # A deploy in CI checks the locks the same way before it starts, each by its own
    # holder: the proxy's lock of the failed job goes, the deploy lock of a running job
    # (another one) stays.
    other = f"{SERVER}/shop/checkout/-/jobs/76002"
    responses.get(f"{API}/projects/shop%2Fcheckout/jobs/76002", json=fixture("job_running.json"))
    again = _lock.acquire(engine, "engine", key, HOLDER, 1800)
    held = _lock.acquire(engine, "engine", f"{app}/prod", other, 1800)
    cleanup.later(lambda: _lock.release(engine, "engine", again))
    cleanup.later(lambda: _lock.release(engine, "engine", held))
    said: list[str] = []
    environ = dict(os.environ)
    ops = ContainerOperations.open(load_manifest(str(path), "prod", environ), environ)
    try:
        assert break_stale_lock(ops, environ, "this deploy", said.append)
    finally:
        ops.close()
    assert lock_ids(engine, app, key) == [], said
    assert len(lock_ids(engine, app)) == 1, said
    assert "the lock stays: the deploy lock is held by job 76002" in "\n".join(said), said


@pytest.mark.integration
@responses.activate
def test_an_images_labels_do_not_make_an_app_container_a_lock(
    app: str,
    testenv: TestEnv,
    engine: docker.DockerClient,
    tmp_path: Path,
    cleanup: Cleanup,
    in_ci: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The manifest cannot write a label under io.deployer., but an image's Dockerfile
    can, and a container inherits its image's labels. An app whose image says it is the
    deploy lock of another environment (held by a job that ended) is deployed while that
    environment's lock is held by a running job: `deployer unlock` there must still see
    the running job's lock alone, and refuse (exit 4). Before, it took the app's container
    for the lock, judged its holder, and broke the running job's lock with it."""
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST", "CI_JOB_URL"):
        monkeypatch.delenv(var, raising=False)
    responses.add_passthru(ENGINES)
    ended = f"{SERVER}/shop/checkout/-/jobs/76003"
    responses.get(HOLDER_JOB, json=fixture("job_running.json"))
    responses.get(f"{API}/projects/shop%2Fcheckout/jobs/76003", json=fixture("job_failed.json"))
    tag = f"{app}-labelled:1"
    dockerfile = (
        f"FROM {testenv.image_v1}\n"
        f'LABEL io.deployer.lock-key="{app}/prod" io.deployer.lock-holder="{ended}"\n'
    )
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    cleanup.later(lambda: engine.images.remove(tag, force=True))
    lease = _lock.acquire(engine, "engine", f"{app}/prod", HOLDER, 1800)
    cleanup.later(lambda: _lock.release(engine, "engine", lease))

    for env, image in (("test", tag), ("prod", testenv.image_v1)):
        (tmp_path / f"{env}.yml").write_text(
            f"app: {app}\nenvironments:\n  {env}:\n"
            f'    hosts: ["{testenv.engine_host}"]\n'
            f"services:\n  web:\n    image: {image}\n    pull_policy: never\n"
        )
    code, out = cli("deploy", "-f", str(tmp_path / "test.yml"), "--env", "test")
    assert code == 0, out
    code, out = cli("unlock", "-f", str(tmp_path / "prod.yml"), "--env", "prod")
    assert code == 4, out
    assert lock_ids(engine, app) == [lease.token], out
