"""The Swarm engine against a real single-node swarm and the test registry.

Ports are published in host mode (the routing mesh does not work on these machines).
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from dataclasses import replace
from typing import Any

import docker
import docker.errors
import pytest

from deployer.errors import EXIT_ROLLED_BACK, Blocked, DeployFailed
from deployer.manifest.model import Port, Task
from deployer.plan import Action
from deployer.report.log import PrintLog
from deployer.result import Outcome, StepStatus
from deployer.swarm import SwarmTarget, raise_for_outcome
from deployer.swarm.api import SwarmApi
from tests.swarm.helpers import manifest, web
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

QUIET = PrintLog(lambda _: None)


def target(swarm: docker.DockerClient, m: Any) -> SwarmTarget:
    return SwarmTarget(SwarmApi(m, swarm, "local-manager"))


def deploy(swarm: docker.DockerClient, m: Any, lines: list[str] | None = None) -> Any:
    t = target(swarm, m)
    return t.apply(t.plan(), PrintLog((lines if lines is not None else []).append))


def running_images(swarm: docker.DockerClient, name: str) -> list[str]:
    api: Any = swarm.api
    try:
        tasks = api.tasks(filters={"service": name, "desired-state": "running"})
    except docker.errors.NotFound:
        return []  # no such service
    return sorted(
        t["Spec"]["ContainerSpec"]["Image"] for t in tasks if t["Status"]["State"] == "running"
    )


def served_versions(swarm: docker.DockerClient, name: str) -> list[str]:
    """GET /version from every running task, through its host-mode published port.

    The port is read from the task's container, bound on 0.0.0.0: an engine-picked host
    port may differ between IPv4 and IPv6 (the task's PortStatus lists both, without the
    address), and only the IPv4 one answers on 127.0.0.1."""
    api: Any = swarm.api
    out = []
    for t in api.tasks(filters={"service": name, "desired-state": "running"}):
        container = api.inspect_container(t["Status"]["ContainerStatus"]["ContainerID"])
        bindings = container["NetworkSettings"]["Ports"].get("8080/tcp") or []
        ports = sorted({b["HostPort"] for b in bindings if b["HostIp"] == "0.0.0.0"})
        assert ports, f"task {t['ID']} publishes no IPv4 port: {bindings}"
        for port in ports:
            url = f"http://127.0.0.1:{port}/version"
            with urllib.request.urlopen(url, timeout=5) as resp:
                out.append(resp.read().decode().strip())
    return sorted(out)


def test_create_then_update_converges(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    ports = (Port(target=8080),)  # host mode, the engine picks the host port
    m1 = manifest(swarm_app, web(testenv.image_v1, ports=ports))
    r1 = deploy(swarm, m1)
    assert r1.outcome is Outcome.DEPLOYED, r1.error
    v1 = r1.digests["web"]
    assert v1.startswith(testenv.registry + "/testapp/web@sha256:")
    assert served_versions(swarm, f"{swarm_app}_web") == ["v1"]

    lines: list[str] = []
    m2 = manifest(swarm_app, web(testenv.image_v2, ports=ports, replicas=2))
    r2 = deploy(swarm, m2, lines)
    assert r2.outcome is Outcome.DEPLOYED, r2.error
    v2 = r2.digests["web"]
    assert v2 != v1
    assert [s.status for s in r2.steps] == [StepStatus.OK]
    assert any("completed" in line for line in lines), lines
    assert running_images(swarm, f"{swarm_app}_web") == [v2, v2]
    assert served_versions(swarm, f"{swarm_app}_web") == ["v2", "v2"]

    # The status of the environment shows what runs now.
    rows = target(swarm, m2).status()
    assert [(r.service, r.digest, r.running, r.desired, r.update_state) for r in rows] == [
        ("web", v2, 2, 2, "completed")
    ]
    assert rows[0].release == r2.release
    # And a second deploy of the same manifest changes nothing.
    again = target(swarm, m2)
    plan = again.plan()
    assert not plan.changes
    assert again.apply(plan, QUIET).outcome is Outcome.NOTHING_TO_DO


def test_unhealthy_image_ends_in_swarm_rollback_and_exit_1_with_the_old_version_serving(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    ports = (Port(target=8080),)
    r1 = deploy(swarm, manifest(swarm_app, web(testenv.image_v1, ports=ports)))
    assert r1.outcome is Outcome.DEPLOYED, r1.error

    lines: list[str] = []
    bad = manifest(swarm_app, web(testenv.image_unhealthy, ports=ports))
    r2 = deploy(swarm, bad, lines)
    assert r2.outcome is Outcome.ROLLED_BACK
    failed = [s for s in r2.steps if s.kind == "rollout"]
    assert failed[0].status is StepStatus.FAILED
    assert failed[0].detail.startswith("rollback_completed"), failed[0].detail
    assert "unhealthy" in failed[0].detail
    with pytest.raises(DeployFailed) as e:
        raise_for_outcome(r2)
    assert e.value.exit_code == EXIT_ROLLED_BACK == 1

    name = f"{swarm_app}_web"
    assert running_images(swarm, name) == [r1.digests["web"]]
    assert served_versions(swarm, name) == ["v1"]
    status = target(swarm, bad).status()[0]
    assert status.update_state == "rollback_completed" and not status.healthy
    # Nothing of the failed release remains planned as deployed: the plan still wants it.
    step = target(swarm, bad).plan().hosts[0].step("web")
    assert step.action is Action.REPLACE and step.old_digest == r1.digests["web"]


def test_when_a_later_service_fails_the_earlier_one_is_put_back(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    m1 = manifest(swarm_app, web(testenv.image_v1, name="api"), web(testenv.image_v1, name="web"))
    assert deploy(swarm, m1).outcome is Outcome.DEPLOYED
    before = {s: running_images(swarm, f"{swarm_app}_{s}") for s in ("api", "web")}

    m2 = manifest(
        swarm_app, web(testenv.image_v2, name="api"), web(testenv.image_unhealthy, name="web")
    )
    lines: list[str] = []
    r = deploy(swarm, m2, lines)
    assert r.outcome is Outcome.ROLLED_BACK, lines
    kinds = [(s.kind, s.service, s.status) for s in r.steps]
    assert kinds == [
        ("rollout", "api", StepStatus.ROLLED_BACK),
        ("rollout", "web", StepStatus.FAILED),
        ("rollback", "web", StepStatus.ROLLED_BACK),
        ("rollback", "api", StepStatus.ROLLED_BACK),
    ], kinds
    after = {s: running_images(swarm, f"{swarm_app}_{s}") for s in ("api", "web")}
    assert after == before


def test_plan_for_swarm_shows_create_replace_scale_unchanged_remove(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    m1 = manifest(
        swarm_app,
        web(testenv.image_v1, name="api"),
        web(testenv.image_v1, name="web"),
        web(testenv.image_v1, name="old"),
    )
    first = target(swarm, m1).plan()
    assert [(s.service, s.action, s.reasons) for s in first.hosts[0].steps] == [
        ("api", Action.CREATE, ("not running",)),
        ("web", Action.CREATE, ("not running",)),
        ("old", Action.CREATE, ("not running",)),
    ]
    assert deploy(swarm, m1).outcome is Outcome.DEPLOYED

    m2 = manifest(
        swarm_app,
        web(testenv.image_v1, name="api", replicas=2),
        web(testenv.image_v2, name="web", env={"MODE": "fast"}),
        web(testenv.image_v1, name="new"),
    )
    t = target(swarm, m2)
    plan = t.plan()
    got = {
        s.service: (s.action, s.reasons, s.replicas_before, s.replicas_after)
        for s in plan.hosts[0].steps
    }
    assert got == {
        "api": (Action.SCALE, ("scale 1 → 2",), 1, 2),
        "web": (
            Action.REPLACE,
            ("new image digest", "config changed: environment"),
            1,
            1,
        ),
        "new": (Action.CREATE, ("not running",), 0, 1),
        "old": (Action.REMOVE, ("no longer in the manifest",), 1, 0),
    }
    web_step = plan.hosts[0].step("web")
    assert web_step.old_digest == plan.digests["api"]  # v1
    assert web_step.new_digest == plan.digests["web"] != web_step.old_digest

    r = t.apply(plan, QUIET)
    assert r.outcome is Outcome.DEPLOYED, r.error
    after = target(swarm, m2).plan()
    assert [(s.service, s.action) for s in after.hosts[0].steps] == [
        ("api", Action.UNCHANGED),
        ("web", Action.UNCHANGED),
        ("new", Action.UNCHANGED),
    ]
    assert len(running_images(swarm, f"{swarm_app}_api")) == 2


def test_tasks_run_as_swarm_jobs_with_their_output_in_the_log(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    ok = Task("migrate", "web", ("/bin/sh", "-c", "echo migrating $STAGE"), timeout=60)
    m = manifest(swarm_app, web(testenv.image_v1, env={"STAGE": "prod-db"}), tasks=(ok,))
    lines: list[str] = []
    r = deploy(swarm, m, lines)
    assert r.outcome is Outcome.DEPLOYED, r.error
    task_steps = [s for s in r.steps if s.kind == "task"]
    assert task_steps[0].status is StepStatus.OK
    assert "migrating prod-db" in task_steps[0].log_excerpt
    assert any("migrate | migrating prod-db" in line for line in lines), lines
    api: Any = swarm.api
    assert not [s for s in api.services() if "task-migrate" in s["Spec"]["Name"]]

    bad = Task("check", "web", ("/bin/sh", "-c", "echo no db >&2; exit 3"), timeout=60)
    m2 = manifest(swarm_app, web(testenv.image_v2), tasks=(bad,))
    r2 = deploy(swarm, m2)
    assert r2.outcome is Outcome.ROLLED_BACK
    assert "task check failed" in (r2.error or "") and "exit 3" in (r2.error or "")
    assert "no db" in r2.steps[0].log_excerpt
    # Nothing was changed: v1 still runs.
    assert running_images(swarm, f"{swarm_app}_web") == [r.digests["web"]]


def test_the_lock_blocks_a_second_deploy_until_released_or_expired(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    t = target(swarm, manifest(swarm_app, web(testenv.image_v1)))
    lease = t.acquire_lock("job 1", ttl=60)
    with pytest.raises(Blocked) as e:
        t.acquire_lock("job 2", ttl=60)
    assert "job 1" in e.value.message
    t.release_lock(lease)
    short = t.acquire_lock("job 3", ttl=1)
    time.sleep(1.5)
    taken = t.acquire_lock("job 4", ttl=60)  # the expired lease is taken over
    assert taken.holder == "job 4" and taken.config_id != short.config_id
    t.release_lock(taken)


def test_a_renewed_lock_outlives_its_first_expiry_and_a_lost_one_is_said(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    t = target(swarm, manifest(swarm_app, web(testenv.image_v1)))
    lease = t.renew_lock(t.acquire_lock("long deploy", ttl=1), 60)
    assert lease.expires_at > time.time() + 50
    time.sleep(1.5)  # past the first expiry: the renewal holds it
    with pytest.raises(Blocked, match="long deploy"):
        t.acquire_lock("second deploy", ttl=60)
    t.release_lock(lease)
    stale = t.acquire_lock("killed deploy", ttl=1)
    time.sleep(1.5)
    taken = t.acquire_lock("next deploy", ttl=60)
    with pytest.raises(Blocked, match="taken away") as e:
        t.renew_lock(stale, 60)
    assert e.value.exit_code == 4
    t.release_lock(taken)


def test_a_deploy_longer_than_lock_ttl_keeps_its_swarm_lock(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    slow = Task("wait", "web", ("sleep", "4"), timeout=60)  # the deploy outlasts the ttl
    m = manifest(swarm_app, web(testenv.image_v1), tasks=(slow,))
    m = replace(m, rollout=replace(m.rollout, lock_ttl=1.5))
    t = target(swarm, m)
    seen: list[BaseException | None] = []

    def second_deploy() -> None:
        try:
            target(swarm, m).acquire_lock("second deploy", ttl=60)
            seen.append(None)
        except Blocked as e:
            seen.append(e)

    probe = threading.Timer(3.0, second_deploy)  # twice the ttl into the deploy
    probe.start()
    r = t.apply(t.plan(), QUIET)
    probe.join()
    assert r.error is None, r.error
    assert r.seconds > 3.5, "the deploy ended before the probe: no test"
    assert isinstance(seen[0], Blocked), seen


def test_a_paused_update_is_a_failure_and_the_previous_spec_is_restored(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    from dataclasses import replace

    def paused(image: str) -> Any:
        svc = web(image)
        return replace(svc, update_config=replace(svc.update_config, failure_action="pause"))

    r1 = deploy(swarm, manifest(swarm_app, paused(testenv.image_v1)))
    assert r1.outcome is Outcome.DEPLOYED, r1.error
    lines: list[str] = []
    r2 = deploy(swarm, manifest(swarm_app, paused(testenv.image_unhealthy)), lines)
    assert r2.outcome is Outcome.ROLLED_BACK, lines
    rollout, rollback = r2.steps
    assert rollout.detail.startswith("paused"), rollout.detail
    assert rollback.kind == "rollback" and rollback.status is StepStatus.ROLLED_BACK
    assert running_images(swarm, f"{swarm_app}_web") == [r1.digests["web"]]


def test_a_deploy_waits_for_the_lock_then_reports_blocked(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    m = manifest(swarm_app, web(testenv.image_v1))
    t = target(swarm, m)
    lease = t.acquire_lock("https://gitlab.example/jobs/1", ttl=60)
    with pytest.raises(Blocked) as e:
        t.apply(t.plan(), QUIET, lock_wait=1.0)
    assert e.value.exit_code == 4 and "jobs/1" in e.value.message
    assert not running_images(swarm, f"{swarm_app}_web")  # nothing was created
    t.release_lock(lease)


def test_an_image_from_a_registry_with_auth_is_pulled_by_swarm_with_the_manifest_credentials(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    from dataclasses import replace

    from deployer.manifest.model import RegistryAuth

    api: Any = swarm.api
    repo = f"{testenv.auth_registry}/{swarm_app}/web"
    auth = {"username": testenv.auth_user, "password": testenv.auth_password}
    api.tag(testenv.image_v1, repo, "v1")
    try:
        for chunk in api.push(repo, "v1", auth_config=auth, stream=True, decode=True):
            assert "error" not in chunk, chunk
        # Forget the image under this name: Swarm must pull it, with our credentials.
        digest = next(
            d for d in api.inspect_image(f"{repo}:v1")["RepoDigests"] if d.startswith(repo)
        )
        api.remove_image(f"{repo}:v1")
        with contextlib.suppress(docker.errors.APIError):
            api.remove_image(digest)
        # Digest lookups go through the manager with the credentials, the pull by the
        # tasks needs them too: without them, every task is rejected and the deploy
        # fails early (not at the deadline), removing the service it created.
        creds = RegistryAuth(testenv.auth_registry, testenv.auth_user, testenv.auth_password)
        m = replace(manifest(swarm_app, web(f"{repo}:v1")), registries=(creds,))
        t = target(swarm, m)
        plan = t.plan()
        t.swarm.auth_for = lambda image: None  # type: ignore[method-assign]
        denied = t.apply(plan, QUIET)
        assert denied.outcome is Outcome.ROLLED_BACK
        # "rejected", not "timeout": it gave up on the rejections, not at the deadline.
        assert denied.steps[0].detail.startswith("rejected"), denied.steps[0].detail
        assert "No such image" in denied.steps[0].detail
        assert denied.steps[-1].kind == "rollback"
        assert running_images(swarm, f"{swarm_app}_web") == []

        r = deploy(swarm, m)
        assert r.outcome is Outcome.DEPLOYED, r.error
        assert r.digests["web"] == digest
        assert running_images(swarm, f"{swarm_app}_web") == [digest]
    finally:
        for ref in (
            f"{repo}:v1",
            *(d for img in api.images(name=repo) for d in (img.get("RepoDigests") or [])),
        ):
            with contextlib.suppress(docker.errors.APIError):
                api.remove_image(ref)


def test_pull_policy_never_runs_the_local_image_by_id_and_plans_unchanged_after(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    from dataclasses import replace

    api: Any = swarm.api
    local_id = api.inspect_image(testenv.image_v1)["Id"]
    m = manifest(swarm_app, replace(web(testenv.image_v1), pull_policy="never"))
    r = deploy(swarm, m)
    assert r.outcome is Outcome.DEPLOYED, r.error
    assert r.digests["web"] == local_id
    assert running_images(swarm, f"{swarm_app}_web") == [local_id]
    step = target(swarm, m).plan().hosts[0].step("web")
    assert step.action is Action.UNCHANGED and step.old_digest == local_id


def test_named_volumes_outlive_an_update_and_are_shared_with_tasks(
    swarm: docker.DockerClient, swarm_app: str, testenv: TestEnv
) -> None:
    from dataclasses import replace

    from deployer.manifest.model import Mount, TopVolume

    def app_manifest(image: str, *tasks: Task) -> Any:
        svc = replace(web(image), volumes=(Mount("volume", "/data", "data"),))
        return replace(manifest(swarm_app, svc, tasks=tasks), volumes=(TopVolume("data"),))

    write = Task("seed", "web", ("/bin/sh", "-c", "echo seeded-by-v1 > /data/note"), timeout=60)
    r1 = deploy(swarm, app_manifest(testenv.image_v1, write))
    assert r1.outcome is Outcome.DEPLOYED, r1.error
    read = Task("read", "web", ("/bin/sh", "-c", "cat /data/note"), when="after-deploy", timeout=60)
    lines: list[str] = []
    r2 = deploy(swarm, app_manifest(testenv.image_v2, read), lines)
    assert r2.outcome is Outcome.DEPLOYED, r2.error
    assert any("read | seeded-by-v1" in line for line in lines), lines
    api: Any = swarm.api
    vols = api.volumes(filters={"label": f"com.docker.stack.namespace={swarm_app}"})["Volumes"]
    assert [v["Name"] for v in vols] == [f"{swarm_app}_data"]
