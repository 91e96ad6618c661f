"""`deployer events` on two hosts (socket or SSH, and tcp+TLS): the OOM kill of a replica
with a tiny memory limit, with its host and time. The read covers the kill as it happens
(``events_during``): a read afterwards may find it pushed out of the engine's last 256
events by other tests' on these shared engines."""

from __future__ import annotations

import time

import pytest

from deployer import labels as L
from tests.ops.conftest import Fleet
from tests.ops.live_events import HOG, events_during
from tests.testenv import TestEnv

# Seconds the read covers: the hog starts and is killed within them (at load average 56-74
# on 2 cores, the engine reported the kill 2.3-6.0 s after the read began, 11 runs).
WINDOW = 15.0


@pytest.mark.integration
def test_events_show_the_deploy_and_an_oom_kill(fleet: Fleet, testenv: TestEnv) -> None:
    fleet.deploy()
    second = fleet.clients[1]

    def oom_kill() -> None:
        name = f"{fleet.app}-prod-hog-1"
        t = time.time()
        # The engine's own stream of the hog's OOM event, open before the hog starts.
        oom_reported = second.api.events(
            since=t - 1,
            until=t + WINDOW,
            filters={"container": name, "event": "oom"},
            decode=True,
        )
        hog = second.containers.run(
            testenv.image_base,
            ["sh", "-c", HOG],
            name=name,
            labels={
                L.MANAGED: "true",
                L.APP: fleet.app,
                L.ENVIRONMENT: "prod",
                L.SERVICE: "hog",
                L.REPLICA: "1",
            },
            mem_limit="16m",
            memswap_limit="16m",
            detach=True,
        )
        deadline = time.monotonic() + WINDOW
        while hog.status != "exited" and time.monotonic() < deadline:
            time.sleep(0.2)
            hog.reload()
        assert hog.status == "exited", hog.attrs["State"]
        # Not State.OOMKilled: engine 20.10 sets it only when containerd's OOM event comes
        # before the exit, and under load it comes after (OOMKilled false, exit code 137,
        # then the "oom" event). What `events` must show is the event: wait until the
        # engine has reported it, so that it lies inside the read's window.
        assert next(iter(oom_reported), None) is not None, f"no oom event in {WINDOW} s"
        oom_reported.close()

    code, out = events_during(
        lambda since, until: fleet.run("events", "--since", since, "--until", until),
        oom_kill,
        WINDOW,
    )
    assert code == 0, out
    # time (UTC) as two words, host, replica, event, detail
    rows = [line.split() for line in out.splitlines()[2:]]
    oom = [r for r in rows if r[3:5] == ["hog.1", "oom"]]
    assert oom and oom[0][2] == fleet.hosts[1], out
    died = [r for r in rows if r[3:5] == ["hog.1", "die"]]
    assert died and "137)" in " ".join(died[0]), out
    assert not [r for r in rows if r[3] == "?.?"], out  # the lock is not the app's
