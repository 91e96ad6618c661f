"""A deploy blocked by a lock whose GitLab job has ended breaks it, saying so.

Before a deploy, rollback or restart waits for the lock or fails on it, the lock's holder
is checked as `deployer unlock` checks it: when GitLab reports every holder's job as no
longer running, the lock is stale and is broken. Anything GitLab cannot tell (no token, no
answer, a holder that is not a job, a job that runs) leaves the lock alone; the deploy
then waits or fails as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from deployer.errors import DeployerError
from deployer.ops import Operations


def break_stale_lock(
    ops: Operations, environ: Mapping[str, str], own_holder: str, say: Callable[[str], None]
) -> bool:
    """True when a stale lock was found and broken."""
    from deployer.commands.unlock import describe, holder_ended

    if not environ.get("CI_SERVER_URL"):
        return False
    try:
        states = [s for s in ops.lock_states() if s.holder != own_holder]
        if not states:
            return False
        holder_ended(states, environ, say)
    except DeployerError as e:
        say(f"the deploy lock stays: {e.message}")
        return False
    for s in states:
        say(f"stale deploy lock: {describe(s)}")
    for what in ops.break_lock(states):
        say(f"removed {what}")
    return True
