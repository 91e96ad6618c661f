"""`deployer unlock [-f FILE] [--env NAME] [--force]`.

A deploy killed hard (runner lost, kill -9) leaves its lock until ``rollout.lock_ttl``
expires. When the holder is a GitLab job, ``unlock`` asks the GitLab API for the job's
status and breaks the lock only when the job no longer runs. ``--force`` breaks any lock
after showing its holder. The lock of a running job is never broken without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from deployer.errors import EXIT_OK, Blocked
from deployer.ops import LockState


def describe(state: LockState, now: float | None = None) -> str:
    now = time.time() if now is None else now
    since = (
        f" since {time.strftime('%H:%M:%S', time.gmtime(state.since))} UTC" if state.since else ""
    )
    return f"{state.where}: held by {state.holder}{since}, expires in {state.expires - now:.0f}s"


def holder_ended(
    states: Sequence[LockState], environ: Mapping[str, str], say: Callable[[str], None]
) -> bool:
    """True when every holder is a GitLab job that GitLab reports as no longer running;
    ``Blocked`` (exit 4) when one still runs or is not a job GitLab can tell about."""
    from deployer.gitlab.jobs import job_of, job_state

    for holder in sorted({s.holder for s in states}):
        ref = job_of(holder, environ)
        if ref is None:
            raise Blocked(
                f"the deploy lock is held by {holder}, which is not a job of this GitLab "
                "server: the deployer cannot tell whether it still runs",
                hint="when you know it is gone, run `deployer unlock --force`",
            )
        job = job_state(ref, environ)
        if job.active:
            raise Blocked(
                f"the deploy lock is held by job {ref.job_id} of {ref.project}, which is "
                f"{job.status}: not breaking it",
                hint="wait for that job, or cancel it in GitLab and run `deployer unlock` again",
            )
        say(f"job {ref.job_id} of {ref.project} is {job.status}: its lock is stale")
    return True


def run(args: argparse.Namespace, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.ops import open_environment
    from deployer.report.log import JobLog

    env = dict(os.environ if environ is None else environ)
    manifest = load(args, env)
    log = JobLog(out)
    ops = open_environment(manifest, env)
    try:
        states = ops.lock_states()
        if not states:
            log.line(f"{manifest.app}/{manifest.environment.name}: no deploy lock is held")
            return EXIT_OK
        for s in states:
            log.line(describe(s))
        if args.force:
            log.line("--force: breaking the lock without asking GitLab")
        else:
            holder_ended(states, env, log.line)
        for what in ops.break_lock(states):
            log.line(f"removed {what}")
    finally:
        ops.close()
    return EXIT_OK
