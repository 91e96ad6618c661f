"""The rollout's logic against a recording in-memory host (tests/fakehost.py).

The real adapter is exercised against a real engine in tests/docker/test_host*.py and
tests/commands/test_deploy*.py; these pin the order of steps, rollback and fleet rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from deployer import labels as L
from deployer.context import Context
from deployer.engine import HealthOutcome
from deployer.errors import Blocked, DeployFailed, InvalidInput, RollbackFailed
from deployer.manifest.model import (
    Environment,
    Manifest,
    Port,
    RolloutPolicy,
    Service,
    Task,
    UpdateConfig,
)
from deployer.plan import make_plan
from deployer.result import Outcome, StepStatus
from deployer.rollout import PrintLog, Rollout, batches, new_release_id
from deployer.rollout.state import START_PARALLEL
from tests.fakehost import FakeContainer, FakeHost

APP, ENV = "shop", "prod"
OLD = "reg/shop/web@sha256:" + "1" * 64
NEW = "reg/shop/web@sha256:" + "2" * 64
BAD = "reg/shop/web@sha256:" + "3" * 64


def manifest(
    services: tuple[Service, ...] | None = None,
    tasks: tuple[Task, ...] = (),
    **rollout: object,
) -> Manifest:
    return Manifest(
        path="deploy.yml",
        app=APP,
        environment=Environment(ENV),
        services=services or (Service("web", "reg/shop/web:v2"),),
        tasks=tasks,
        rollout=replace(RolloutPolicy(drain=0.0), **rollout),  # type: ignore[arg-type]
    )


def run(
    m: Manifest,
    hosts: list[FakeHost],
    digest: str = NEW,
    wait_lock: float = 0.0,
    digests: dict[str, str] | None = None,
) -> Rollout:
    observed = {h.host: h.observe(APP, ENV) for h in hosts}
    digests = {s.name: digest for s in m.services} | (digests or {})
    plan = make_plan(m, list(observed.values()), digests)
    lines: list[str] = []
    now = [1_700_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    r = Rollout(
        m,
        plan,
        {h.host: h for h in hosts},
        observed,
        Context(commit_sha="abcdef1234", commit_short_sha="abcdef12", user="ana"),
        PrintLog(lines.append),
        wait_lock=wait_lock,
        sleep=sleep,
        wall=lambda: now[0],
    )
    r.run()
    r.lines = lines  # type: ignore[attr-defined]
    return r


def host(name: str = "h1", replicas: int = 1, **kw: object) -> FakeHost:
    h = FakeHost(name, **kw)  # type: ignore[arg-type]
    h.seed(APP, ENV, "web", OLD, replicas)
    return h


def ops(h: FakeHost, *names: str) -> list[tuple[str, ...]]:
    return [c for c in h.calls if c[0] in names]


def test_start_first_starts_new_beside_old_and_stops_old_only_after_healthy() -> None:
    h = host()
    r = run(manifest(), [h])
    assert r.error is None
    assert r.result.outcome is Outcome.DEPLOYED
    seq = [c[0] for c in h.calls if c[0] in ("start", "wait_healthy", "detach_aliases", "stop")]
    assert seq == ["start", "wait_healthy", "detach_aliases", "stop"]
    assert h.serving("web") == [("shop-prod-web-1", NEW)]
    kept = [c for c in h.containers.values() if "--" in c.name]
    assert [(c.name, c.digest, c.running) for c in kept] == [("shop-prod-web-1--r0", OLD, False)]
    assert [rel.id for rel in h.released] == [r.release_id]
    assert h.released[0].digests == {"web": NEW}
    assert h.lock_log == ["acquire", "release"]


def test_stop_first_is_forced_by_a_fixed_host_port_and_stops_old_before_starting_new() -> None:
    svc = Service("web", "reg/shop/web:v2", ports=(Port(8080, 18080),))
    h = host()
    r = run(manifest((svc,)), [h])
    assert r.error is None
    seq = [(c[0], c[1]) for c in h.calls if c[0] in ("start", "stop", "create")]
    assert [s[0] for s in seq] == ["create", "stop", "start"]
    assert seq[1][1] == "shop-prod-web-1"
    assert h.serving("web") == [("shop-prod-web-1", NEW)]


def test_replicas_roll_one_at_a_time_by_default() -> None:
    h = host(replicas=3)
    r = run(manifest((Service("web", "reg/shop/web:v2", replicas=3),)), [h])
    assert r.error is None
    seq = [c[0] for c in h.calls if c[0] in ("start", "stop")]
    assert seq == ["start", "stop"] * 3
    assert h.serving("web") == [(f"shop-prod-web-{i}", NEW) for i in (1, 2, 3)]


def test_unhealthy_new_container_rolls_back_and_old_serves_again() -> None:
    h = host(replicas=2, unhealthy={BAD})
    r = run(manifest((Service("web", "reg/shop/web:bad", replicas=2),)), [h], digest=BAD)
    assert isinstance(r.error, DeployFailed)
    assert r.error.exit_code == 1
    assert r.result.outcome is Outcome.ROLLED_BACK
    assert h.serving("web") == [("shop-prod-web-1", OLD), ("shop-prod-web-2", OLD)]
    assert all(c.digest == OLD for c in h.containers.values())  # failed ones removed
    failed = [s for s in r.result.steps if s.status is StepStatus.FAILED]
    assert failed and "healthcheck exit 1" in failed[0].log_excerpt
    assert h.released == []
    assert h.lock_log == ["acquire", "release"]


def test_failure_on_second_replica_restores_the_first_one_too() -> None:
    h = host(replicas=2)
    # the first replica's switch works; the second replica's create fails
    creates = 0
    real_create = h.create

    def create(*a: object, **kw: object) -> str:
        nonlocal creates
        creates += 1
        if creates == 2:
            raise DeployFailed("h1: create failed: no space left")
        return real_create(*a, **kw)  # type: ignore[arg-type]

    h.create = create  # type: ignore[method-assign]
    r = run(manifest((Service("web", "reg/shop/web:v2", replicas=2),)), [h])
    assert isinstance(r.error, DeployFailed)
    assert h.serving("web") == [("shop-prod-web-1", OLD), ("shop-prod-web-2", OLD)]
    assert len(h.containers) == 2


def test_pull_failure_changes_nothing() -> None:
    h = host(missing={NEW})
    r = run(manifest(), [h])
    assert isinstance(r.error, DeployFailed)
    assert "nothing was changed" in r.error.message
    assert ops(h, "create", "stop", "run_task") == []
    assert h.serving("web") == [("shop-prod-web-1", OLD)]


def test_failing_before_deploy_task_changes_nothing() -> None:
    h = host(task_exit={"migrate": 3})
    m = manifest(tasks=(Task("migrate", "web", ("migrate",), "before-deploy"),))
    r = run(m, [h])
    assert isinstance(r.error, DeployFailed)
    assert ops(h, "create", "stop") == []
    assert ("run_task", "migrate", NEW) in h.calls  # the NEW image runs the task
    assert any("migrate output" in line for line in r.lines)  # type: ignore[attr-defined]


def test_failing_after_deploy_task_rolls_back() -> None:
    h = host(task_exit={"smoke": 1})
    m = manifest(tasks=(Task("smoke", "web", ("smoke",), "after-deploy"),))
    r = run(m, [h])
    assert isinstance(r.error, DeployFailed)
    assert r.result.outcome is Outcome.ROLLED_BACK
    assert h.serving("web") == [("shop-prod-web-1", OLD)]
    assert h.released == []


def test_lock_held_by_another_deploy_blocks_before_anything() -> None:
    h = host(held_by="https://gitlab.example/p/-/jobs/7")
    r = run(manifest(), [h])
    assert isinstance(r.error, Blocked)
    assert "jobs/7" in r.error.message
    assert r.result.outcome is Outcome.BLOCKED
    assert h.calls == []


def test_nothing_to_do_when_everything_is_current() -> None:
    h = host()
    # the seeded container runs OLD with the manifest's config: nothing to do
    for c in h.containers.values():
        c.labels[L.CONFIG_HASH] = manifest().services[0].config_hash()
    r = run(manifest(), [h], digest=OLD)
    assert r.result.outcome is Outcome.NOTHING_TO_DO
    assert ops(h, "pull", "create", "record_release") == []


def test_rollback_that_fails_exits_5() -> None:
    h = host(unhealthy={BAD}, fail_on={"remove"})  # removing the failed container fails
    r = run(manifest(), [h], digest=BAD)
    assert isinstance(r.error, RollbackFailed)
    assert r.error.exit_code == 5
    assert r.result.outcome is Outcome.ROLLBACK_FAILED


# -- fleets ----------------------------------------------------------------------------------


def test_fleet_locks_in_sorted_order_and_rolls_batches_in_order() -> None:
    shared: list[str] = []
    hosts = [host(n, shared_log=shared) for n in ("c", "a", "b")]
    r = run(manifest(batch="1"), hosts)
    assert r.error is None
    assert shared[:3] == ["lock a", "lock b", "lock c"]
    assert [s.host for s in r.result.steps if s.name == "rollout web"] == ["a", "b", "c"]
    assert r.result.hosts == {"a": "switched", "b": "switched", "c": "switched"}
    assert {h.released[0].id for h in hosts} == {r.release_id}


def test_failure_on_the_second_batch_rolls_back_the_first() -> None:
    a = host("a")
    b = host("b", fail_on={"create"})
    r = run(manifest(batch="1"), [a, b])
    assert isinstance(r.error, DeployFailed)
    assert a.serving("web") == [("shop-prod-web-1", OLD)]
    assert b.serving("web") == [("shop-prod-web-1", OLD)]
    assert r.result.hosts["a"] == "rolled-back"
    assert a.released == [] and b.released == []


def test_unreachable_host_aborts_before_any_change() -> None:
    a = host("a")
    b = host("b")
    observed = {h.host: h.observe(APP, ENV) for h in (a, b)}
    b.down = True
    m = manifest()
    plan = make_plan(m, list(observed.values()), {"web": NEW})
    r = Rollout(m, plan, {"a": a, "b": b}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.error is not None and r.error.exit_code == 3
    assert ops(a, "pull", "create", "stop") == []
    assert a.lock_log == ["acquire", "release"]


def test_canary_first_batch_is_one_host_and_failure_rolls_back_everything() -> None:
    hosts = [host(n) for n in ("a", "b", "c")]
    r = run(manifest(batch="100%", canary=5.0), hosts)
    assert r.error is None
    assert any("canary" in line for line in r.lines)  # type: ignore[attr-defined]

    hosts = [host(n, unhealthy={BAD} if n == "c" else set()) for n in ("a", "b", "c")]
    r = run(manifest(batch="100%", canary=5.0), hosts, digest=BAD)
    # only c (second batch) fails: the canary a and b roll back too
    assert isinstance(r.error, DeployFailed)
    for h in hosts:
        assert h.serving("web") == [("shop-prod-web-1", OLD)]


def test_a_canary_docker_has_not_checked_yet_is_not_a_failure() -> None:
    # the deployer's own check made it healthy; Docker's first check is still due
    hosts = [host(n, no_verdict={NEW}) for n in ("a", "b")]
    r = run(manifest(batch="100%", canary=2.0), hosts)
    assert r.error is None, r.lines  # type: ignore[attr-defined]
    for h in hosts:
        assert h.serving("web") == [("shop-prod-web-1", NEW)]


def test_batches() -> None:
    hosts = ["a", "b", "c", "d", "e"]
    assert batches(hosts, "2", canary=False) == [["a", "b"], ["c", "d"], ["e"]]
    assert batches(hosts, "40%", canary=False) == [["a", "b"], ["c", "d"], ["e"]]
    assert batches(hosts, "100%", canary=True) == [["a"], ["b", "c", "d", "e"]]
    assert batches(hosts, "0", canary=False) == [["a"], ["b"], ["c"], ["d"], ["e"]]
    with pytest.raises(InvalidInput):
        batches(hosts, "half", canary=False)


def test_release_ids_sort_by_time() -> None:
    ctx = Context(commit_short_sha="abc123")
    ids = [new_release_id(ctx, t) for t in (1_700_000_000.0, 1_700_000_000.5, 1_700_000_100.0)]
    assert ids == sorted(ids)
    assert ids[0].endswith("-abc123")


def test_stop_first_failure_restarts_the_old_container_after_stopping_the_new() -> None:
    svc = Service("web", "reg/shop/web:bad", ports=(Port(8080, 18080),))
    h = host(unhealthy={BAD})
    r = run(manifest((svc,)), [h], digest=BAD)
    assert isinstance(r.error, DeployFailed)
    assert h.serving("web") == [("shop-prod-web-1", OLD)]
    undo = [c for c in h.calls if c[0] in ("stop", "start", "remove")]
    # the new one is stopped (its port freed) before the old one starts again
    assert undo[-3:] == [
        ("stop", "shop-prod-web-1--next-" + r.release_id),
        ("start", "shop-prod-web-1"),
        ("remove", "shop-prod-web-1--next-" + r.release_id),
    ]


def test_scale_down_keeps_the_extra_replicas_stopped_and_a_rollback_restores_them() -> None:
    h = host(replicas=3, task_exit={"smoke": 1})
    m = manifest(
        (Service("web", "reg/shop/web:v2", replicas=1),),
        tasks=(Task("smoke", "web", ("smoke",), "after-deploy"),),
    )
    r = run(m, [h])
    assert isinstance(r.error, DeployFailed)  # the after-deploy task fails: all undone
    assert h.serving("web") == [(f"shop-prod-web-{i}", OLD) for i in (1, 2, 3)]

    h2 = host(replicas=3)
    r = run(manifest((Service("web", "reg/shop/web:v2", replicas=1),)), [h2])
    assert r.error is None
    assert h2.serving("web") == [("shop-prod-web-1", NEW)]
    kept = sorted(c.name for c in h2.containers.values() if "--" in c.name)
    assert kept == [f"shop-prod-web-{i}--r0" for i in (1, 2, 3)]


def test_a_service_removed_from_the_manifest_is_stopped_and_kept() -> None:
    h = host()
    h.seed(APP, ENV, "cron", OLD)
    for c in h.containers.values():
        if c.service == "web":
            c.labels[L.CONFIG_HASH] = Service("web", "reg/shop/web:v2").config_hash()
    r = run(manifest(), [h], digest=OLD)
    assert r.error is None
    assert h.serving("cron") == []
    assert [c.name for c in h.containers.values() if c.service == "cron"] == [
        "shop-prod-cron-1--r0"
    ]


def test_tasks_of_services_outside_the_deploy_are_skipped() -> None:
    h = host()
    h.seed(APP, ENV, "worker", OLD)
    m = manifest(
        (Service("web", "reg/shop/web:v2"), Service("worker", "reg/shop/worker:v2")),
        tasks=(Task("migrate", "worker", ("migrate",), "before-deploy"),),
    )
    observed = {h.host: h.observe(APP, ENV)}
    plan = make_plan(m, list(observed.values()), {"web": NEW}, only=["web"])
    lines: list[str] = []
    r = Rollout(m, plan, {h.host: h}, observed, Context(), PrintLog(lines.append))
    r.run()
    assert r.error is None
    assert ops(h, "run_task") == []
    assert any("task migrate skipped" in line for line in lines)
    assert h.serving("worker") == [("shop-prod-worker-1", OLD)]


def test_a_bug_in_one_hosts_thread_rolls_back_the_fleet_and_propagates() -> None:
    a, b = host("a"), host("b")

    def broken(*args: object, **kw: object) -> str:
        raise KeyError("bug")

    b.create = broken  # type: ignore[method-assign]
    m = manifest(batch="100%")
    observed = {h.host: h.observe(APP, ENV) for h in (a, b)}
    plan = make_plan(m, list(observed.values()), {"web": NEW})
    r = Rollout(m, plan, {"a": a, "b": b}, observed, Context(), PrintLog(lambda s: None))
    with pytest.raises(KeyError):
        r.run()
    assert a.serving("web") == [("shop-prod-web-1", OLD)]
    assert r.result.outcome is Outcome.ROLLED_BACK
    assert a.lock_log == ["acquire", "release"] and b.lock_log == ["acquire", "release"]


def test_cancel_stops_at_the_next_step_and_rolls_back() -> None:
    h = host(replicas=2)
    m = manifest((Service("web", "reg/shop/web:v2", replicas=2),))
    observed = {h.host: h.observe(APP, ENV)}
    plan = make_plan(m, list(observed.values()), {"web": NEW})
    r = Rollout(m, plan, {h.host: h}, observed, Context(), PrintLog(lambda s: None))
    real_wait = h.wait_healthy

    def wait_then_cancel(
        cid: str, timeout: float, stable: float, start_interval: float | None = None
    ) -> HealthOutcome:
        r.cancelled.set()  # the job is cancelled while the first replica comes up
        return real_wait(cid, timeout, stable, start_interval)

    h.wait_healthy = wait_then_cancel  # type: ignore[method-assign]
    r.run()
    assert isinstance(r.error, DeployFailed) and "cancelled" in r.error.message
    assert len(ops(h, "create")) == 1  # the second replica never started
    assert h.serving("web") == [("shop-prod-web-1", OLD), ("shop-prod-web-2", OLD)]


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(name, lines) of each GitLab section, checking starts and ends pair up, no nesting."""
    out: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    for raw in text.split("\n"):  # not splitlines(): a marker line holds a "\r"
        if "section_start:" in raw:
            assert current is None, f"section {raw!r} starts inside {current and current[0]}"
            name = raw.split("section_start:", 1)[1].split(":", 1)[1]
            current = (name.split("\r")[0].split("[")[0], [])
        elif "section_end:" in raw:
            name = raw.split("section_end:", 1)[1].split(":", 1)[1].split("\r")[0]
            assert current is not None and current[0] == name, f"unbalanced end of {name}"
            out.append(current)
            current = None
        elif current is not None:
            current[1].append(raw)
    assert current is None, f"section {current and current[0]} never ends"
    return out


