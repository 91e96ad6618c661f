"""`logs --follow`'s reading loop against a scripted environment (no engine): a
replacement's lines come out once, even those it wrote long before it became a replica."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from deployer.commands.logs import OVERLAP_NS, Printer, follow
from deployer.ops import Operations, ReplicaLog, stamp_of

T0 = 1_800_000_000 * 1_000_000_000  # a fixed time (ns)


class Scripted:
    """``logs`` answers from a script of rounds: the replicas' whole lines at each read."""

    def __init__(
        self, rounds: list[list[tuple[str, list[tuple[int, str]]]]], stop: threading.Event
    ):
        self.rounds = rounds
        self.reads = 0
        self.stop = stop

    def logs(self, services: Sequence[str], *, since: float | None, **_: Any) -> list[ReplicaLog]:
        at = min(self.reads, len(self.rounds) - 1)
        self.reads += 1
        if self.reads >= 2 * len(self.rounds):
            self.stop.set()
        floor = stamp_of(int((since or 0) * 1e9))
        out = []
        for source, lines in self.rounds[at]:
            picked = [(stamp_of(ns), text) for ns, text in lines if stamp_of(ns) >= floor]
            out.append(
                ReplicaLog("h", "web", 1, source, [s for s, _ in picked], [t for _, t in picked])
            )
        return out


def test_a_replacement_is_read_from_the_start_of_the_follow() -> None:
    stop = threading.Event()
    old = [(T0 + 1, "old 1")]
    late = T0 + 10 * OVERLAP_NS  # the old container went on printing long after
    # The replacement printed at T0 + 2 but became a replica (was listed) only after
    # the old one's line at ``late``: further back than the overlap window reaches.
    new = [(T0 + 2, "new 1"), (late + 1, "new 2")]
    rounds = [
        [("old", old)],
        [("old", [*old, (late, "old 2")])],
        [("old", [*old, (late, "old 2")]), ("new", new)],
    ]
    ops = Scripted(rounds, stop)
    out = io.StringIO()
    follow(cast(Operations, ops), [], Printer(out, set(), False, None), T0, stop, poll=0)
    text = [line.rsplit(" ", 2)[-2:] for line in out.getvalue().splitlines()]
    assert sorted(" ".join(t) for t in text) == ["new 1", "new 2", "old 1", "old 2"]


def test_ctrl_c_before_the_follow_started_ends_it_with_exit_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/operations.md: "Ctrl-C (or SIGTERM) ends it with exit 0". A Ctrl-C during
    the first read (connecting to the hosts takes seconds over SSH) was a
    KeyboardInterrupt: "error: interrupted", exit 130."""
    from deployer import ops
    from deployer.cli import main

    class FirstReadInterrupted:
        reads = 0
        unreachable = ()

        def logs(self, services: Sequence[str], **_: Any) -> list[ReplicaLog]:
            self.reads += 1
            if self.reads == 1:
                os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, now
            return []

        def close(self) -> None:
            pass

    fake = FirstReadInterrupted()
    monkeypatch.setattr(ops, "open_environment", lambda manifest, env, **_: fake)
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        "app: uxlogs\nenvironments: {production: {hosts: ['unix:///nonexistent.sock']}}\n"
        "services: {web: {image: 'registry.example.com/web:1'}}\n"
    )
    out = io.StringIO()
    code = main(["logs", "-f", str(manifest), "--follow"], out)
    assert code == 0, capsys.readouterr().err
    assert fake.reads <= 2  # it stopped at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
