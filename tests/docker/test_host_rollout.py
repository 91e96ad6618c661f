"""The rollout driving real Docker engines (tests/testenv: registry, images, second engine).

Every test uses a unique app name; the ``app`` fixture removes what it made on both
engines, also when the test fails.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import docker
import docker.errors
import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.docker.connect import Connection
from deployer.docker.host import DockerHost
from deployer.docker.lock import lock_name
from deployer.engine import HostEngine, default_network
from deployer.errors import Blocked, DeployFailed
from deployer.manifest.model import (
    Environment,
    Healthcheck,
    Manifest,
    Mount,
    Port,
    RolloutPolicy,
    Service,
    Task,
    TopVolume,
    UpdateConfig,
)
from deployer.plan import Observed, make_plan
from deployer.result import Outcome
from deployer.rollout import PrintLog, Rollout
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

ENV = "test"
FAST = Healthcheck(interval=0.5, timeout=2.0, retries=2)


def web(image: str, **kw: object) -> Service:
    # a short post-switch watch: these tests are not about it (tests/commands/test_monitor.py)
    base = Service(
        "web", image, healthcheck=FAST, init=True, update_config=UpdateConfig(monitor=1.0)
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def manifest(app: str, *services: Service, tasks: tuple[Task, ...] = (), **pol: object) -> Manifest:
    policy = replace(
        RolloutPolicy(health_timeout=20.0, healthy_after=1.0, drain=0.2, keep_releases=2), **pol
    )  # type: ignore[arg-type]
    vols = tuple(
        TopVolume(m.source) for s in services for m in s.volumes if m.type == "volume" and m.source
    )
    return Manifest(
        path="deploy.yml",
        app=app,
        environment=Environment(ENV),
        services=services,
        tasks=tasks,
        rollout=policy,
        volumes=vols,
    )


def deploy(m: Manifest, hosts: list[DockerHost], holder: str = "test", **kw: object) -> Rollout:
    engines: dict[str, HostEngine] = {h.name: h for h in hosts}
    observed = {h.name: h.observe(m.app, ENV) for h in hosts}
    digests = {
        s.name: hosts[0].resolve(s.image, None, pull_policy=s.pull_policy) for s in m.services
    }
    plan = make_plan(m, list(observed.values()), digests)
    lines: list[str] = []
    r = Rollout(
        m,
        plan,
        engines,
        observed,
        Context(user=holder, commit_short_sha="abc"),
        PrintLog(lines.append),
        **kw,  # type: ignore[arg-type]
    )
    r.run()
    r.lines = lines  # type: ignore[attr-defined]
    return r


def running(client: docker.DockerClient, app: str, service: str = "web") -> list[tuple[str, str]]:
    """(name, digest label) of the running containers of the service."""
    out = []
    for c in client.api.containers(filters={"label": [f"{L.APP}={app}", f"{L.SERVICE}={service}"]}):
        out.append((c["Names"][0].lstrip("/"), c["Labels"].get(L.DIGEST, "")))
    return sorted(out)


def version_via_alias(client: docker.DockerClient, app: str, image: str) -> str:
    """GET /version through the service alias from a client container on the app network."""
    out = client.containers.run(
        image,
        ["wget", "-q", "-O", "-", "http://web:8080/version"],
        network=default_network(app, ENV),
        remove=True,
        labels={L.APP: app},
    )
    return bytes(out).decode().strip()


def test_start_first_update_then_rollback_to_previous_release(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    r1 = deploy(manifest(app, web(testenv.image_v1, replicas=2)), [h1])
    assert r1.error is None, r1.lines  # type: ignore[attr-defined]
    d1 = r1.plan.digests["web"]
    assert running(engine, app) == [(f"{app}-{ENV}-web-1", d1), (f"{app}-{ENV}-web-2", d1)]
    assert version_via_alias(engine, app, testenv.image_base) == "v1"

    r2 = deploy(manifest(app, web(testenv.image_v2, replicas=2)), [h1])
    assert r2.error is None, r2.lines  # type: ignore[attr-defined]
    d2 = r2.plan.digests["web"]
    assert running(engine, app) == [(f"{app}-{ENV}-web-1", d2), (f"{app}-{ENV}-web-2", d2)]
    assert version_via_alias(engine, app, testenv.image_base) == "v2"
    kept = [k.name for k in h1.kept(app, ENV)]
    assert sorted(kept) == [
        f"{app}-{ENV}-web-1--{r1.release_id}",
        f"{app}-{ENV}-web-2--{r1.release_id}",
    ]

    rels = h1.releases(app, ENV)
    assert [x.id for x in rels] == [r1.release_id, r2.release_id]
    # rollback: the previous release's exact digests through the same path
    previous = rels[-2]
    m = manifest(app, web(testenv.image_v2, replicas=2))
    observed = {h1.name: h1.observe(app, ENV)}
    plan = make_plan(m, list(observed.values()), dict(previous.digests))
    rb = Rollout(
        m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None), kind="rollback"
    )
    rb.run()
    assert rb.error is None
    assert running(engine, app) == [(f"{app}-{ENV}-web-1", d1), (f"{app}-{ENV}-web-2", d1)]
    assert version_via_alias(engine, app, testenv.image_base) == "v1"


def test_stop_first_with_a_fixed_host_port(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    port = 20000 + int(app[1:5], 16) % 20000
    svc = web(testenv.image_v1, ports=(Port(8080, port, "127.0.0.1"),))
    assert svc.order == "stop-first"
    assert deploy(manifest(app, svc), [h1]).error is None
    r = deploy(manifest(app, replace(svc, image=testenv.image_v2)), [h1])
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as resp:
        assert resp.read().decode().strip() == "v2"


@pytest.mark.parametrize("bad", ["unhealthy", "crash"])
def test_bad_new_image_rolls_back_and_old_serves(
    bad: str, app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    r1 = deploy(manifest(app, web(testenv.image_v1)), [h1])
    assert r1.error is None
    before = running(engine, app)
    image = testenv.image_unhealthy if bad == "unhealthy" else testenv.image_crash
    r = deploy(manifest(app, web(image), health_timeout=15.0), [h1])
    assert isinstance(r.error, DeployFailed), r.lines  # type: ignore[attr-defined]
    assert r.error.exit_code == 1
    assert r.result.outcome is Outcome.ROLLED_BACK
    assert running(engine, app) == before
    assert version_via_alias(engine, app, testenv.image_base) == "v1"
    # the failed container is gone, its logs/health are in the report
    names = [
        c["Names"][0] for c in engine.api.containers(all=True, filters={"label": f"{L.APP}={app}"})
    ]
    assert not [n for n in names if "--next-" in n]
    failed = [s for s in r.result.steps if s.status == "failed"]
    assert failed and failed[0].log_excerpt
    assert [x.id for x in h1.releases(app, ENV)] == [r1.release_id]


def test_missing_image_pull_touches_nothing(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    m = manifest(app, web(testenv.image_v1))
    assert deploy(m, [h1]).error is None
    before = running(engine, app)
    observed = {h1.name: h1.observe(app, ENV)}
    missing = testenv.image_v1.rsplit(":", 1)[0] + "@sha256:" + "0" * 64
    plan = make_plan(m, list(observed.values()), {"web": missing})
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert isinstance(r.error, DeployFailed)
    assert "nothing was changed" in r.error.message
    assert running(engine, app) == before


def test_tasks_before_failing_touches_nothing_after_failing_rolls_back(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    assert deploy(manifest(app, web(testenv.image_v1)), [h1]).error is None
    before = running(engine, app)
    ok = Task("hello", "web", ("sh", "-c", "echo migrating $GREETING"), "before-deploy", 30)
    bad_before = Task("migrate", "web", ("sh", "-c", "echo boom; exit 3"), "before-deploy", 30)
    r = deploy(
        manifest(
            app, web(testenv.image_v2, environment=(("GREETING", "hi"),)), tasks=(ok, bad_before)
        ),
        [h1],
    )
    assert isinstance(r.error, DeployFailed)
    assert any("migrating hi" in line for line in r.lines)  # type: ignore[attr-defined]
    assert any("boom" in line for line in r.lines)  # type: ignore[attr-defined]
    assert running(engine, app) == before

    bad_after = Task("smoke", "web", ("sh", "-c", "exit 1"), "after-deploy", 30)
    r = deploy(manifest(app, web(testenv.image_v2), tasks=(bad_after,)), [h1])
    assert isinstance(r.error, DeployFailed)
    assert r.result.outcome is Outcome.ROLLED_BACK
    assert running(engine, app) == before
    tasks = engine.api.containers(all=True, filters={"label": [f"{L.APP}={app}", f"{L.ROLE}=task"]})
    assert tasks == []


def test_lock_blocks_a_second_deploy_and_an_expired_lock_is_retaken(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    key = f"{app}/{ENV}"
    lease = h1.acquire_lock(key, "https://gitlab.example/g/p/-/jobs/41", ttl=60)
    try:
        r = deploy(manifest(app, web(testenv.image_v1)), [h1])
        assert isinstance(r.error, Blocked)
        assert r.error.exit_code == 4
        assert "jobs/41" in r.error.message
        assert running(engine, app) == []
    finally:
        h1.release_lock(lease)
    # a deploy killed while holding the lock leaves it behind: it expires
    h1.acquire_lock(key, "killed deploy", ttl=1)
    time.sleep(1.2)
    r = deploy(manifest(app, web(testenv.image_v1)), [h1])
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    with pytest.raises(docker.errors.NotFound):
        engine.api.inspect_container(lock_name(key))


def test_a_deploy_longer_than_lock_ttl_keeps_its_lock(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    slow = web(testenv.image_v1, healthcheck=Healthcheck(disable=True))  # healthy_after: 4 s
    m = manifest(app, slow, lock_ttl=1.5, healthy_after=4.0)
    seen: list[BaseException | None] = []

    def second_deploy() -> None:
        try:
            h1.release_lock(h1.acquire_lock(f"{app}/{ENV}", "second deploy", ttl=60))
            seen.append(None)
        except Blocked as e:
            seen.append(e)

    probe = threading.Timer(3.0, second_deploy)  # twice the ttl into the deploy
    probe.start()
    r = deploy(m, [h1], holder="long deploy")
    probe.join()
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    assert isinstance(seen[0], Blocked) and "long deploy" in str(seen[0]), seen
    assert engine.api.containers(all=True, filters={"name": lock_name(f"{app}/{ENV}")}) == []


def test_wait_lock_waits_for_the_holder(app: str, h1: DockerHost) -> None:
    key = f"{app}/{ENV}"
    lease = h1.acquire_lock(key, "first", ttl=60)
    threading.Timer(1.0, h1.release_lock, args=(lease,)).start()
    started = time.monotonic()
    second = h1.acquire_lock(key, "second", ttl=60, wait=10)
    assert time.monotonic() - started >= 0.9
    h1.release_lock(second)


def _own_image(engine: docker.DockerClient, testenv: TestEnv, app: str, cleanup: Cleanup) -> str:
    """An image only this test uses, in the registry and not on the engine (tag removed)."""
    repo = f"{testenv.registry}/{app}/web"
    dockerfile = f"FROM {testenv.image_v1}\nLABEL test.app={app}\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    list(engine.api.build(fileobj=buf, custom_context=True, tag=f"{repo}:old", rm=True))
    image_id = engine.api.inspect_image(f"{repo}:old")["Id"]
    cleanup.later(
        lambda: engine.api.remove_image(image_id, force=True) if _exists(engine, image_id) else None
    )
    for msg in engine.api.push(repo, tag="old", stream=True, decode=True):
        assert "error" not in msg, msg
    engine.api.remove_image(f"{repo}:old")
    return f"{repo}:old"


def _exists(engine: docker.DockerClient, ref: str) -> bool:
    try:
        engine.api.inspect_image(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def test_volume_data_survives_a_replace_and_retention_keeps_what_releases_need(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, cleanup: Cleanup
) -> None:
    vols = (Mount("volume", "/named", "data"), Mount("volume", "/anon"))
    cmd = ("sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait")
    own = _own_image(engine, testenv, app, cleanup)
    images = [own, testenv.image_v1, testenv.image_v2, testenv.image_v1, testenv.image_v2]
    results = []
    for i, image in enumerate(images):
        svc = web(image, volumes=vols, command=cmd if i else None)
        r = deploy(manifest(app, svc, keep_releases=2), [h1])
        assert r.error is None, r.lines  # type: ignore[attr-defined]
        results.append(r)
        if i == 0:
            cid = engine.api.containers(filters={"name": f"{app}-{ENV}-web-1"})[0]["Id"]
            engine.api.exec_start(
                engine.api.exec_create(
                    cid, ["sh", "-c", "echo keep > /named/f; echo anon > /anon/f"]
                )
            )
    cid = engine.api.containers(filters={"name": f"^/{app}-{ENV}-web-1$"})[0]["Id"]
    out = engine.api.exec_start(engine.api.exec_create(cid, ["cat", "/named/f", "/anon/f"]))
    assert out.decode().split() == ["keep", "anon"]
    rels = h1.releases(app, ENV)
    assert [x.id for x in rels] == [results[3].release_id, results[4].release_id]
    kept = h1.kept(app, ENV)
    assert {k.release for k in kept} <= {x.id for x in rels}
    # images both kept releases need are still there; the first release's image is gone
    for rel in rels:
        for digest in rel.digests.values():
            engine.api.inspect_image(digest)
    first = results[0].plan.digests["web"]
    assert first.startswith(f"{testenv.registry}/{app}/web@")
    assert not _exists(engine, first)


def test_fleet_batches_in_order_and_second_batch_failure_rolls_back_first(
    app: str,
    h1: DockerHost,
    h2: DockerHost,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
    testenv: TestEnv,
) -> None:
    m1 = manifest(app, web(testenv.image_v1), batch="1")
    r = deploy(m1, [h1, h2])
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    order = [s.host for s in r.result.steps if s.name == "rollout web"]
    assert order == sorted([h1.name, h2.name])
    before1, before2 = running(engine, app), running(engine2, app)
    assert before1 and before2

    # make the second host (in sorted order) fail: its engine refuses to create the new
    # container because the temporary name is taken by a container we put there.
    first, second = sorted([h1, h2], key=lambda h: h.name)
    second_client = engine if second is h1 else engine2
    m2 = manifest(app, web(testenv.image_v2), batch="1")
    observed = {h.name: h.observe(app, ENV) for h in (h1, h2)}
    digest = h1.resolve(testenv.image_v2, None)
    plan = make_plan(m2, list(observed.values()), {"web": digest})
    rollout = Rollout(
        m2, plan, {h.name: h for h in (h1, h2)}, observed, Context(), PrintLog(lambda s: None)
    )
    blocker = second_client.api.create_container(
        testenv.image_v1,
        name=f"{app}-{ENV}-web-1--next-{rollout.release_id}",
        labels={L.APP: app},
    )
    try:
        rollout.run()
    finally:
        second_client.api.remove_container(blocker["Id"], force=True)
    assert isinstance(rollout.error, DeployFailed)
    assert rollout.result.hosts[first.name] == "rolled-back"
    assert running(engine, app) == before1
    assert running(engine2, app) == before2


def test_unreachable_host_aborts_before_any_change(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    m = manifest(app, web(testenv.image_v1))
    assert deploy(m, [h1]).error is None
    before = running(engine, app)
    gone = docker.DockerClient(base_url=f"unix:///tmp/{app}-gone.sock", version="1.41", timeout=2)
    dead = DockerHost(Connection(f"unix:///tmp/{app}-gone.sock", gone))
    observed = {h1.name: h1.observe(app, ENV), dead.name: Observed(dead.name)}
    plan = make_plan(m, list(observed.values()), {"web": h1.resolve(testenv.image_v2, None)})
    r = Rollout(
        m, plan, {h1.name: h1, dead.name: dead}, observed, Context(), PrintLog(lambda s: None)
    )
    r.run()
    assert r.error is not None and r.error.exit_code == 3, r.error
    assert r.result.outcome is Outcome.UNREACHABLE
    assert running(engine, app) == before


def test_concurrent_deploys_of_two_apps_sharing_hosts_do_not_deadlock(
    app: str,
    h1: DockerHost,
    h2: DockerHost,
    testenv: TestEnv,
    engine: docker.DockerClient,
    engine2: docker.DockerClient,
) -> None:
    other = app + "b"
    try:
        results: dict[str, Rollout] = {}

        def go(name: str, hosts: list[DockerHost]) -> None:
            results[name] = deploy(manifest(name, web(testenv.image_v1)), hosts, wait_lock=30.0)

        t1 = threading.Thread(target=go, args=(app, [h1, h2]))
        t2 = threading.Thread(target=go, args=(other, [h2, h1]))
        t1.start()
        t2.start()
        t1.join(90)
        t2.join(90)
        assert not t1.is_alive() and not t2.is_alive()
        assert results[app].error is None
        assert results[other].error is None
    finally:
        from tests.testenv import cleanup

        cleanup({"engine": engine, "engine2": engine2}, other)


def test_adopting_a_compose_app_keeps_its_network_and_volume_data(
    app: str, h1: DockerHost, engine: docker.DockerClient, testenv: TestEnv, tmp_path: Path
) -> None:
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(
        "version: '3.7'\nservices:\n  web:\n"
        f"    image: {testenv.image_v1}\n    volumes: ['data:/data']\n"
        "volumes:\n  data: {}\n"
    )
    subprocess.run(
        ["docker-compose", "-p", app, "-f", str(compose_file), "up", "-d"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    old = engine.api.containers(filters={"label": f"{L.COMPOSE_PROJECT}={app}"})[0]
    engine.api.exec_start(engine.api.exec_create(old["Id"], ["sh", "-c", "echo kept > /data/f"]))

    svc = web(testenv.image_v2, volumes=(Mount("volume", "/data", "data"),))
    m = replace(manifest(app, svc), compose_project=app)
    observed = {h1.name: h1.observe(app, ENV, compose_project=app, services=m.services)}
    assert [c.adopted_from for c in observed[h1.name].containers] == ["compose"]
    plan = make_plan(m, list(observed.values()), {"web": h1.resolve(testenv.image_v2, None)})
    r = Rollout(m, plan, {h1.name: h1}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.error is None, r.result.error

    new = engine.api.containers(filters={"name": f"^/{app}-{ENV}-web-1$"})[0]
    assert list(new["NetworkSettings"]["Networks"]) == [f"{app}_default"]
    out = engine.api.exec_start(engine.api.exec_create(new["Id"], ["cat", "/data/f"]))
    assert out.decode().strip() == "kept"
    # the compose container is kept, stopped, for rollback
    gone = engine.api.inspect_container(old["Id"])
    assert not gone["State"]["Running"] and "--" in gone["Name"]