def test_each_service_rollout_is_one_whole_section_also_when_hosts_and_services_run_at_once() -> (
    None
):
    import io
    import time as real_time

    from deployer.report.log import JobLog

    services = (Service("web", "reg/shop/web:v2"), Service("api", "reg/shop/web:v2"))
    m = manifest(services, batch="2", drain=0.02)  # a real drain: the threads interleave
    hosts = [host(n) for n in ("a", "b")]
    for h in hosts:
        h.seed(APP, ENV, "api", OLD, 1)
    observed = {h.host: h.observe(APP, ENV) for h in hosts}
    plan = make_plan(m, list(observed.values()), {"web": NEW, "api": NEW})
    out = io.StringIO()
    log = JobLog(out, gitlab=True)
    r = Rollout(
        m,
        plan,
        {h.host: h for h in hosts},
        observed,
        Context(user="ana"),
        log,
        sleep=real_time.sleep,
    )
    r.run()
    assert r.error is None
    sections = _sections(out.getvalue())
    names = [n for n, _ in sections]
    assert len(names) == len(set(names)), names
    rollouts = {n: lines for n, lines in sections if n.startswith("rollout_")}
    assert sorted(rollouts) == ["rollout_1_api", "rollout_1_web", "rollout_2_api", "rollout_2_web"]
    for name, lines in rollouts.items():
        host_name = "a" if name.startswith("rollout_1") else "b"
        service, other = ("web", "api") if name.endswith("web") else ("api", "web")
        assert lines and all(f"] {host_name}: " in line for line in lines), (name, lines)
        assert any(f"shop-prod-{service}-1: switched" in line for line in lines), (name, lines)
        assert not any(f"shop-prod-{other}-" in line for line in lines), (name, lines)
    assert "pull" in names


