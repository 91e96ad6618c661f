"""`deployer logs` on two hosts (socket or SSH, and tcp+TLS): two services of two
replicas each come out merged in time order, prefixed with host, service and replica,
secrets masked; `--follow` keeps going across a deploy that replaces the containers and
ends with exit 0 on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from deployer import labels as L
from deployer.commands.logs import time_arg
from deployer.errors import InvalidInput
from tests.ops.conftest import ONE_TRANSPORT, Fleet

LINE = re.compile(r"^(?P<host>\S+) (?P<svc>\w+)\.(?P<n>\d) \| (?P<stamp>\S+) (?P<text>.*)$")


def hostnames(client: docker.DockerClient, app: str) -> set[str]:
    """The short ids (the containers' hostnames) of the app's current replicas."""
    found = client.api.containers(filters={"label": f"{L.APP}={app}"})
    return {c["Id"][:12] for c in found}


def wait_for_lines(fleet: Fleet, count: int) -> str:
    """Until every replica printed its lines (they print for about a second)."""
    deadline = time.monotonic() + 60
    while True:
        code, out = fleet.run("logs")
        assert code == 0, out
        if len(out.splitlines()) >= count or time.monotonic() > deadline:
            return out
        time.sleep(1)


@ONE_TRANSPORT
@pytest.mark.integration
def test_logs_of_two_services_merged_with_prefixes_and_masked(fleet: Fleet) -> None:
    fleet.deploy()
    out = wait_for_lines(fleet, 40)  # 2 hosts x 2 services x 2 replicas x 5 lines
    lines = out.splitlines()
    assert len(lines) == 40, out
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), out
    stamps = [m["stamp"] for m in parsed if m]
    assert stamps == sorted(stamps)  # RFC 3339 in UTC with nanoseconds sorts as text
    seen = {(m["host"], m["svc"], m["n"]) for m in parsed if m}
    assert seen == {(h, s, n) for h in fleet.hosts for s in ("api", "worker") for n in "12"}
    for m in parsed:
        assert m and m["text"].startswith(m["svc"] + " ")  # the prefix names its own lines
    assert f"s3cr3t-token-value-{fleet.app}" not in out
    assert out.count("token=[MASKED]") == 20

    code, only = fleet.run("logs", "worker", "--tail", "2", "--grep", "line 4")
    assert code == 0, only
    assert len(only.splitlines()) == 4 and "api" not in only.replace(fleet.app, "")

    code, none = fleet.run("logs", "--until", "1h")  # an hour ago: nothing was running
    assert code == 0 and none == ""

    code, _ = fleet.run("logs", "nosuch")
    assert code == 2


@pytest.mark.integration
def test_follow_survives_a_deploy_that_replaces_the_containers(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.deploy(lines=3, pause="0.1")
    wait_for_lines(fleet, 24)
    old = set().union(*(hostnames(c, fleet.app) for c in fleet.clients))
    log = tmp_path / "follow.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployer", "logs", *fleet.base, "--follow", "--since", "1h"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        try:
            # the follow has started (its first read printed the old replicas' lines)
            # before the deploy: a replacement is read from the follow's start, and on a
            # loaded machine the command can take seconds to get there
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                f"{h} line 2" in log.read_text() for h in old
            ):
                time.sleep(0.2)
            fleet.deploy(lines=3, pause="0.1", mark="2")  # every container replaced
            new = set().union(*(hostnames(c, fleet.app) for c in fleet.clients))
            assert new and not new & old
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                text = log.read_text()
                if all(f"{h} line 2" in text for h in new):
                    break
                time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    text = log.read_text()
    assert code == 0, text
    for h in new:  # each new replica's lines, each once
        for i in range(3):
            assert text.count(f"{h} line {i}") == 1, text


def test_time_arguments() -> None:
    assert time_arg(None, "--since", 1000.0) is None
    assert time_arg("10m", "--since", 1000.0) == 400.0
    assert time_arg("2026-11-29T14:00:00Z", "--since", 0) == time_arg(
        "2026-11-29T14:00:00", "--since", 0
    )
    with pytest.raises(InvalidInput, match="neither a duration nor a time"):
        time_arg("yesterday", "--since", 0)
