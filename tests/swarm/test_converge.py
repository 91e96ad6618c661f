"""Waiting for Swarm to converge: final update states, stale statuses, the deadline.

A hand-written fake of the few Engine API calls the wait makes (``inspect_service``,
``tasks``, ``inspect_task``, ``inspect_container``), replaying a scripted sequence of
service states; time is a fake clock advanced by the target's sleep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker.errors

from deployer.swarm.api import SwarmApi
from deployer.swarm.engine import DockerSwarmEngine
from deployer.swarm.target import SwarmTarget
from tests.swarm.helpers import manifest, web

NEW = "reg/web@sha256:" + "2" * 64
OLD = "reg/web@sha256:" + "1" * 64


def service(update: dict[str, str] | None, image: str = NEW) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "ID": "s1",
        "Spec": {
            "Name": "shop_web",
            "TaskTemplate": {"ContainerSpec": {"Image": image}, "ForceUpdate": 0},
            "Mode": {"Replicated": {"Replicas": 1}},
        },
    }
    if update is not None:
        svc["UpdateStatus"] = update
    return svc


def task(image: str, state: str = "running") -> dict[str, Any]:
    return {
        "ID": "t" * 25,
        "ServiceID": "s1",
        "Slot": 1,
        "DesiredState": "running",
        "Status": {"State": state},
        "Spec": {"ContainerSpec": {"Image": image}, "ForceUpdate": 0},
    }


@dataclass
class FakeAPI:
    """Each inspect_service call moves one step along ``script`` (the last one repeats)."""

    script: list[tuple[dict[str, Any], list[dict[str, Any]]]]
    step: int = -1
    calls: list[str] = field(default_factory=list)

    def inspect_service(self, service_id: str) -> dict[str, Any]:
        self.step = min(self.step + 1, len(self.script) - 1)
        self.calls.append("inspect_service")
        return self.script[self.step][0]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.script[self.step][1]

    def inspect_task(self, task_id: str) -> dict[str, Any]:
        return {
            "ID": task_id,
            "Slot": 1,
            "Status": {
                "State": "failed",
                "Err": "task: non-zero exit (1)",
                "ContainerStatus": {"ExitCode": 1, "ContainerID": "c1"},
            },
        }

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        raise docker.errors.NotFound("gone")


def target(api: FakeAPI) -> tuple[SwarmTarget, list[float]]:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    t = SwarmTarget(
        SwarmApi(
            manifest("shop", web("reg/web:v2")),
            DockerSwarmEngine(api),
            "mgr",
            sleep=sleep,
            clock=lambda: now[0],
        )
    )
    return t, now


PREVIOUS = {"State": "completed", "StartedAt": "2026-01-01T00:00:00Z", "Message": "done"}


def test_a_stale_completed_status_is_not_taken_for_this_update() -> None:
    started = {"StartedAt": "2026-01-02T00:00:00Z"}
    api = FakeAPI(
        [
            (service(PREVIOUS), [task(OLD)]),  # Swarm has not started the update yet
            (service({**started, "State": "updating"}), [task(OLD), task(NEW, "starting")]),
            (service({**started, "State": "completed"}), [task(NEW)]),
        ]
    )
    t, _ = target(api)
    v = t.wait_converged("s1", rolling=True, since=PREVIOUS["StartedAt"], deadline=60)
    assert v.ok and v.state == "completed"
    assert len(api.calls) == 3


def test_rollback_completed_is_a_failure_with_swarm_s_reason() -> None:
    started = {"StartedAt": "2026-01-02T00:00:00Z"}
    msg = "update rolled back due to failure or early termination of task " + "t" * 25
    api = FakeAPI(
        [
            (service({**started, "State": "rollback_started", "Message": msg}), [task(OLD)]),
            (
                service(
                    {**started, "State": "rollback_completed", "Message": "rollback completed"},
                    image=OLD,
                ),
                [task(OLD)],
            ),
        ]
    )
    t, _ = target(api)
    v = t.wait_converged("s1", rolling=True, since=PREVIOUS["StartedAt"], deadline=60)
    assert not v.ok and v.state == "rollback_completed"
    assert msg in v.detail and "non-zero exit (1)" in v.detail


def test_paused_is_a_failure() -> None:
    started = {"StartedAt": "2026-01-02T00:00:00Z"}
    api = FakeAPI([(service({**started, "State": "paused", "Message": "update paused"}), [])])
    v = target(api)[0].wait_converged("s1", rolling=True, since=None, deadline=60)
    assert not v.ok and v.state == "paused"


def test_the_deadline_ends_the_wait() -> None:
    started = {"StartedAt": "2026-01-02T00:00:00Z"}
    api = FakeAPI([(service({**started, "State": "updating"}), [task(NEW, "starting")])])
    t, now = target(api)
    v = t.wait_converged("s1", rolling=True, since=None, deadline=30)
    assert not v.ok and v.state == "timeout"
    assert 30 <= now[0] <= 31
    assert "0/1 running" in v.detail


def test_a_create_converges_when_every_replica_runs_the_spec() -> None:
    api = FakeAPI(
        [
            (service(None), [task(NEW, "starting")]),
            (service(None), [task(NEW)]),
        ]
    )
    v = target(api)[0].wait_converged("s1", rolling=False, since=None, deadline=60)
    assert v.ok and v.state == "converged"


def test_a_change_that_starts_no_rolling_update_converges_after_a_grace() -> None:
    api = FakeAPI([(service(PREVIOUS), [task(NEW)])])
    t, now = target(api)
    v = t.wait_converged("s1", rolling=True, since=PREVIOUS["StartedAt"], deadline=60)
    assert v.ok and 3 <= now[0] < 5