def test_a_service_rolling_alone_streams_its_section() -> None:
    import io

    from deployer.report.log import JobLog

    h = host()
    m = manifest()
    observed = {h.host: h.observe(APP, ENV)}
    plan = make_plan(m, list(observed.values()), {"web": NEW})
    out = io.StringIO()
    r = Rollout(m, plan, {h.host: h}, observed, Context(user="ana"), JobLog(out, gitlab=True))
    r.run()
    assert r.error is None
    sections = dict(_sections(out.getvalue()))
    assert any("shop-prod-web-1: switched" in line for line in sections["rollout_1_web"])


def test_a_container_failing_after_the_switch_rolls_back() -> None:
    h = host(replicas=2, flapping={BAD})
    r = run(manifest((Service("web", "reg/shop/web:bad", replicas=2),)), [h], digest=BAD)
    assert isinstance(r.error, DeployFailed) and r.error.exit_code == 1
    assert "update_config.monitor" in r.error.message
    assert h.serving("web") == [("shop-prod-web-1", OLD), ("shop-prod-web-2", OLD)]
    assert h.released == []
    watched = ops(h, "watch")
    assert watched == [("watch", "shop-prod-web-1", "shop-prod-web-2")]  # once, after the switch


def test_monitor_0s_turns_the_watch_off() -> None:
    h = host(flapping={BAD})
    svc = Service("web", "reg/shop/web:bad", update_config=UpdateConfig(monitor=0.0))
    r = run(manifest((svc,)), [h], digest=BAD)
    assert r.error is None
    assert ops(h, "watch") == []


