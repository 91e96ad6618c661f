"""The fleet: hosts in batches (a count or a percentage, hosts of a batch in parallel, a
canary first batch of one host that must stay healthy for a while), on each host the
services wave by wave (the services of a wave concurrently), and each service's replicas
``parallelism`` at a time with its strategy."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from deployer.engine import canonical_name
from deployer.errors import DeployerError, InvalidInput
from deployer.manifest.model import Service
from deployer.plan import Action, ObservedContainer, Step
from deployer.result import StepRecord, StepStatus
from deployer.rollout import hooks
from deployer.rollout.state import (
    DEFAULT_GRACE,
    DEFAULT_MONITOR,
    NotStarted,
    RunState,
    StepFailure,
    grace_of,
    short,
)
from deployer.rollout.strategies import Item, monitor, retire, start_first, stop_first


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


class _HostWaves:
    """One host's waves: the errors of its services and the watches still running."""

    def __init__(self, r: RunState, host: str) -> None:
        self.r = r
        self.host = host
        self.errors: list[BaseException] = []
        self.watches: list[_Watch] = []
        self._lock = threading.Lock()

    def fail(self, e: BaseException) -> None:
        """A service failed: no other service of this host starts from now on."""
        with self._lock:
            self.errors.append(e)
        self.r.runs[self.host].halt.set()

    def watch(self, w: _Watch, thread: threading.Thread) -> None:
        w.thread = thread
        with self._lock:
            self.watches.append(w)
        thread.start()

    def first_error(self) -> BaseException | None:
        """The cause: a service that failed, not one that was not started because of it."""
        causes = [e for e in self.errors if not isinstance(e, NotStarted)] or self.errors
        return causes[0] if causes else None

    def end_watches(self) -> None:
        """Wait for every watch, then write what they said in one section."""
        for w in self.watches:
            if w.thread is not None:
                w.thread.join()
        lines = [text for w in self.watches for text in w.lines]
        if lines:
            r = self.r
            where = f" on {self.host}" if len(r.order) > 1 else ""
            r.write_section(
                f"watch_{r.order.index(self.host) + 1}",
                f"Watching the new containers{where}",
                lines,
            )


@dataclass
class _Watch:
    """A switched service: watched for ``update_config.monitor`` after its switch, beside
    the next waves; then what it removes retires."""

    svc: Service
    step: Step
    rec: StepRecord
    switched: list[tuple[Item, str]]
    current: Sequence[ObservedContainer]
    lines: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None


def _roll_host(r: RunState, host: str) -> None:
    """Waves in order; the services of a wave are independent and roll concurrently (their
    starts at most ``START_PARALLEL`` at once). The next wave begins once every service of
    this one has switched; the watch after a switch runs on beside the next waves, so a
    deploy waits for one watch, not one per wave. Any failure starts nothing more, and the
    host ends (and raises it) once every watch has ended."""
    steps = host_plan(r, host).steps
    waves = _HostWaves(r, host)
    try:
        for wave in range(max((s.wave for s in steps), default=-1) + 1):
            todo = [s for s in steps if s.wave == wave and s.changes]
            if waves.errors:
                break
            if len(todo) == 1:
                _roll_guarded(r, host, todo[0], waves, alone=True)
                continue
            threads = [
                threading.Thread(target=_roll_guarded, args=(r, host, s, waves)) for s in todo
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        waves.end_watches()
    err = waves.first_error()
    if err is not None:
        raise err
    restart_dependents(r, host, steps)


def restart_dependents(r: RunState, host: str, steps: Sequence[Step]) -> None:
    """``depends_on: {db: {restart: true}}``: a service the run left as it was restarts when
    the run replaced a service it depends on so (as docker compose does)."""
    replaced = {s.service for s in steps if s.changes and s.action is not Action.REMOVE}
    for svc in r.manifest.services:
        why = sorted(set(svc.depends_restart) & replaced)
        if not why or svc.name in replaced:
            continue
        for c in r.observed[host].of_service(svc.name):
            if not c.running:
                continue
            rec = r.step(host, f"restart {svc.name}", "rollout", svc.name)
            hooks.restart(r, host, svc, c.id, c.name, grace_of(svc))
            r.done(rec, detail=f"{', '.join(why)} replaced (depends_on restart: true)")
            r.line(f"{c.name}: restarted ({', '.join(why)} replaced)", host)


def _roll_guarded(
    r: RunState, host: str, step: Step, waves: _HostWaves, *, alone: bool = False
) -> None:
    if not alone:
        r.buffer.concurrent = True  # this thread's service rolls beside others
    try:
        if waves.errors or r.cancelled.is_set():
            return  # a service of the host failed: start nothing more
        watch = _roll_service(r, host, step, waves)
    except BaseException as e:  # noqa: BLE001 - re-raised by the host's thread
        waves.fail(e)
        return
    if watch is not None:
        waves.watch(watch, threading.Thread(target=_watched, args=(r, host, watch, waves)))


def _watched(r: RunState, host: str, watch: _Watch, waves: _HostWaves) -> None:
    r.buffer.lines = watch.lines  # written in the host's watch section at its end
    try:
        _end_service(r, host, watch, waves)
    finally:
        r.buffer.lines = None


def _monitor_seconds(svc: Service) -> float:
    seconds = svc.update_config.monitor
    return DEFAULT_MONITOR if seconds is None else seconds


def _end_service(r: RunState, host: str, w: _Watch, waves: _HostWaves) -> None:
    """After the switch: the watch, then the replicas the service no longer has retire."""
    try:
        monitor(r, host, w.svc, w.switched)
        grace = grace_of(w.svc)
        for c in w.current:
            if c.id in w.step.remove:
                retire(r, host, c, grace)
        r.runs[host].switched = True
        r.done(w.rec, detail=f"{short(w.step.old_digest)} → {short(w.step.new_digest)}")
    except StepFailure as e:
        r.done(w.rec, StepStatus.FAILED, e.message)
        w.rec.log_excerpt = e.excerpt[-4000:]
        waves.fail(e)
    except DeployerError as e:
        r.done(w.rec, StepStatus.FAILED, e.message)
        waves.fail(e)
    except BaseException as e:  # noqa: BLE001 - re-raised by the host's thread
        waves.fail(e)


def _roll_service(r: RunState, host: str, step: Step, waves: _HostWaves) -> _Watch | None:
    """The service up to its switch; the watch to run after it, if it has one."""
    with r.service_section(host, step.service):
        watch = _roll_service_steps(r, host, step)
        if watch is None or _monitor_seconds(watch.svc) > 0:
            return watch
        _end_service(r, host, watch, waves)  # no watch: it ends in its own section
        return None


def _roll_service_steps(r: RunState, host: str, step: Step) -> _Watch | None:
    """Up to the switch of every replica; the rest (watch, retire) is the returned watch."""
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
            return None
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
    except StepFailure as e:
        r.done(rec, StepStatus.FAILED, e.message)
        rec.log_excerpt = e.excerpt[-4000:]
        raise
    except DeployerError as e:
        r.done(rec, StepStatus.FAILED, e.message)
        raise
    return _Watch(svc, step, rec, switched, current)
