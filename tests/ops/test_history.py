"""`deployer events` beyond the engine's last 256 events: what the state of each container
the host still has tells (deployer/ops/history.py), against the real engine, and the
reading of that state on its own."""

from __future__ import annotations

import time

import docker
import pytest

from deployer import labels as L
from deployer.ops import Event
from deployer.ops.history import merge, stamp_ns, state_events, task_events
from tests.ops.conftest import ONE_TRANSPORT, Fleet
from tests.testenv import TestEnv


def _engine_still_has(client: docker.DockerClient, name: str, since: float) -> bool:
    found = client.api.events(
        since=since, until=time.time(), filters={"container": name, "event": "die"}, decode=True
    )
    try:
        return next(iter(found), None) is not None
    finally:
        found.close()


@pytest.mark.integration
@ONE_TRANSPORT
def test_a_replicas_exit_is_shown_after_the_engine_forgot_it(
    fleet: Fleet, testenv: TestEnv
) -> None:
    """A replica stopped, then more than 256 other events on its host (on a real host a
    few containers' healthchecks make as many in a minute; here tags of an image): the
    engine no longer has its exit, `events` still shows it with the exit code, and its
    container's creation and start. Before: `(no events of this app in that time)`."""
    since = time.time() - 1
    fleet.deploy()
    client = fleet.clients[0]
    (victim,) = client.api.containers(
        filters={"label": [f"{L.APP}={fleet.app}", f"{L.SERVICE}=worker", f"{L.REPLICA}=1"]}
    )
    name = victim["Names"][0].lstrip("/")
    client.api.stop(victim["Id"], timeout=1)
    code = client.api.inspect_container(victim["Id"])["State"]["ExitCode"]
    repo = f"{fleet.app}-noise"
    for _ in range(20):  # each round: 50 tags and untags, 100 events
        if not _engine_still_has(client, name, since):
            break
        for i in range(50):
            client.api.tag(testenv.image_base, repo, str(i))
            client.api.remove_image(f"{repo}:{i}")
    assert not _engine_still_has(client, name, since), "the engine still has the exit"
    rc, out = fleet.run("events", "--since", "10m")
    assert rc == 0, out
    rows = [line for line in out.splitlines() if f" {name}" in line]
    assert any(" die " in r and f"(exit code {code}" in r for r in rows), out
    assert any(" create " in r for r in rows), out
    assert any(" start " in r for r in rows), out


def _info(**state: object) -> dict[str, object]:
    return {
        "Name": "/shop-prod-web-1",
        "Created": "2026-11-30T10:00:00.123456789Z",
        "RestartCount": 0,
        "Config": {"Labels": {L.SERVICE: "web", L.REPLICA: "1"}},
        "State": {
            "Running": False,
            "StartedAt": "2026-11-30T10:00:01Z",
            "FinishedAt": "2026-11-30T11:00:00.5Z",
            "ExitCode": 137,
            "OOMKilled": True,
            **state,
        },
    }


def test_the_state_tells_creation_start_oom_and_exit() -> None:
    events = state_events(_info(), "h1", L.SERVICE, L.REPLICA)
    assert [(e.action, e.detail) for e in events] == [
        ("create", "shop-prod-web-1"),
        ("start", "shop-prod-web-1"),
        ("oom", "shop-prod-web-1"),
        (
            "die",
            "shop-prod-web-1 (exit code 137, killed: out of memory, or a stop past its grace"
            " period)",
        ),
    ]
    assert events[0].time_ns == stamp_ns("2026-11-30T10:00:00.123456789Z")
    assert events[3].time_ns - events[1].time_ns == 3599_500_000_000


def test_a_running_container_has_no_exit_and_says_its_restarts() -> None:
    info = _info(Running=True, FinishedAt="0001-01-01T00:00:00Z")
    info["RestartCount"] = 3
    actions = [(e.action, e.detail) for e in state_events(info, "h1", L.SERVICE, L.REPLICA)]
    assert actions == [
        ("create", "shop-prod-web-1"),
        ("start", "shop-prod-web-1 (restarted 3 time(s) by its restart policy)"),
    ]


def test_failed_healthchecks_are_events_and_passed_ones_are_not() -> None:
    log = [
        {"End": "2026-11-30T10:00:05Z", "ExitCode": 0},
        {"End": "2026-11-30T10:00:10Z", "ExitCode": 1},
        {"End": "2026-11-30T10:00:15Z", "ExitCode": -1},
    ]
    info = _info(Running=True, Health={"Status": "unhealthy", "Log": log})
    failed = [e for e in state_events(info, "h1", L.SERVICE, L.REPLICA) if "health" in e.action]
    assert [e.detail for e in failed] == [
        "shop-prod-web-1 (exit code 1)",
        "shop-prod-web-1 (timed out, or could not run)",
    ]


def test_the_lock_container_is_not_a_replica() -> None:
    info = _info()
    info["Config"] = {"Labels": {L.APP: "shop"}}
    assert state_events(info, "h1", L.SERVICE, L.REPLICA) == []


def test_an_event_both_tell_is_shown_once() -> None:
    engine = [Event(10_000_000_000, "h1", "web", "1", "die", "shop-prod-web-1 (exit code 137)")]
    state = [
        Event(10_400_000_000, "h1", "web", "1", "die", "shop-prod-web-1 (exit code 137)"),
        Event(10_400_000_000, "h1", "web", "1", "oom", "shop-prod-web-1"),
        Event(10_400_000_000, "h2", "web", "1", "die", "shop-prod-web-1 (exit code 137)"),
    ]
    merged = merge(engine, state)
    assert [(e.where, e.action) for e in merged] == [("h1", "die"), ("h1", "oom"), ("h2", "die")]


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00Z", "", None, "yesterday", "2026-13-01T00:00:00Z"]
)
def test_what_is_no_time_is_no_event(text: object) -> None:
    assert stamp_ns(text) is None


def test_a_swarm_tasks_history_is_its_creation_and_its_state_since_when() -> None:
    task = {
        "ID": "t1",
        "Slot": 2,
        "NodeID": "node0123456789",
        "CreatedAt": "2026-11-30T10:00:00Z",
        "Status": {
            "Timestamp": "2026-11-30T10:05:00Z",
            "State": "failed",
            "Err": "task: non-zero exit (3)",
            "ContainerStatus": {"ExitCode": 3},
        },
    }
    events = task_events(task, "api", "manager")
    on = "api.2.t1 on node node01234567"
    assert [(e.replica, e.action, e.detail) for e in events] == [
        ("2", "task created", on),
        ("2", "task failed", f"{on} (task: non-zero exit (3); exit code 3)"),
    ]