def test_leftovers_of_an_interrupted_deploy_are_removed_first() -> None:
    h = host()
    h.containers["left"] = FakeContainer(
        "left", "shop-prod-web-1--next-r9", "web", 1, BAD, running=True, aliases={"net": ["web"]}
    )
    r = run(manifest(), [h])
    assert r.error is None
    assert "left" not in h.containers
    assert [c[0] for c in h.calls][:3] == ["detach_aliases", "remove", "pull"]
    assert any(s.kind == "cleanup" for s in r.result.steps)
    assert h.serving("web") == [("shop-prod-web-1", NEW)]


class Overlap(FakeHost):
    """Counts the calls of ``start`` and of ``wait_healthy`` running at once (each one
    takes ``start_s`` / ``health_s`` of real time), and when each ``watch`` ran."""

    def __init__(
        self, name: str, start_s: float, health_s: float, gather: int = 0, **kw: object
    ) -> None:
        import threading

        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.start_s, self.health_s = start_s, health_s
        # each start waits (up to 5 s) until ``gather`` starts run at once: the most at
        # once is then what the rollout allows, not what the scheduler managed under load
        self.gather = gather
        self.lock = threading.Condition()
        self.now = {"start": 0, "health": 0}
        self.most = {"start": 0, "health": 0}
        self.times: list[tuple[str, str, float]] = []  # (what, name, monotonic)

    def _during(self, what: str, seconds: float) -> None:
        import time

        with self.lock:
            self.now[what] += 1
            self.most[what] = max(self.most[what], self.now[what])
            self.lock.notify_all()
            if what == "start" and self.gather:
                self.lock.wait_for(lambda: self.most["start"] >= self.gather, timeout=5.0)
        time.sleep(seconds)
        with self.lock:
            self.now[what] -= 1

    def start(self, container_id: str) -> None:
        import time

        self.times.append(("start", self.containers[container_id].name, time.monotonic()))
        self._during("start", self.start_s)
        super().start(container_id)

    def wait_healthy(
        self, container_id: str, timeout: float, stable: float, start_interval: float | None = None
    ) -> HealthOutcome:
        self._during("health", self.health_s)
        return super().wait_healthy(container_id, timeout, stable, start_interval)

    def watch(
        self, container_ids: Sequence[str], seconds: float, exit_ok: bool = False
    ) -> tuple[str, HealthOutcome] | None:
        import time

        names = ",".join(self.containers[c].name for c in container_ids)
        self.times.append(("watch", names, time.monotonic()))
        time.sleep(0.2)
        self.times.append(("watched", names, time.monotonic()))
        return super().watch(container_ids, seconds)


