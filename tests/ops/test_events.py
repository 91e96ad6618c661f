"""`deployer events` on two hosts (socket or SSH, and tcp+TLS): the OOM kill of a replica
with a tiny memory limit, with its host and time. (An engine keeps its last 256 events
only: on these shared engines a deploy's own events are soon pushed out by other tests'.)"""

from __future__ import annotations

import time

import pytest

from deployer import labels as L
from tests.ops.conftest import Fleet
from tests.testenv import TestEnv

HOG = "sleep 1; x=$(head -c 200000000 /dev/zero | tr '\\000' x); echo ${#x}"


@pytest.mark.integration
def test_events_show_the_deploy_and_an_oom_kill(fleet: Fleet, testenv: TestEnv) -> None:
    fleet.deploy()
    second = fleet.clients[1]
    hog = second.containers.run(
        testenv.image_base,
        ["sh", "-c", HOG],
        name=f"{fleet.app}-prod-hog-1",
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
    deadline = time.monotonic() + 120
    while hog.status != "exited" and time.monotonic() < deadline:
        time.sleep(1)
        hog.reload()
    assert hog.attrs["State"]["OOMKilled"], hog.attrs["State"]

    code, out = fleet.run("events", "--since", "10m")
    assert code == 0, out
    # time (UTC) as two words, host, replica, event, detail
    rows = [line.split() for line in out.splitlines()[2:]]
    oom = [r for r in rows if r[3:5] == ["hog.1", "oom"]]
    assert oom and oom[0][2] == fleet.hosts[1], out
    died = [r for r in rows if r[3:5] == ["hog.1", "die"]]
    assert died and "137)" in " ".join(died[0]), out
    assert not [r for r in rows if r[3] == "?.?"], out  # the lock is not the app's
