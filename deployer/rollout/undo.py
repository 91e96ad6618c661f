"""A failed run: every host it touched undoes its journal, newest host first, so the
fleet never ends split between versions; the result and the error say how it ended."""

from __future__ import annotations

from functools import partial

from deployer.errors import DeployerError, DeployFailed, RollbackFailed
from deployer.plan import Action
from deployer.result import Outcome, StepStatus
from deployer.rollout.state import RunState


def rollback_all(r: RunState, cause: DeployerError) -> None:
    r.result.error = cause.message
    touched = [h for h in reversed(r.order) if r.runs[h].journal]
    r.line(f"FAILED: {cause.message}")
    if not touched:
        r.result.outcome = Outcome.ROLLED_BACK
        r.result.digests = _digests_running(r)
        r.error = DeployFailed(
            f"{cause.message}; nothing was changed",
            hint=cause.hint or "fix the cause and deploy again",
        )
        for host in r.order:
            r.result.hosts[host] = "unchanged"
        return
    failures: list[str] = []
    with r.log.section("rollback", "Rolling back every change of this run"):
        for host in touched:
            rec = r.step(host, "rollback", "rollback")
            errors = r.runs[host].journal.undo(partial(r.host_line, host))
            if errors:
                failures.extend(f"{host}: {e}" for e in errors)
                r.done(rec, StepStatus.FAILED, "; ".join(errors))
                r.result.hosts[host] = "rollback-failed"
            else:
                r.done(rec, StepStatus.ROLLED_BACK, "previous containers serving again")
                r.result.hosts[host] = "rolled-back"
    for s in r.result.steps:
        if s.kind == "rollout" and s.status is StepStatus.OK:
            s.status = StepStatus.ROLLED_BACK
    if failures:
        r.result.outcome = Outcome.ROLLBACK_FAILED
        r.error = RollbackFailed(
            f"{cause.message}; the rollback failed too: " + "; ".join(failures[:5]),
            hint="look at the hosts: `deployer status` shows what runs where",
        )
    else:
        r.result.outcome = Outcome.ROLLED_BACK
        r.result.digests = _digests_running(r)
        r.error = DeployFailed(
            f"{cause.message}; rolled back, the previous version is serving",
            hint=cause.hint or "see the failed container's logs above",
        )


def _digests_running(r: RunState) -> dict[str, str]:
    """After a rollback: per service the digest that runs again (what the plan found),
    not the one that failed; a service that was not running before is left out."""
    out: dict[str, str] = {}
    for hp in r.plan.hosts:
        for s in hp.steps:
            if s.service in out or s.action is Action.REMOVE:
                continue
            if s.action is Action.UNCHANGED and s.service in r.plan.digests:
                out[s.service] = r.plan.digests[s.service]
            elif s.old_digest:
                out[s.service] = s.old_digest
    return out