def ten(h: FakeHost, n: int = 10) -> tuple[Service, ...]:
    names = [f"s{i}" for i in range(n)]
    for n in names:
        h.seed(APP, ENV, n, OLD)
    return tuple(
        Service(n, f"reg/shop/{n}:v2", update_config=UpdateConfig(monitor=0.0)) for n in names
    )


def test_a_host_starts_a_bounded_number_of_new_containers_at_once_but_gates_them_all() -> None:
    h = Overlap("h1", start_s=0.05, health_s=0.3, gather=START_PARALLEL)
    n = START_PARALLEL + 4
    r = run(manifest(ten(h, n)), [h])
    assert r.error is None
    assert h.most["start"] == START_PARALLEL
    assert h.most["health"] > START_PARALLEL  # a service waiting for health holds no slot
    assert all(h.serving(f"s{i}") == [(f"shop-prod-s{i}-1", NEW)] for i in range(n))


def test_once_a_service_fails_no_other_starts_and_the_whole_wave_rolls_back() -> None:
    h = Overlap("h1", start_s=0.1, health_s=0.0, unhealthy={BAD})
    n = START_PARALLEL + 4
    r = run(manifest(ten(h, n)), [h], digest=BAD)
    assert isinstance(r.error, DeployFailed) and "unhealthy" in r.error.message
    assert len(ops(h, "create")) < n  # the first failures stop the starts still queued
    assert all(c.digest == OLD and c.running for c in h.containers.values())


