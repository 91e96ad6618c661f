"""Observe: the app's containers by label on a real engine; current, kept, adopted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from deployer import labels as L
from deployer.docker.host import DockerHost, connect_host
from deployer.docker.observe import repository
from deployer.manifest.model import Service
from tests.testenv import TestEnv, repo_digest, run_compose_like, run_deployed


@pytest.mark.parametrize(
    ("image", "repo"),
    [
        ("127.0.0.1:5000/a/web:v1", "127.0.0.1:5000/a/web"),
        ("127.0.0.1:5000/a/web", "127.0.0.1:5000/a/web"),
        ("127.0.0.1:5000/a/web@sha256:" + "1" * 64, "127.0.0.1:5000/a/web"),
        ("nginx:1.25", "nginx"),
    ],
)
def test_repository(image: str, repo: str) -> None:
    assert repository(image) == repo



@pytest.fixture
def host(testenv: TestEnv) -> Iterator[DockerHost]:
    h = connect_host(testenv.engine_host, {})
    yield h
    h.close()


@pytest.mark.integration
def test_current_kept_next_and_non_service_containers(
    testenv: TestEnv, engine: docker.DockerClient, app: str, host: DockerHost
) -> None:
    v1 = repo_digest(engine, testenv.image_v1)
    web = Service("web", testenv.image_v1)
    parts = web.config_parts()
    cur = run_deployed(engine, app=app, environment="e", service="web", replica=1, digest=v1,
                       config_hash=web.config_hash(), config_parts=parts, release="r2")
    run_deployed(engine, app=app, environment="e", service="web", replica=1, digest=v1,
                 config_hash="x", release="r1", name=f"{app}-e-web-1--r1", running=False)
    run_deployed(engine, app=app, environment="e", service="web", replica=1, digest=v1,
                 config_hash="x", release="r3", name=f"{app}-e-web-1--next-r3", running=False)
    # another environment of the same app, and a lock container: not ours to see
    run_deployed(engine, app=app, environment="other", service="web", replica=1, digest=v1,
                 config_hash="x")
    engine.containers.create(
        testenv.image_base, name=f"{app}-lock", command=["true"],
        labels={L.APP: app, L.ENVIRONMENT: "e", L.ROLE: L.ROLE_LOCK, L.SERVICE: "web"},
    )

    obs = host.observe(app, "e")
    assert obs.host == testenv.engine_host
    assert [(c.id, c.name, c.release, c.running) for c in obs.containers] == [
        (cur.id, f"{app}-e-web-1", "r2", True)
    ]
    c = obs.containers[0]
    assert (c.service, c.replica, c.image_digest) == ("web", 1, v1)
    assert c.config_hash == web.config_hash() and dict(c.config_parts) == parts
    assert c.adopted_from is None

    kept = host.kept(app, "e")
    assert [(k.name, k.release, k.running) for k in kept] == [(f"{app}-e-web-1--r1", "r1", False)]


@pytest.mark.integration
def test_health_is_read(
    testenv: TestEnv, engine: docker.DockerClient, app: str, host: DockerHost
) -> None:
    digest = repo_digest(engine, testenv.image_unhealthy)
    run_deployed(engine, app=app, environment="e", service="bad", replica=1, digest=digest,
                 config_hash="x")
    deadline = time.monotonic() + 15
    health = ""
    while time.monotonic() < deadline:
        health = host.observe(app, "e").containers[0].health
        if health == "unhealthy":
            break
        time.sleep(0.3)
    assert health == "unhealthy"


@pytest.mark.integration
def test_compose_project_containers_are_adopted_with_their_repo_digest(
    testenv: TestEnv, engine: docker.DockerClient, app: str, host: DockerHost
) -> None:
    # The image has RepoDigests for two repositories: the one of the service must be used.
    other_repo = f"{testenv.registry}/testapp/alias-{app}"
    engine.images.get(testenv.image_v1).tag(other_repo, "x")
    try:
        for _ in engine.api.push(other_repo, tag="x", stream=True, decode=True):
            pass
        engine.images.pull(other_repo, tag="x")
        v1 = repo_digest(engine, testenv.image_v1)
        engine.images.pull(testenv.image_v1)
        rd = engine.images.get(testenv.image_v1).attrs["RepoDigests"]
        assert len(rd) >= 2
        run_compose_like(engine, project=app, service="web", number=1, image=testenv.image_v1)
        run_compose_like(engine, project=app, service="web", number=2, image=testenv.image_v1)
        web = Service("web", testenv.image_v1)
        obs = host.observe(app, "prod", compose_project=app, services=(web,))
        assert [(c.service, c.replica, c.adopted_from, c.image_digest) for c in obs.containers] == [
            ("web", 1, "compose", v1),
            ("web", 2, "compose", v1),
        ]
        # without the compose project, they are not ours
        assert host.observe(app, "prod").containers == ()
    finally:
        engine.images.remove(f"{other_repo}:x", noprune=True)


@pytest.mark.integration
def test_compose_pull_policy_never_uses_the_image_id(
    testenv: TestEnv, engine: docker.DockerClient, app: str, host: DockerHost
) -> None:
    run_compose_like(engine, project=app, service="web", number=1, image=testenv.image_base)
    web = Service("web", testenv.image_base, pull_policy="never")
    obs = host.observe(app, "prod", compose_project=app, services=(web,))
    assert obs.containers[0].image_digest == engine.images.get(testenv.image_base).id


@pytest.mark.integration
def test_our_containers_win_over_compose_ones_for_a_service(
    testenv: TestEnv, engine: docker.DockerClient, app: str, host: DockerHost
) -> None:
    v1 = repo_digest(engine, testenv.image_v1)
    run_compose_like(engine, project=app, service="web", number=1, image=testenv.image_v1)
    ours = run_deployed(engine, app=app, environment="prod", service="web", replica=1,
                        digest=v1, config_hash="h")
    obs = host.observe(app, "prod", compose_project=app)
    assert [c.id for c in obs.containers] == [ours.id]


@pytest.mark.integration
def test_a_replacement_of_the_deploy_holding_the_lock_is_not_called_interrupted(
    testenv: TestEnv, engine: docker.DockerClient, app: str, host: DockerHost
) -> None:
    """`plan` and `status` run while a deploy rolls out saw its `--next-` containers as
    "replacement started by an interrupted deploy"; while a deploy holds the lock they
    are named as that deploy's (it may have been killed: the lock says who)."""
    v1 = repo_digest(engine, testenv.image_v1)
    run_deployed(engine, app=app, environment="e", service="web", replica=1, digest=v1,
                 config_hash="x", release="r1")
    run_deployed(engine, app=app, environment="e", service="web", replica=1, digest=v1,
                 config_hash="x", release="r2", name=f"{app}-e-web-1--next-r2")
    (left,) = host.observe(app, "e").leftovers
    assert left.why == "replacement started by an interrupted deploy"

    holder = "https://gitlab.example/g/p/-/jobs/5"
    lease = host.acquire_lock(f"{app}/e", holder, 60)
    try:
        (left,) = host.observe(app, "e").leftovers
        assert "interrupted" not in left.why
        assert f"the deploy that holds the lock ({holder})" in left.why
    finally:
        host.release_lock(lease)
