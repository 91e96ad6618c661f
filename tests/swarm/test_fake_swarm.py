"""Swarm mode's orchestration against the recording FakeSwarm: rollout, failure, undo,
lock, tasks and releases, as container mode is unit-tested against tests/fakehost.py.

The real-engine tests (test_swarm.py, test_cli_swarm.py) stand behind the same paths on a
real single-node swarm; these pin the orchestration's decisions and fail when the undo
of a failed run is switched off.
"""

from __future__ import annotations

import docker.errors
import pytest
import requests.exceptions

from deployer.errors import Blocked, Unreachable
from deployer.manifest.model import Manifest, Service, Task
from deployer.plan import Action
from deployer.report.log import PrintLog
from deployer.result import Outcome, StepStatus
from deployer.swarm.api import SwarmApi
from deployer.swarm.target import SwarmTarget
from tests.fakeswarm import FakeSwarm
from tests.swarm.helpers import manifest, web

V1 = "reg.example/shop/web:v1"
V2 = "reg.example/shop/web:v2"
BAD = "reg.example/shop/web:bad"

QUIET = PrintLog(lambda _: None)


def target(m: Manifest, fake: FakeSwarm) -> SwarmTarget:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    return SwarmTarget(SwarmApi(m, fake, "mgr", sleep=sleep, clock=lambda: clock[0]))


def deploy(m: Manifest, fake: FakeSwarm) -> tuple[SwarmTarget, object]:
    t = target(m, fake)
    lines: list[str] = []
    return t, t.apply(t.plan(), PrintLog(lines.append))


def two(web_image: str, api_image: str) -> Manifest:
    m = manifest(
        "shop",
        web(web_image),
        web(api_image, name="api"),
    )
    return m


def images(fake: FakeSwarm, name: str) -> list[str]:
    return [i.split("@")[0] if "@" not in i else i for i in fake.running_images(name)]


def repo_of(fake: FakeSwarm, name: str) -> set[str]:
    """The tags the running tasks were resolved from (the fake's digest encodes the tag)."""
    wanted = {img: fake.inspect_distribution(img)["Descriptor"]["digest"] for img in (V1, V2, BAD)}
    running = fake.running_images(name)
    return {img for img, digest in wanted.items() if any(r.endswith(digest) for r in running)}


def test_a_first_deploy_creates_every_service_and_records_a_release() -> None:
    fake = FakeSwarm()
    t, result = deploy(two(V1, V1), fake)
    assert result.outcome is Outcome.DEPLOYED  # type: ignore[attr-defined]
    assert fake.service_names() == ["shop_api", "shop_web"]
    assert repo_of(fake, "shop_web") == {V1}
    assert [r.id for r in t.releases()] == [result.release]  # type: ignore[attr-defined]
    assert ("create_network", "shop_production_default") in fake.calls or any(
        c[0] == "create_network" for c in fake.calls
    )


def test_an_unchanged_app_is_nothing_to_do_and_takes_no_lock() -> None:
    fake = FakeSwarm()
    deploy(two(V1, V1), fake)
    before = len(fake.calls)
    t = target(two(V1, V1), fake)
    plan = t.plan()
    assert all(s.action is Action.UNCHANGED for s in plan.hosts[0].steps)
    result = t.apply(plan, QUIET)
    assert result.outcome is Outcome.NOTHING_TO_DO
    assert not [c for c in fake.calls[before:] if c[0] in ("create_config", "update_service")]


def test_an_update_rolls_the_changed_service_only() -> None:
    fake = FakeSwarm()
    deploy(two(V1, V1), fake)
    _, result = deploy(two(V2, V1), fake)
    assert result.outcome is Outcome.DEPLOYED  # type: ignore[attr-defined]
    assert repo_of(fake, "shop_web") == {V2}
    assert repo_of(fake, "shop_api") == {V1}
    assert [c for c in fake.calls if c[0] == "update_service"] == [("update_service", "shop_web")]


def test_a_failed_update_puts_every_service_this_run_changed_back() -> None:
    fake = FakeSwarm(failing=[BAD])
    deploy(two(V1, V1), fake)
    # web rolls first (manifest order), then api fails: web must go back to v1.
    _, result = deploy(two(V2, BAD), fake)
    assert result.outcome is Outcome.ROLLED_BACK  # type: ignore[attr-defined]
    assert repo_of(fake, "shop_web") == {V1}
    assert repo_of(fake, "shop_api") == {V1}
    steps = {(s.kind, s.service): s.status for s in result.steps}  # type: ignore[attr-defined]
    assert steps[("rollback", "web")] is StepStatus.ROLLED_BACK
    assert steps[("rollout", "api")] is StepStatus.FAILED
    assert "rollback_completed" in result.error  # type: ignore[attr-defined]


