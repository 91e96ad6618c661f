"""`deployer events [--since 1h] [--until T]`.

What happened to the app's containers on every host (or the swarm manager's node): created,
started, died (with the exit code), OOM-killed, killed, restarted, health changed,
destroyed; with host and time, read from the engines' event logs in one bounded request.
An engine keeps only its most recent events (256 on Docker 20.10 to 27), in memory: on a
busy host, or after the engine restarted, older ones are gone; what the containers' own
state and a swarm's task history still hold is added (``deployer.ops.history``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from deployer.errors import EXIT_OK
from deployer.requests import EventsRequest


def run(req: EventsRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.commands.logs import time_arg
    from deployer.ops import open_for_reading, reached_all
    from deployer.report.log import format_table

    env = dict(os.environ if environ is None else environ)
    now = time.time()
    since = time_arg(req.since or "1h", "--since", now) or now - 3600
    until = time_arg(req.until, "--until", now) or now
    manifest = load(req, env)
    ops = open_for_reading(manifest, env)
    try:
        found = ops.events(since, until)
    finally:
        ops.close()
    rows = [
        [
            datetime.fromtimestamp(e.time_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            e.where,
            f"{e.service}.{e.replica}",
            e.action,
            e.detail,
        ]
        for e in found
    ]
    out.write(
        format_table(rows, ["time (UTC)", "host", "replica", "event", "detail"])
        if rows
        else "(no events of this app in that time)\n"
    )
    out.flush()
    reached_all(ops.unreachable)
    return EXIT_OK
