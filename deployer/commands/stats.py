"""`deployer stats [--watch] [--format text|json]`.

CPU, memory (of its limit), network and restart count of every running replica of the
app on every host (or in its Swarm), one table; ``--watch`` prints it again every few
seconds until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TextIO

from deployer.errors import EXIT_OK
from deployer.ops import StatRow
from deployer.requests import StatsRequest

WATCH_EVERY = 5.0


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{n}B"


def render(rows: Sequence[StatRow]) -> str:
    from deployer.report.log import format_table

    table = [
        [
            r.where,
            f"{r.service}.{r.replica}",
            r.state,
            "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}%",
            f"{_size(r.memory)} / {_size(r.memory_limit)}"
            + (f" ({r.memory / r.memory_limit * 100:.0f}%)" if r.memory_limit else ""),
            f"{_size(r.net_rx)} / {_size(r.net_tx)}",
            r.restarts,
        ]
        for r in rows
    ]
    headers = ["host", "replica", "state", "cpu", "memory (of limit)", "net rx / tx", "restarts"]
    return format_table(table, headers) if table else "(nothing of this app runs)\n"


def run(req: StatsRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.commands.logs import stop_on_signals
    from deployer.ops import open_for_reading, reached_all

    env = dict(os.environ if environ is None else environ)
    manifest = load(req, env)
    ops = open_for_reading(manifest, env)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            while True:
                rows = ops.stats()
                if req.format == "json":
                    out.write(json.dumps([dataclasses.asdict(r) for r in rows]) + "\n")
                else:
                    out.write(render(rows))
                out.flush()
                if not req.watch or stop.wait(WATCH_EVERY):
                    break
                out.write("\n")
    finally:
        ops.close()
    reached_all(ops.unreachable)
    return EXIT_OK