def test_a_service_this_run_created_is_removed_when_a_later_one_fails() -> None:
    fake = FakeSwarm(failing=[BAD])
    deploy(manifest("shop", web(V1, name="api")), fake)
    m = manifest("shop", web(V1), web(BAD, name="api"))  # web is new, api fails
    _, result = deploy(m, fake)
    assert result.outcome is Outcome.ROLLED_BACK  # type: ignore[attr-defined]
    assert fake.service_names() == ["shop_api"]
    assert repo_of(fake, "shop_api") == {V1}


def test_an_engine_that_refuses_a_change_midway_gets_the_earlier_changes_undone() -> None:
    fake = FakeSwarm()
    deploy(two(V1, V1), fake)
    fake.refuse["update_service"] = "shop_api"
    _, result = deploy(two(V2, V2), fake)
    assert result.outcome is Outcome.ROLLED_BACK  # type: ignore[attr-defined]
    assert repo_of(fake, "shop_web") == {V1}
    assert "refused" in result.error  # type: ignore[attr-defined]


def test_a_failed_first_create_leaves_nothing_behind() -> None:
    fake = FakeSwarm(failing=[BAD])
    _, result = deploy(manifest("shop", web(BAD)), fake)
    assert result.outcome is Outcome.ROLLED_BACK  # type: ignore[attr-defined]
    assert fake.service_names() == []


def test_a_failing_before_deploy_task_changes_nothing() -> None:
    fake = FakeSwarm(failing=[BAD])
    deploy(manifest("shop", web(V1)), fake)
    m = manifest(
        "shop",
        web(V2),
        web(BAD, name="migrate", replicas=1),
        tasks=(Task(name="migrate", service="migrate", command=("migrate",)),),
    )
    _, result = deploy(m, fake)
    assert result.outcome is Outcome.ROLLED_BACK  # type: ignore[attr-defined]
    assert "nothing was changed" in result.error  # type: ignore[attr-defined]
    assert repo_of(fake, "shop_web") == {V1}
    assert not [c for c in fake.calls if c == ("update_service", "shop_web")]


def test_the_lock_blocks_a_second_deploy_and_an_expired_one_is_taken_over() -> None:
    fake = FakeSwarm()
    t = target(manifest("shop", web(V1)), fake)
    lease = t.acquire_lock("job 1", ttl=600)
    with pytest.raises(Blocked, match="job 1"):
        t.acquire_lock("job 2", ttl=600)
    t.release_lock(lease)
    stale = t.acquire_lock("job 3", ttl=-1)  # already expired: a dead deploy's lock
    taken = t.acquire_lock("job 4", ttl=600)
    assert taken.config_id != stale.config_id
    renewed = t.renew_lock(taken, ttl=900)
    assert renewed.expires_at > taken.expires_at
    t.release_lock(taken)
    with pytest.raises(Blocked, match="taken away"):
        t.renew_lock(taken, ttl=600)


def test_releases_keep_the_newest_and_say_what_ran() -> None:
    fake = FakeSwarm()
    m1 = manifest("shop", web(V1))
    m2 = manifest("shop", web(V2))
    _, r1 = deploy(m1, fake)
    _, r2 = deploy(m2, fake)
    t = target(m2, fake)
    releases = t.releases()
    assert [r.id for r in releases] == sorted([r1.release, r2.release])  # type: ignore[attr-defined]
    assert (
        releases[-1].digests["web"].endswith(fake.inspect_distribution(V2)["Descriptor"]["digest"])
    )


def test_the_fake_satisfies_the_protocol_at_run_time_too() -> None:
    fake = FakeSwarm()
    svc = Service("web", V1)
    t = target(manifest("shop", svc), fake)
    t.swarm.check_manager()
    with pytest.raises(Exception, match="worker"):
        target(manifest("shop", svc), FakeSwarm(manager=False)).swarm.check_manager()


def test_a_call_that_fails_on_the_way_is_a_located_unreachable() -> None:
    """An SSH session that drops, a refused connection or an engine's refusal during a
    Swarm call: the manager and the call named, the exit of an unreachable host (an
    SSH failure was an internal error before)."""
    paramiko = pytest.importorskip("paramiko")
    t = target(manifest("shop", Service("web", V1)), FakeSwarm())
    for raised, said in (
        (paramiko.SSHException("SSH session not active"), "the SSH connection failed"),
        (requests.exceptions.ConnectionError("refused"), "cannot connect"),
        (docker.errors.APIError("500", explanation="rpc error: manager lost"), "refused"),
    ):

        def fails(*_args: object, **_kw: object) -> None:
            raise raised  # noqa: B023 - called at once, in this iteration

        t.swarm.api.services = fails  # type: ignore[method-assign,assignment]
        with pytest.raises(Unreachable) as e:
            t.swarm.app_services()
        assert e.value.message.startswith("Swarm manager mgr: listing services: "), e.value
        assert said in e.value.message, e.value
        assert e.value.exit_code == Unreachable.exit_code
