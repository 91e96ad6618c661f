"""`deployer unlock [-f FILE] [--env NAME] [--force]`.

A deploy killed hard (runner lost, kill -9) leaves its lock until ``rollout.lock_ttl``
expires. When the holder is a GitLab job, ``unlock`` asks the GitLab API for the job's
status and breaks the lock only when the job no longer runs. ``--force`` breaks any lock
after showing its holder. The lock of a running job is never broken without ``--force``.

The lock of the environment's edge proxy (held while a deploy edits the proxy's config,
on each host) is shown and broken by the same rules, each lock judged by its own holder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from deployer.errors import EXIT_OK, Blocked
from deployer.ops.stale import by_lock, describe, holder_ended
from deployer.requests import UnlockRequest


def run(req: UnlockRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.ops import open_environment
    from deployer.report.log import JobLog

    env = dict(os.environ if environ is None else environ)
    manifest = load(req, env)
    log = JobLog(out)
    ops = open_environment(manifest, env)
    try:
        states = ops.lock_states()
        if not states:
            log.line(f"{manifest.app}/{manifest.environment.name}: no deploy lock is held")
            return EXIT_OK
        for s in states:
            log.line(describe(s))
        if req.force:
            log.line("--force: breaking the lock without asking GitLab")
        refused: Blocked | None = None
        for group in by_lock(states):  # each lock by its own holder
            if not req.force:
                try:
                    holder_ended(group, env, log.line)
                except Blocked as e:
                    refused = refused or e
                    continue
            for what in ops.break_lock(group):
                log.line(f"removed {what}")
        if refused is not None:
            raise refused
    finally:
        ops.close()
    return EXIT_OK
