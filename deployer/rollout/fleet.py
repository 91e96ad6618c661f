"""The fleet: hosts in batches (a count or a percentage, hosts of a batch in parallel, a
canary first batch of one host that must stay healthy for a while), on each host the
services wave by wave (the services of a wave concurrently), and each service's replicas
``parallelism`` at a time with its strategy."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from deployer.engine import canonical_name
from deployer.errors import DeployerError, InvalidInput
from deployer.plan import Action, Step
from deployer.result import StepStatus
from deployer.rollout.state import DEFAULT_GRACE, RunState, StepFailure, grace_of, short
from deployer.rollout.strategies import Item, monitor, retire, start_first, stop_first

# Services of one wave rolling at once on one host: a large wave on a small host would
# otherwise start every new container together and starve their health checks.
WAVE_PARALLEL = 4


def batches(hosts: Sequence[str], spec: str, canary: bool) -> list[list[str]]:
    """Split hosts (already in their fixed order) into batches.

    ``spec`` is a count ("2") or a percentage ("25%") of the hosts, at least one.
    With a canary the first batch is a single host.
    """
    if not hosts:
        return []
    spec = spec.strip()
    try:
        pct = spec.endswith("%")
        size = math.ceil(len(hosts) * float(spec[:-1]) / 100) if pct else int(spec)
    except ValueError as e:
        raise InvalidInput(
            f"rollout.batch: {spec!r} is neither a count nor a percentage",
            hint='write a number of hosts ("2") or a percentage ("25%")',
        ) from e
    size = max(1, size)
    rest = list(hosts)
    out: list[list[str]] = []
    if canary:
        out.append([rest.pop(0)])
    while rest:
        out.append(rest[:size])
        rest = rest[size:]
    return out


@dataclass(frozen=True)
class HostPlanView:
    steps: tuple[Step, ...]

    @property
    def changes(self) -> bool:
        return any(s.changes for s in self.steps)


def host_plan(r: RunState, host: str) -> HostPlanView:
    hp = next(h for h in r.plan.hosts if h.host == host)
    return HostPlanView(hp.steps)


def roll_fleet(r: RunState) -> None:
    pol = r.manifest.rollout
    changed = [h for h in r.order if host_plan(r, h).changes]
    groups = batches(changed, pol.batch, pol.canary is not None and len(changed) > 1)
    for i, group in enumerate(groups):
        r.check_cancel()
        if len(groups) > 1:
            r.line(f"batch {i + 1}/{len(groups)}: {', '.join(group)}")
        r.hosts_in_parallel = len(group) > 1
        try:
            r.parallel(group, partial(_roll_host, r))
        finally:
            r.hosts_in_parallel = False
        failed = [(h, r.runs[h].failed) for h in group if r.runs[h].failed]
        if failed:
            host, err = failed[0]
            assert err is not None
            raise err
        for host in group:
            r.result.hosts[host] = "switched"
        if i == 0 and pol.canary is not None and len(groups) > 1:
            _canary(r, group[0], pol.canary)
        elif i < len(groups) - 1 and pol.batch_pause > 0:
            r.line(f"pause {pol.batch_pause:g}s before the next batch")
            r.sleep(pol.batch_pause)


def _canary(r: RunState, host: str, seconds: float) -> None:
    engine = r.hosts[host]
    rec = r.step(host, "canary", "rollout")
    r.line(f"canary: {host} must stay healthy for {seconds:g}s", host)
    end = r.wall() + seconds
    while True:
        for cid in r.runs[host].new_containers:
            look = engine.health_now(cid)
            # "starting": Docker has no verdict yet (its first check is still due); the
            # container passed the deployer's own run of that check to get here
            if not look.healthy and look.status != "starting":
                r.done(rec, StepStatus.FAILED, look.status)
                raise StepFailure(
                    f"{host}: canary container {cid[:12]} became {look.status}",
                    excerpt=look.detail,
                )
        if r.wall() >= end:
            break
        r.sleep(min(1.0, max(end - r.wall(), 0.0)))
    r.done(rec, detail=f"healthy for {seconds:g}s")


def _roll_host(r: RunState, host: str) -> None:
    """Waves in order; the services of a wave are independent and roll concurrently."""
    steps = host_plan(r, host).steps
    for wave in range(max((s.wave for s in steps), default=-1) + 1):
        todo = [s for s in steps if s.wave == wave and s.changes]
        if len(todo) <= 1:
            for step in todo:
                _roll_service(r, host, step)
            continue
        errors: list[BaseException] = []
        slots = threading.BoundedSemaphore(WAVE_PARALLEL)
        threads = [
            threading.Thread(target=_roll_guarded, args=(r, host, s, errors, slots)) for s in todo
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]


def _roll_guarded(
    r: RunState,
    host: str,
    step: Step,
    errors: list[BaseException],
    slots: threading.BoundedSemaphore,
) -> None:
    r.buffer.concurrent = True  # this thread's service rolls beside others
    with slots:  # at most WAVE_PARALLEL services of a wave at once on a host
        if errors or r.cancelled.is_set():
            return  # a service of the wave failed: start nothing more
        try:
            _roll_service(r, host, step)
        except BaseException as e:  # noqa: BLE001 - re-raised by the host's thread
            errors.append(e)


def _roll_service(r: RunState, host: str, step: Step) -> None:
    with r.service_section(host, step.service):
        _roll_service_steps(r, host, step)


def _roll_service_steps(r: RunState, host: str, step: Step) -> None:
    run = r.runs[host]
    name = step.service
    rec = r.step(
        host, f"{'rollback' if r.kind == 'rollback' else 'rollout'} {name}", "rollout", name
    )
    obs = r.observed[host]
    current = obs.of_service(name)
    try:
        if step.action is Action.REMOVE:
            for c in current:
                if c.id in step.remove:
                    retire(r, host, c, DEFAULT_GRACE)
            r.done(rec, detail=f"removed {len(step.remove)} container(s)")
            return
        svc = r.manifest.service(name)
        want = step.replicas_after
        items: list[Item] = []
        for i in range(want):
            old = current[i] if i < len(current) else None
            if old is not None and old.id not in step.replace:
                continue  # unchanged replica
            canon = svc.container_name or canonical_name(
                r.manifest.app, r.manifest.environment.name, name, i + 1
            )
            items.append(Item(i + 1, canon, old))
        par = max(1, svc.update_config.parallelism or len(items) or 1)
        strategy = step.strategy
        r.line(
            f"{name}: {strategy}, {len(items)} replica(s) to roll"
            + (f", {len(step.remove)} to remove" if step.remove else ""),
            host,
        )
        switched: list[tuple[Item, str]] = []
        for g in range(0, len(items), par):
            r.check_cancel()
            if g and svc.update_config.delay > 0:
                r.sleep(svc.update_config.delay)
            group = items[g : g + par]
            if strategy == "stop-first":
                new = stop_first(r, host, svc, step, group)
            else:
                new = start_first(r, host, svc, step, group)
            switched += zip(group, new, strict=True)
        monitor(r, host, svc, switched)
        grace = grace_of(svc)
        for c in current:
            if c.id in step.remove:
                retire(r, host, c, grace)
        run.switched = True
        r.done(rec, detail=f"{short(step.old_digest)} → {short(step.new_digest)}")
    except StepFailure as e:
        r.done(rec, StepStatus.FAILED, e.message)
        rec.log_excerpt = e.excerpt[-4000:]
        raise
    except DeployerError as e:
        r.done(rec, StepStatus.FAILED, e.message)
        raise