def test_one_failing_service_among_concurrent_ones_rolls_back_all_of_them() -> None:
    h = Overlap("h1", start_s=0.02, health_s=0.05, unhealthy={BAD})
    r = run(manifest(ten(h)), [h], digests={"s7": BAD})
    assert isinstance(r.error, DeployFailed) and "s7 replica 1" in r.error.message
    switched = [c for c in h.calls if c[0] == "rename" and c[2].endswith("-1")]
    assert switched  # others had switched to the new version before the failure
    for i in range(10):
        assert h.serving(f"s{i}") == [(f"shop-prod-s{i}-1", OLD)]
    assert not any(c.digest == NEW for c in h.containers.values())
    assert h.released == []


def test_the_watch_after_a_switch_runs_beside_the_next_wave() -> None:
    h = Overlap("h1", start_s=0.0, health_s=0.0)
    for n in ("db", "web"):
        h.seed(APP, ENV, n, OLD)
    db = Service("db", "reg/shop/db:v2")
    web = Service("web", "reg/shop/web:v2", depends_on=(("db", "service_healthy"),))
    r = run(manifest((db, web)), [h])
    assert r.error is None
    when = {(what, name.split("--")[0]): t for what, name, t in h.times}
    # web (the second wave) started before db's watch (the first wave's) ended; each
    # watch is its own thread, so which one the fake sees first is the scheduler's choice
    assert when[("start", "shop-prod-web-1")] < when[("watched", "shop-prod-db-1")]
    assert sorted(c[1:] for c in ops(h, "watch")) == [("shop-prod-db-1",), ("shop-prod-web-1",)]
    sections = [line for line in r.lines if "Watching the new containers" in line]  # type: ignore[attr-defined]
    assert len(sections) == 1, r.lines  # type: ignore[attr-defined]


