"""Apply a plan to a swarm: locked, tasks before and after, each changed service through
Swarm's own rolling update wave by wave, and every change of the run journalled so a
failure puts back what the run changed (created services removed, updated ones given
their previous spec), newest first: the app never ends split between releases."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from deployer import labels as L
from deployer.errors import (
    DeployerError,
    DeployFailed,
    InvalidInput,
    PlanOutdated,
    RollbackFailed,
)
from deployer.journal import Journal
from deployer.leases import Held
from deployer.manifest.model import Task
from deployer.naming import service_name
from deployer.plan import Action, Observed, Plan, Step
from deployer.releases import new_release_id
from deployer.report.log import Log
from deployer.result import DeployResult, Outcome, StepRecord, StepStatus
from deployer.swarm import lock, records
from deployer.swarm import observe as obs
from deployer.swarm import spec as S
from deployer.swarm.api import POLL, SwarmApi
from deployer.swarm.converge import Verdict, same_spec, same_tasks, wait_converged
from deployer.swarm.lock import SwarmLease

REMOVED = "removed"  # the verdict of undoing a service this run created


def apply(
    sw: SwarmApi,
    plan: Plan,
    log: Log,
    *,
    lock_wait: float = 0.0,
    release: str | None = None,
    run_tasks: bool = True,
    record: bool = True,
    after_lock: Callable[[], None] | None = None,
) -> DeployResult:
    """Apply ``plan`` (made by ``SwarmTarget.plan()``), locked, and report what happened.
    ``after_lock`` runs once the lock is held, before any change (``check_current``: a
    run that waited for the lock raises ``PlanOutdated`` when its plan is outdated).

    The result's outcome says how it ended: DEPLOYED, NOTHING_TO_DO, ROLLED_BACK (the
    failed service rolled back by Swarm, every other change of this run undone) or
    ROLLBACK_FAILED. ``raise_for_outcome`` turns the last two into exit 1 / exit 5.
    """
    m = sw.manifest
    result = DeployResult(
        app=m.app,
        environment=m.environment.name,
        outcome=Outcome.NOTHING_TO_DO,
        plan=plan,
        release=release or new_release_id(sw.context),
        digests=dict(plan.digests),
        started_at=time.time(),
        url=m.environment.url,
    )
    start = time.monotonic()
    if len(plan.hosts) != 1:
        raise InvalidInput(
            f"a Swarm plan has one host (the manager), this one has {len(plan.hosts)}",
        )
    host_plan = plan.hosts[0]
    if not host_plan.changes:
        log.line("nothing to do: every service runs its planned image and configuration")
        result.hosts[sw.name] = Outcome.NOTHING_TO_DO.value
        result.seconds = time.monotonic() - start
        return result
    leases: Held[SwarmLease] = Held(
        m.rollout.lock_ttl,
        partial(lock.renew_lock, sw),
        partial(lock.release_lock, sw),
        lambda lease, text: log.line(text),
    )
    leases.add(lock.acquire_lock(sw, sw.context.holder, m.rollout.lock_ttl, lock_wait))
    leases.keep()
    try:
        if after_lock is not None:
            after_lock()
        _apply_locked(sw, plan, result, log, run_tasks=run_tasks, keep_release=not record)
        if result.outcome is Outcome.DEPLOYED and record:  # a restart records none
            records.record_release(sw, result)
    finally:
        leases.release()
    result.seconds = time.monotonic() - start
    result.hosts[sw.name] = result.outcome.value
    return result


def _apply_locked(
    sw: SwarmApi,
    plan: Plan,
    result: DeployResult,
    log: Log,
    *,
    run_tasks: bool = True,
    keep_release: bool = False,
) -> None:
    """``keep_release`` (a restart: the same spec, no release recorded): each service keeps
    the release it runs, the one `status` shows and `rollback --to` takes."""
    m = sw.manifest
    tasks = m.tasks if run_tasks else ()
    assert result.release is not None
    extra = records.release_labels(sw, result.release)
    host_plan = plan.hosts[0]
    services = {s["Spec"]["Name"]: s for s in sw.app_services()}
    recorded = records.releases(sw)
    result.previous_release = recorded[-1].id if recorded else None
    sw.ensure_networks(log)

    def task_failed(rec: StepRecord) -> bool:
        result.steps.append(rec)
        return rec.status is StepStatus.FAILED

    for task in tasks:
        if task.when == "before-deploy" and task.service in plan.digests:
            log.line(f"task {task.name} (before deploy, from {task.service}'s new image)")
            rec = run_task(sw, task, plan.digests[task.service], log, extra)
            if task_failed(rec):
                result.outcome = Outcome.ROLLED_BACK
                result.error = f"task {task.name} failed ({rec.detail}); nothing was changed"
                return

    undo: Journal[Verdict] = Journal()
    removals: list[Step] = []
    for wave in plan.waves:
        for name in wave:
            step = host_plan.step(name)
            if step.action is Action.UNCHANGED:
                continue
            try:
                current = services.get(service_name(m.app, name))
                labels = _kept_release(extra, current) if keep_release else extra
                rec, ok = _roll(sw, step, plan.digests[name], services, labels, undo, log)
            except DeployerError as e:
                # The engine refused the change (or went away): undo what this run did.
                rec, ok = (
                    sw.step(
                        "rollout",
                        f"rollout {name}",
                        name,
                        status=StepStatus.FAILED,
                        detail=e.message,
                    ),
                    False,
                )
                log.line(f"{name}: FAILED: {e.message}")
            result.steps.append(rec)
            if not ok:
                _fail(sw, result, f"{name}: {rec.detail}", undo, log)
                return
    removals = [s for s in host_plan.steps if s.action is Action.REMOVE]

    for task in tasks:
        if task.when == "after-deploy" and task.service in plan.digests:
            log.line(f"task {task.name} (after deploy)")
            rec = run_task(sw, task, plan.digests[task.service], log, extra)
            if task_failed(rec):
                _fail(sw, result, f"task {task.name} failed ({rec.detail})", undo, log)
                return

    for step in removals:
        t0 = time.monotonic()
        swarm_name = service_name(m.app, step.service)
        svc = services.get(swarm_name)
        if svc is not None:
            sw.remove_service(svc["ID"])
        log.line(f"{step.service}: removed (no longer in the manifest)")
        result.steps.append(
            sw.step(
                "prune",
                f"remove {step.service}",
                step.service,
                seconds=time.monotonic() - t0,
                detail="no longer in the manifest",
            )
        )
    result.outcome = Outcome.DEPLOYED


def _roll(
    sw: SwarmApi,
    step: Step,
    digest: str,
    services: Mapping[str, dict[str, Any]],
    extra: Mapping[str, str],
    undo: Journal[Verdict],
    log: Log,
) -> tuple[StepRecord, bool]:
    m = sw.manifest
    service = m.service(step.service)
    swarm_name = service_name(m.app, step.service)
    rec = sw.step("rollout", f"rollout {step.service}", step.service)
    t0 = time.monotonic()
    deadline = S.convergence_deadline(m, service, max(step.replicas_after, 1))
    current = services.get(swarm_name)
    refs = sw.ensure_files(service, log) if service.files else {}
    if current is None:
        spec = S.service_spec(m, service, digest, extra, refs=refs)
        log.line(f"{step.service}: create {swarm_name} ({step.replicas_after} x {digest})")
        sid = sw.create_service(spec)
        undo.record(step.service, partial(_restore, sw, step.service, sid, None))
        verdict = wait_converged(sw, sid, rolling=False, since=None, deadline=deadline)
    else:
        sid = current["ID"]
        prev = current["Spec"]
        prev_force = int(prev["TaskTemplate"].get("ForceUpdate", 0) or 0)
        spec = S.service_spec(m, service, digest, extra, force_update=prev_force, refs=refs)
        restart = step.reasons == ("restart",)  # `deployer restart`: always new tasks
        if step.action is Action.REPLACE and (restart or same_tasks(prev, spec)):
            # Nothing in the task spec changed (stopped tasks, adopted service): force.
            spec = S.service_spec(m, service, digest, extra, force_update=prev_force + 1, refs=refs)
        rolling = not same_tasks(prev, spec)
        since = (current.get("UpdateStatus") or {}).get("StartedAt")
        log.line(
            f"{step.service}: {step.action.value} ({'; '.join(step.reasons)}) "
            f"{step.strategy}, parallelism {service.update_config.parallelism}"
        )
        sw.update_service(sid, spec)
        undo.record(step.service, partial(_restore, sw, step.service, sid, prev))
        verdict = wait_converged(sw, sid, rolling=rolling, since=since, deadline=deadline)
    rec.seconds = time.monotonic() - t0
    if verdict.ok:
        rec.detail = f"{verdict.state} in {rec.seconds:.1f} s ({step.replicas_after} running)"
        log.line(f"{step.service}: {rec.detail}")
        return rec, True
    rec.status = StepStatus.FAILED
    rec.detail = f"{verdict.state}: {verdict.detail}" if verdict.detail else verdict.state
    rec.log_excerpt = sw.service_logs(sid)
    log.line(f"{step.service}: FAILED: {rec.detail}")
    return rec, False


def _fail(sw: SwarmApi, result: DeployResult, why: str, undo: Journal[Verdict], log: Log) -> None:
    """Put every service this run changed back to its previous spec, last first."""
    result.error = why
    problems = []
    for item in undo.drain():  # newest first
        t0 = time.monotonic()
        service = item.what
        rec = sw.step("rollback", f"rollback {service}", service, status=StepStatus.ROLLED_BACK)
        try:
            verdict = item.action()
        except DeployerError as e:
            verdict = Verdict(False, "error", e.message)
        rec.seconds = time.monotonic() - t0
        if verdict.ok:
            rec.detail = (
                "removed (created by this run)"
                if verdict.state == REMOVED
                else f"previous spec restored ({verdict.state})"
            )
        else:
            rec.status = StepStatus.FAILED
            rec.detail = f"restoring failed: {verdict.state}: {verdict.detail}"
            problems.append(f"{service}: {rec.detail}")
        log.line(f"{service}: rollback: {rec.detail}")
        result.steps.append(rec)
    for rec in result.steps:
        if rec.kind == "rollout" and rec.status is StepStatus.OK:
            rec.status = StepStatus.ROLLED_BACK
    if problems:
        result.outcome = Outcome.ROLLBACK_FAILED
        result.error = f"{why}; and rolling back failed: {'; '.join(problems)}"
    else:
        result.outcome = Outcome.ROLLED_BACK


def _restore(sw: SwarmApi, name: str, service_id: str, previous: dict[str, Any] | None) -> Verdict:
    """Undo this run's change of a service: remove it (``previous`` None: this run created
    it), or put its previous spec back."""
    if previous is None:
        sw.remove_service(service_id)
        return Verdict(True, REMOVED)
    current = sw.inspect(service_id)
    service = sw.manifest.service(name)
    deadline = S.convergence_deadline(sw.manifest, service, obs.replicas_of(current))
    if same_spec(current["Spec"], previous):
        # Swarm already rolled it back (failure_action rollback): check it runs.
        return wait_converged(
            sw,
            service_id,
            rolling=False,
            since=(current.get("UpdateStatus") or {}).get("StartedAt"),
            deadline=deadline,
        )
    since = (current.get("UpdateStatus") or {}).get("StartedAt")
    sw.update_service(service_id, previous)
    return wait_converged(
        sw,
        service_id,
        rolling=not same_tasks(current["Spec"], previous),
        since=since,
        deadline=deadline,
    )


def run_task(
    sw: SwarmApi, task: Task, digest: str, log: Log, extra: Mapping[str, str]
) -> StepRecord:
    m = sw.manifest
    service = m.service(task.service)
    name = f"{m.app}_task-{task.name}-{secrets.token_hex(3)}"[:63]
    spec = S.job_spec(m, service, digest, name, task.command, extra)
    step = sw.step("task", f"task {task.name}", task.service)
    start = sw.clock()
    sid = sw.create_service(spec)
    try:
        state, code, err = "", None, ""
        while True:
            tasks = sw.tasks_of([sid], running=False)
            done = [
                t
                for t in tasks
                if t.get("Status", {}).get("State")
                in ("complete", "failed", "rejected", "shutdown", "orphaned")
            ]
            if done:
                st = done[0]["Status"]
                state = st["State"]
                code = (st.get("ContainerStatus") or {}).get("ExitCode")
                err = st.get("Err", "")
                break
            if sw.clock() - start > task.timeout:
                state = "timeout"
                break
            sw.sleep(POLL)
        output = sw.job_output(sid)
    finally:
        sw.remove_service(sid)
    step.seconds = sw.clock() - start
    for line in output.splitlines():
        log.line(f"  {task.name} | {line}")
    step.log_excerpt = "\n".join(output.splitlines()[-20:])
    if state == "complete":
        step.detail = f"exit 0 in {step.seconds:.1f} s"
        return step
    step.status = StepStatus.FAILED
    if state == "timeout":
        step.detail = f"did not finish within {task.timeout:.0f} s"
    else:
        step.detail = (
            f"{state}"
            + (f", exit {code}" if code is not None else "")
            + (f": {err}" if err else "")
        )
    return step


def error_for(result: DeployResult) -> DeployerError | None:
    """Exit 1 for a deploy that failed and was rolled back, 5 when undoing failed too."""
    if result.outcome is Outcome.ROLLED_BACK:
        return DeployFailed(
            f"deploy of {result.app}/{result.environment} failed and was rolled back: "
            f"{result.error}",
            hint="see the failed step's log above; the previous release still runs",
        )
    if result.outcome is Outcome.ROLLBACK_FAILED:
        return RollbackFailed(
            f"deploy of {result.app}/{result.environment} failed and rolling back failed: "
            f"{result.error}",
            hint="inspect `docker service ps` on the manager and fix by hand",
        )
    return None


def raise_for_outcome(result: DeployResult) -> None:
    """Raise ``error_for(result)``, if any."""
    error = error_for(result)
    if error is not None:
        raise error


def check_current(sw: SwarmApi, planned_from: Observed, observe: Callable[[], Observed]) -> None:
    """``PlanOutdated`` when the services are no longer those the plan was made from
    (``planned_from``; read again with ``observe``): the plan describes what ran before
    the deploy this run waited for, which changed a service the plan calls unchanged
    (this run would leave it as that deploy made it, and say it deployed) or already
    did what this plan would."""
    if _shape(observe()) != _shape(planned_from):
        m = sw.manifest
        raise PlanOutdated(
            f"the services of {m.app}/{m.environment.name} changed while this run waited for "
            "the lock (another deploy ran): the plan describes what ran before",
            hint="run it again: its plan is made from what runs now",
        )


def _shape(observed: Observed) -> frozenset[tuple[str, str, str, str]]:
    """What a plan is made of, per replica slot of each service: its image, its
    configuration and release (not whether its task runs now: Swarm restarts tasks)."""
    return frozenset(
        (c.id, c.image_digest or "", c.config_hash or "", c.release or "")
        for c in observed.containers
    )


def _kept_release(extra: dict[str, str], service: dict[str, Any] | None) -> dict[str, str]:
    """``extra`` with the release the service's spec says it runs (none: as it is)."""
    labels = ((service or {}).get("Spec") or {}).get("Labels") or {}
    kept = labels.get(L.RELEASE)
    return {**extra, L.RELEASE: kept} if kept else extra
