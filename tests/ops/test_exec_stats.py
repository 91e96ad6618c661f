"""`deployer exec` and `deployer stats` on two hosts (socket or SSH, and tcp+TLS)."""

from __future__ import annotations

import json

import pytest

from deployer import labels as L
from tests.ops.conftest import ONE_TRANSPORT, Fleet


@ONE_TRANSPORT
@pytest.mark.integration
def test_exec_returns_the_commands_exit_code_and_stats_lists_every_replica(
    fleet: Fleet, capfd: pytest.CaptureFixture[str]
) -> None:
    fleet.deploy()
    code, out = fleet.run("exec", "api", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert code == 3, out
    assert out == "out\n"
    assert "err" in capfd.readouterr().err

    # --host and --replica choose the container: its hostname is its short id.
    second = fleet.clients[1]
    want = second.api.containers(
        filters={"label": [f"{L.APP}={fleet.app}", f"{L.SERVICE}=worker", f"{L.REPLICA}=2"]}
    )[0]["Id"][:12]
    code, out = fleet.run(
        "exec", "--host", "2376", "--replica", "2", "worker", "--", "cat", "/etc/hostname"
    )
    assert (code, out) == (0, want + "\n")

    code, _ = fleet.run("exec", "--replica", "7", "worker", "--", "true")
    assert code == 2
    code, _ = fleet.run("exec", "worker")
    assert code == 2

    code, out = fleet.run("stats", "--format", "json")
    assert code == 0, out
    rows = json.loads(out)
    assert sorted((r["where"], r["service"], r["replica"]) for r in rows) == sorted(
        (h, s, n) for h in fleet.hosts for s in ("api", "worker") for n in (1, 2)
    )
    assert all(r["memory"] > 0 and r["memory_limit"] > 0 for r in rows), rows
    assert all(r["restarts"] == 0 for r in rows)
    code, text = fleet.run("stats")
    assert code == 0 and "api.1" in text and "worker.2" in text