def test_a_watch_failing_while_the_next_wave_rolls_rolls_back_both_waves() -> None:
    h = Overlap("h1", start_s=0.0, health_s=0.0, flapping={BAD})
    for n in ("db", "web"):
        h.seed(APP, ENV, n, OLD)
    db = Service("db", "reg/shop/db:v2")
    web = Service("web", "reg/shop/web:v2", depends_on=(("db", "service_healthy"),))
    r = run(manifest((db, web)), [h], digests={"db": BAD})
    assert isinstance(r.error, DeployFailed) and "update_config.monitor" in r.error.message
    assert "db replica 1" in r.error.message
    assert h.serving("db") == [("shop-prod-db-1", OLD)]
    assert h.serving("web") == [("shop-prod-web-1", OLD)]
    assert not any(c.digest in (NEW, BAD) for c in h.containers.values())


def test_after_a_rollback_the_result_shows_the_digests_that_run() -> None:
    h = host(replicas=2, unhealthy={BAD})
    r = run(manifest((Service("web", "reg/shop/web:bad", replicas=2),)), [h], digest=BAD)
    assert r.result.outcome is Outcome.ROLLED_BACK
    assert r.result.digests == {"web": OLD}


def test_a_service_depending_with_restart_restarts_when_the_dependency_is_replaced() -> None:
    h = FakeHost("h1")
    h.seed(APP, ENV, "db", OLD)
    h.seed(APP, ENV, "web", OLD)
    h.seed(APP, ENV, "worker", OLD)
    services = (
        Service("db", "reg/shop/db:v2"),
        Service(
            "web",
            "reg/shop/web:v1",
            depends_on=(("db", "service_started"),),
            depends_restart=("db",),
        ),
        Service("worker", "reg/shop/web:v1", depends_on=(("db", "service_started"),)),
    )
    m = manifest(services)
    for c in h.containers.values():  # web and worker run their manifest's configuration
        c.labels[L.CONFIG_HASH] = m.service(c.service).config_hash()
    observed = {h.host: h.observe(APP, ENV)}
    plan = make_plan(m, list(observed.values()), {"db": NEW, "web": OLD, "worker": OLD})
    r = Rollout(m, plan, {h.host: h}, observed, Context(), PrintLog(lambda s: None))
    r.run()
    assert r.error is None
    web = next(c for c in h.containers.values() if c.name == "shop-prod-web-1")
    worker = next(c for c in h.containers.values() if c.name == "shop-prod-worker-1")
    assert [c[:2] for c in ops(h, "stop", "start")][-2:] == [
        ("stop", web.name),
        ("start", web.name),
    ]
    assert not [c for c in ops(h, "stop", "start") if c[1] == worker.name]  # no restart: false
    restarted = [s for s in r.result.steps if s.name == "restart web"]
    assert [s.detail for s in restarted] == ["db replaced (depends_on restart: true)"]

    # nothing replaced: nothing restarted
    h.calls.clear()
    observed = {h.host: h.observe(APP, ENV)}
    plan = make_plan(m, list(observed.values()), {"db": NEW, "web": OLD, "worker": OLD})
    Rollout(m, plan, {h.host: h}, observed, Context(), PrintLog(lambda s: None)).run()
    assert not ops(h, "stop", "start")
