"""A deploy blocked by a lock whose GitLab job has ended breaks it, saying so.

Before a deploy, rollback or restart waits for the lock or fails on it, the lock's holder
is checked as `deployer unlock` checks it: when GitLab reports every holder's job as no
longer running, the lock is stale and is broken. Anything GitLab cannot tell (no token, no
answer, a holder that is not a job, a job that runs) leaves the lock alone; the deploy
then waits or fails as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from deployer.errors import Blocked, DeployerError
from deployer.ops import LockState, Operations


def describe(state: LockState, now: float | None = None) -> str:
    now = time.time() if now is None else now
    since = (
        f" since {time.strftime('%H:%M:%S', time.gmtime(state.since))} UTC" if state.since else ""
    )
    what = f"edge proxy lock {state.key} " if state.key else ""
    return (
        f"{state.where}: {what}held by {state.holder}{since}, expires in {state.expires - now:.0f}s"
    )


def by_lock(states: Sequence[LockState]) -> list[list[LockState]]:
    """The states grouped by lock (the deploy lock first, then each edge proxy's): each
    lock is judged by its own holders, so a running job that holds one of them keeps only
    that one."""
    groups: dict[str, list[LockState]] = {}
    for s in states:
        groups.setdefault(s.key, []).append(s)
    return [groups[k] for k in sorted(groups)]


def holder_ended(
    states: Sequence[LockState], environ: Mapping[str, str], say: Callable[[str], None]
) -> bool:
    """True when every holder is a GitLab job that GitLab reports as no longer running;
    ``Blocked`` (exit 4) when one still runs or is not a job GitLab can tell about."""
    from deployer.gitlab.jobs import job_of, job_state

    lock = f"the edge proxy lock {states[0].key}" if states and states[0].key else "the deploy lock"
    for holder in sorted({s.holder for s in states}):
        ref = job_of(holder, environ)
        if ref is None:
            raise Blocked(
                f"{lock} is held by {holder}, which is not a job of this GitLab "
                "server: the deployer cannot tell whether it still runs",
                hint="when you know it is gone, run `deployer unlock --force`",
            )
        job = job_state(ref, environ)
        if job.active:
            raise Blocked(
                f"{lock} is held by job {ref.job_id} of {ref.project}, which is "
                f"{job.status}: not breaking it",
                hint="wait for that job, or cancel it in GitLab and run `deployer unlock` again",
            )
        say(f"job {ref.job_id} of {ref.project} is {job.status}: its lock is stale")
    return True


def break_stale_lock(
    ops: Operations, environ: Mapping[str, str], own_holder: str, say: Callable[[str], None]
) -> bool:
    """True when a stale lock was found and broken."""
    if not environ.get("CI_SERVER_URL"):
        return False
    try:
        groups = by_lock([s for s in ops.lock_states() if s.holder != own_holder])
    except DeployerError as e:
        say(f"the deploy lock stays: {e.message}")
        return False
    broken = False
    for states in groups:
        try:
            holder_ended(states, environ, say)
        except DeployerError as e:
            say(f"the lock stays: {e.message}")
            continue
        for s in states:
            say(f"stale {'lock' if s.key else 'deploy lock'}: {describe(s)}")
        for what in ops.break_lock(states):
            say(f"removed {what}")
        broken = True
    return broken
