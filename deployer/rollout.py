"""Apply a plan to one or more hosts: lock, pull, tasks, health-gated rollout, rollback.

Works through ``deployer.engine.HostEngine`` only, so the same code drives real Docker
hosts and the recording fake of the unit tests. The order of a deploy:

1. lock every host, in sorted order (two deploys sharing hosts cannot deadlock);
2. pull every image on every host (nothing has changed if a pull fails);
3. before-deploy tasks (on the first host); a failure changes nothing;
4. hosts in batches (a count or a percentage; hosts of a batch in parallel; a canary
   first batch of one host that must stay healthy for a while), services wave by wave,
   replicas ``parallelism`` at a time: start-first (new beside old, healthy, old out of
   the aliases, drain, stop) or stop-first (fixed host ports);
5. after-deploy tasks; then the release is recorded on every host, and retention runs.

Every change is journalled with its undo. Any failure stops the rollout and undoes the
journal of every host this run touched, newest first: the fleet never ends split
between versions. Locks are released at the end, also on failure.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from deployer import labels as L
from deployer.context import Context
from deployer.engine import (
    HostEngine,
    Lease,
    Release,
    canonical_name,
    keep_renewing,
    kept_name,
    lock_key,
    next_name,
    service_networks,
)
from deployer.errors import (
    Blocked,
    DeployerError,
    DeployFailed,
    InvalidInput,
    RollbackFailed,
    Unreachable,
)
from deployer.manifest.model import Manifest, RegistryAuth, Service, Task
from deployer.plan import Action, Leftover, Observed, ObservedContainer, Plan, Step
from deployer.proxy.switch import EdgeSwitch, public_urls
from deployer.releases import new_release_id
from deployer.report import log as _log
from deployer.report.log import Log
from deployer.result import DeployResult, Outcome, StepRecord, StepStatus

DEFAULT_GRACE = 10.0
# How long new containers are watched after the switch when update_config.monitor is
# not written (Swarm's own default); a crash, a restart or a failing healthcheck in that
# time rolls the deploy back. ``monitor: 0s`` turns the watch off.
DEFAULT_MONITOR = 5.0
# Services of one wave rolling at once on one host: a large wave on a small host would
# otherwise start every new container together and starve their health checks.
WAVE_PARALLEL = 4

PrintLog = _log.PrintLog  # callers without a job log import it here


class StepFailure(DeployerError):
    """One step of the rollout failed; the rollout turns it into a rollback."""

    def __init__(self, message: str, *, excerpt: str = "") -> None:
        super().__init__(message)
        self.excerpt = excerpt


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


@dataclass
class _Undo:
    what: str
    action: Callable[[], None]


@dataclass
class _HostRun:
    engine: HostEngine
    journal: list[_Undo] = field(default_factory=list)
    new_containers: list[str] = field(default_factory=list)
    failed: BaseException | None = None  # a DeployerError, or a bug raised in its thread
    switched: bool = False


@dataclass
class _Item:
    """One replica to roll: its canonical name, the container it replaces (if any)."""

    replica: int
    canonical: str
    old: ObservedContainer | None


class Rollout:
    """One deploy (or rollback) of ``plan`` to ``hosts``. Call ``run()`` once."""

    def __init__(  # noqa: PLR0913 (a whole run)
        self,
        manifest: Manifest,
        plan: Plan,
        hosts: Mapping[str, HostEngine],
        observed: Mapping[str, Observed],
        context: Context,
        log: Log,
        *,
        wait_lock: float = 0.0,
        kind: str = "deploy",
        release_id: str | None = None,
        auth_for: Callable[[str], RegistryAuth | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.manifest = manifest
        self.plan = plan
        self.hosts = dict(hosts)
        self.order = sorted(self.hosts)
        self.observed = observed
        self.context = context
        self.wait_lock = wait_lock
        self.kind = kind
        self.sleep = sleep
        self.wall = wall
        self.release_id = release_id or new_release_id(context, wall())
        self._auth_for = auth_for
        self.error: DeployerError | None = None
        self._log = log
        self._log_lock = threading.RLock()
        self._buffer = threading.local()  # .lines: a concurrent service's section
        self._hosts_in_parallel = False  # the hosts of the current batch roll at once
        self._result_lock = threading.Lock()
        self.runs = {name: _HostRun(self.hosts[name]) for name in self.order}
        # Set from outside (a SIGTERM when the job is cancelled): the rollout stops at the
        # next step and rolls back what it changed.
        self.cancelled = threading.Event()
        self.result = DeployResult(
            app=manifest.app,
            environment=manifest.environment.name,
            outcome=Outcome.NOTHING_TO_DO,
            plan=plan,
            release=None,
            digests=dict(plan.digests),
            started_at=wall(),
            url=manifest.environment.url or next(iter(public_urls(manifest)), None),
            hosts=dict.fromkeys(self.order, "unchanged"),
        )
        # The edge proxy, when services are public: routes switch inside start-first.
        self.edge = EdgeSwitch.for_rollout(manifest, self.hosts, self.line, context.holder)

    # -- output -------------------------------------------------------------------------

    def line(self, text: str, host: str | None = None) -> None:
        prefix = f"{host}: " if host and len(self.order) > 1 else ""
        buffered: list[str] | None = getattr(self._buffer, "lines", None)
        if buffered is not None:  # a service rolling beside others: its section comes whole
            buffered.append(prefix + text)
            return
        with self._log_lock:
            self._log.line(prefix + text)

    @contextmanager
    def _service_section(self, host: str, service: str) -> Iterator[None]:
        """One collapsible section per service rollout (per host).

        Services of a wave, and hosts of a batch, roll concurrently: their lines are kept
        and each section is written whole when its service is done, so concurrent
        sections never interleave. A service rolling alone writes its lines as they come.
        """
        verb = "rollback" if self.kind == "rollback" else "rollout"
        name = f"{verb}_{self.order.index(host) + 1}_{service}"
        where = f" on {host}" if len(self.order) > 1 else ""
        header = f"{verb.capitalize()} of {service}{where}"
        if not (self._hosts_in_parallel or getattr(self._buffer, "concurrent", False)):
            with self._log.section(name, header):
                yield
            return
        lines: list[str] = []
        self._buffer.lines = lines
        try:
            yield
        finally:
            self._buffer.lines = None
            with self._log_lock, self._log.section(name, header):
                for text in lines:
                    self._log.line(text)

    def _host_line(self, host: str, text: str) -> None:
        self.line(text, host)

    def _record(self, rec: StepRecord) -> StepRecord:
        with self._result_lock:
            self.result.steps.append(rec)
        return rec

    def _step(self, host: str, name: str, kind: str, service: str | None = None) -> StepRecord:
        return self._record(
            StepRecord(host=host, name=name, kind=kind, service=service, started_at=self.wall())
        )

    def _done(self, rec: StepRecord, status: StepStatus = StepStatus.OK, detail: str = "") -> None:
        rec.status = status
        rec.seconds = round(self.wall() - rec.started_at, 3)
        if detail:
            rec.detail = detail

    # -- the whole run --------------------------------------------------------------------

    def run(self) -> DeployResult:
        """Apply the plan. The result says what happened; ``self.error`` what to exit with."""
        leases: list[Lease] = []
        keeper: Callable[[], None] | None = None
        try:
            leases = self._lock_all()
            keeper = self._keep_leases(leases)
            if self.edge is not None:
                self.edge.claim()
            self._cleanup()
            if not any(s.changes for h in self.plan.hosts for s in h.steps):
                if self.edge is not None:
                    self.edge.prepare(self.observed)
                self.line("nothing to do: every service already runs what the manifest says")
                self.result.outcome = Outcome.NOTHING_TO_DO
                return self.result
            self._pull_all()
            self._check_cancel()
            self._infrastructure()
            if self.edge is not None:
                self.edge.prepare(self.observed)
            self._tasks("before-deploy")
            self._roll_fleet()
            self._tasks("after-deploy")
            self._check_cancel()
            self._finish()
        except Blocked as e:
            self._fail_early(e, Outcome.BLOCKED)
        except Unreachable as e:
            if self._touched():
                self._rollback_all(e)
            else:
                self._fail_early(e, Outcome.UNREACHABLE)
        except InvalidInput as e:
            self._fail_early(e, Outcome.INVALID)
        except DeployerError as e:
            self._rollback_all(e)
        except BaseException as e:
            # A bug or an interrupt in the middle: undo what this run changed, then let it
            # propagate (the CLI reports a bug with its traceback).
            if self._touched():
                self._rollback_all(DeployFailed(f"internal error: {e!r}"))
            raise
        finally:
            if keeper is not None:
                keeper()
            self._unlock_all(leases)
            self.result.seconds = round(self.wall() - self.result.started_at, 3)
        return self.result

    def _check_cancel(self) -> None:
        if self.cancelled.is_set():
            raise StepFailure("the deploy was cancelled")

    def _touched(self) -> bool:
        return any(r.journal for r in self.runs.values())

    def _fail_early(self, e: DeployerError, outcome: Outcome) -> None:
        self.result.outcome = outcome
        self.result.error = e.message
        self.error = e
        self.line(f"stopped before any change: {e.message}")

    # -- locks ----------------------------------------------------------------------------

    def _lock_all(self) -> list[Lease]:
        key = lock_key(self.manifest.app, self.manifest.environment.name)
        leases: list[Lease] = []
        try:
            for host in self.order:  # fixed order: no deadlock between deploys sharing hosts
                rec = self._step(host, f"lock {key}", "lock")
                try:
                    lease = self.hosts[host].acquire_lock(
                        key, self.context.holder, self.manifest.rollout.lock_ttl, self.wait_lock
                    )
                except DeployerError as e:
                    self._done(rec, StepStatus.FAILED, e.message)
                    raise
                leases.append(lease)
                self._done(rec, detail=f"held by {lease.holder}")
                self.line(f"lock {key} taken", host)
        except DeployerError:
            self._unlock_all(leases)
            raise
        return leases

    def _keep_leases(self, leases: list[Lease]) -> Callable[[], None]:
        """Renew the leases while this deploy runs (big pulls, slow health, a canary can
        outlast ``lock_ttl``); returns the stop."""
        ttl = self.manifest.rollout.lock_ttl

        def renew_all() -> None:
            for i, lease in enumerate(leases):
                try:
                    leases[i] = self.hosts[lease.host].renew_lock(lease, ttl)
                except DeployerError as e:
                    self.line(f"could not renew the deploy lock: {e.message}", lease.host)

        return keep_renewing(renew_all, ttl)

    def _unlock_all(self, leases: list[Lease]) -> None:
        for lease in reversed(leases):
            try:
                self.hosts[lease.host].release_lock(lease)
            except DeployerError as e:
                self.line(
                    f"could not release the lock (it expires by itself): {e.message}", lease.host
                )
        leases.clear()

    # -- leftovers of an interrupted deploy --------------------------------------------

    def _cleanup(self) -> None:
        """Under the lock, before any change: what an interrupted deploy left behind.

        Listed again now that no other deploy can run: current containers get back the
        aliases an interrupted drain took; leftovers leave the aliases, are drained, and
        are removed (a kept container of a release is stopped, not removed). Nothing of
        this is undone by a rollback: none of it belongs to a release.
        """
        app, env = self.manifest.app, self.manifest.environment.name
        for host in self.order:
            engine = self.hosts[host]
            found = list(engine.leftovers(app, env))
            if not found:
                continue
            rec = self._step(host, f"cleanup of {len(found)} leftover(s)", "cleanup")
            try:
                with self._log.section("cleanup", "Cleaning up after an interrupted deploy"):
                    self._clean_host(host, found)
            except DeployerError as e:
                self._done(rec, StepStatus.FAILED, e.message)
                raise
            self._done(rec, detail=", ".join(c.name for c in found))

    def _clean_host(self, host: str, found: Sequence[Leftover]) -> None:
        engine = self.hosts[host]
        for c in self.observed[host].containers:
            if not c.running or c.service not in self.manifest.service_names:
                continue
            names = dict(service_networks(self.manifest, self.manifest.service(c.service)))
            if names and engine.ensure_aliases(c.id, names):
                self.line(f"cleanup: {c.name} has its network aliases back", host)
        drain = False
        for lo in found:
            self.line(f"cleanup: {lo.name}: {lo.why}", host)
            if lo.running and engine.detach_aliases(lo.id):
                drain = True
                self.line(f"cleanup: {lo.name} is out of the network aliases", host)
        if drain and self.manifest.rollout.drain > 0:
            self.line(f"cleanup: draining for {self.manifest.rollout.drain:g}s", host)
            self.sleep(self.manifest.rollout.drain)
        for lo in found:
            if lo.keep:
                known = lo.service in self.manifest.service_names
                grace = self._grace_of(self.manifest.service(lo.service)) if known else None
                engine.stop(lo.id, DEFAULT_GRACE if grace is None else grace)
                self.line(f"cleanup: {lo.name} stopped (kept for rollback)", host)
            else:
                engine.remove(lo.id)
                self.line(f"cleanup: {lo.name} removed", host)

    # -- pulls ----------------------------------------------------------------------------

    def _auth(self, image: str) -> RegistryAuth | None:
        if self._auth_for is not None:
            return self._auth_for(image)
        registry = image.split("/", 1)[0] if "/" in image else "docker.io"
        for auth in self.manifest.registries:
            if auth.server.rstrip("/").split("://")[-1] == registry:
                return auth
        return None

    def _pulls_for(self, host: str) -> list[tuple[str, str]]:
        """(service, digest) this host needs: changed services, and task images."""
        hp = next(h for h in self.plan.hosts if h.host == host)
        wanted = {s.service for s in hp.steps if s.changes and s.action is not Action.REMOVE}
        if host == self.order[0]:
            wanted |= {t.service for t in self.manifest.tasks if t.service in self.plan.digests}
        return [(s, self.plan.digests[s]) for s in sorted(wanted) if s in self.plan.digests]

    def _pull_all(self) -> None:
        with self._log.section("pull", "Pulling images (by digest, before any change)"):
            self._parallel(self.order, self._pull_host)
            errors = [r.failed for r in self.runs.values() if r.failed]
            if errors:
                raise errors[0]

    def _pull_host(self, host: str) -> None:
        engine = self.hosts[host]
        for service, digest in self._pulls_for(host):
            rec = self._step(host, f"pull {service}", "pull", service)
            svc = self.manifest.service(service)
            try:
                engine.pull(digest, self._auth(svc.image), partial(self._host_line, host))
            except DeployerError as e:
                self._done(rec, StepStatus.FAILED, e.message)
                raise
            self._done(rec, detail=digest)
            self.line(f"{service}: image {_short(digest)} ready", host)

    def _parallel(self, hosts: Sequence[str], fn: Callable[[str], None]) -> None:
        """Run ``fn`` for each host in threads; failures land in each host's run."""

        def guarded(host: str) -> None:
            try:
                fn(host)
            except BaseException as e:  # noqa: BLE001 - re-raised by the main thread
                self.runs[host].failed = e

        if len(hosts) == 1:
            guarded(hosts[0])
            return
        threads = [threading.Thread(target=guarded, args=(h,), name=h) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _infrastructure(self) -> None:
        """The app's networks and named volumes, on every host (tasks need them too)."""
        for host in self.order:
            rec = self._step(host, "networks and volumes", "infrastructure")
            try:
                self.hosts[host].ensure_infrastructure(self.manifest)
            except DeployerError as e:
                self._done(rec, StepStatus.FAILED, e.message)
                raise
            shipped: list[str] = getattr(self.hosts[host], "shipped", [])
            self._done(rec, detail=f"shipped {', '.join(shipped)}" if shipped else "")
            if shipped:
                self.line(f"shipped {', '.join(shipped)}", host)

    # -- tasks ----------------------------------------------------------------------------

    def _tasks(self, when: str) -> None:
        tasks = [t for t in self.manifest.tasks if t.when == when]
        if not tasks or self.kind != "deploy":
            return
        host = self.order[0]
        for task in tasks:
            if task.service not in self.plan.digests:
                self.line(f"task {task.name} skipped: its service {task.service} is not deployed")
                continue
            self._run_task(host, task)

    def _run_task(self, host: str, task: Task) -> None:
        engine = self.hosts[host]
        svc = self.manifest.service(task.service)
        digest = self.plan.digests[task.service]
        rec = self._step(host, f"task {task.name}", "task", task.service)
        labels = {**self._labels(svc, digest, 0), L.ROLE: L.ROLE_TASK}
        with self._log.section(f"task_{task.name}", f"Task {task.name} ({task.when})"):
            self.line(f"task {task.name}: {' '.join(task.command)}", host)
            try:
                out = engine.run_task(
                    self.manifest,
                    svc,
                    digest,
                    task.command,
                    labels,
                    task.timeout,
                    lambda text: self.line(f"  | {text}", host),
                )
            except DeployerError as e:
                self._done(rec, StepStatus.FAILED, e.message)
                raise
        if out.exit_code != 0:
            self._done(rec, StepStatus.FAILED, f"exit code {out.exit_code}")
            rec.log_excerpt = out.output[-4000:]
            raise StepFailure(
                f"{host}: task {task.name} ({task.when}) failed with exit code {out.exit_code}",
                excerpt=out.output,
            )
        self._done(rec, detail=f"exit 0 in {out.seconds:.1f}s")

    # -- the fleet --------------------------------------------------------------------------

    def _roll_fleet(self) -> None:
        pol = self.manifest.rollout
        changed = [h for h in self.order if self._host_plan(h).changes]
        groups = batches(changed, pol.batch, pol.canary is not None and len(changed) > 1)
        for i, group in enumerate(groups):
            self._check_cancel()
            if len(groups) > 1:
                self.line(f"batch {i + 1}/{len(groups)}: {', '.join(group)}")
            self._hosts_in_parallel = len(group) > 1
            try:
                self._parallel(group, self._roll_host)
            finally:
                self._hosts_in_parallel = False
            failed = [(h, self.runs[h].failed) for h in group if self.runs[h].failed]
            if failed:
                host, err = failed[0]
                assert err is not None
                raise err
            for host in group:
                self.result.hosts[host] = "switched"
            if i == 0 and pol.canary is not None and len(groups) > 1:
                self._canary(group[0], pol.canary)
            elif i < len(groups) - 1 and pol.batch_pause > 0:
                self.line(f"pause {pol.batch_pause:g}s before the next batch")
                self.sleep(pol.batch_pause)

    def _canary(self, host: str, seconds: float) -> None:
        engine = self.hosts[host]
        rec = self._step(host, "canary", "rollout")
        self.line(f"canary: {host} must stay healthy for {seconds:g}s", host)
        end = self.wall() + seconds
        while True:
            for cid in self.runs[host].new_containers:
                look = engine.health_now(cid)
                # "starting": Docker has no verdict yet (its first check is still due); the
                # container passed the deployer's own run of that check to get here
                if not look.healthy and look.status != "starting":
                    self._done(rec, StepStatus.FAILED, look.status)
                    raise StepFailure(
                        f"{host}: canary container {cid[:12]} became {look.status}",
                        excerpt=look.detail,
                    )
            if self.wall() >= end:
                break
            self.sleep(min(1.0, max(end - self.wall(), 0.0)))
        self._done(rec, detail=f"healthy for {seconds:g}s")

    def _host_plan(self, host: str) -> HostPlanView:
        hp = next(h for h in self.plan.hosts if h.host == host)
        return HostPlanView(hp.steps)

    def _roll_host(self, host: str) -> None:
        """Waves in order; the services of a wave are independent and roll concurrently."""
        steps = self._host_plan(host).steps
        for wave in range(max((s.wave for s in steps), default=-1) + 1):
            todo = [s for s in steps if s.wave == wave and s.changes]
            if len(todo) <= 1:
                for step in todo:
                    self._roll_service(host, step)
                continue
            errors: list[BaseException] = []
            slots = threading.BoundedSemaphore(WAVE_PARALLEL)
            threads = [
                threading.Thread(target=self._roll_guarded, args=(host, s, errors, slots))
                for s in todo
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]

    def _roll_guarded(
        self,
        host: str,
        step: Step,
        errors: list[BaseException],
        slots: threading.BoundedSemaphore,
    ) -> None:
        self._buffer.concurrent = True  # this thread's service rolls beside others
        with slots:  # at most WAVE_PARALLEL services of a wave at once on a host
            if errors or self.cancelled.is_set():
                return  # a service of the wave failed: start nothing more
            try:
                self._roll_service(host, step)
            except BaseException as e:  # noqa: BLE001 - re-raised by the host's thread
                errors.append(e)

    def _labels(self, svc: Service, digest: str, replica: int) -> dict[str, str]:
        ctx = self.context
        mr = ctx.merge_request
        return {
            L.MANAGED: "true",
            L.APP: self.manifest.app,
            L.ENVIRONMENT: self.manifest.environment.name,
            L.SERVICE: svc.name,
            L.REPLICA: str(replica),
            L.RELEASE: self.release_id,
            L.DIGEST: digest,
            L.IMAGE: svc.image,
            L.CONFIG_HASH: svc.config_hash(),
            L.CONFIG_PARTS: json.dumps(svc.config_parts(), sort_keys=True),
            L.ROLE: L.ROLE_CURRENT,
            L.COMMIT: ctx.commit_sha,
            L.PIPELINE: ctx.pipeline_url,
            L.JOB: ctx.job_url,
            L.MR: f"!{mr.iid} {mr.title}" if mr else "",
            L.USER: ctx.user,
            L.TIME: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall())),
            L.PROJECT: ctx.project_path,
        }

    def _roll_service(self, host: str, step: Step) -> None:
        with self._service_section(host, step.service):
            self._roll_service_steps(host, step)

    def _roll_service_steps(self, host: str, step: Step) -> None:
        run = self.runs[host]
        name = step.service
        rec = self._step(
            host, f"{'rollback' if self.kind == 'rollback' else 'rollout'} {name}", "rollout", name
        )
        obs = self.observed[host]
        current = obs.of_service(name)
        try:
            if step.action is Action.REMOVE:
                for c in current:
                    if c.id in step.remove:
                        self._retire(host, c, DEFAULT_GRACE)
                self._done(rec, detail=f"removed {len(step.remove)} container(s)")
                return
            svc = self.manifest.service(name)
            want = step.replicas_after
            items: list[_Item] = []
            for i in range(want):
                old = current[i] if i < len(current) else None
                if old is not None and old.id not in step.replace:
                    continue  # unchanged replica
                canon = svc.container_name or canonical_name(
                    self.manifest.app, self.manifest.environment.name, name, i + 1
                )
                items.append(_Item(i + 1, canon, old))
            par = max(1, svc.update_config.parallelism or len(items) or 1)
            strategy = step.strategy
            self.line(
                f"{name}: {strategy}, {len(items)} replica(s) to roll"
                + (f", {len(step.remove)} to remove" if step.remove else ""),
                host,
            )
            switched: list[tuple[_Item, str]] = []
            for g in range(0, len(items), par):
                self._check_cancel()
                if g and svc.update_config.delay > 0:
                    self.sleep(svc.update_config.delay)
                group = items[g : g + par]
                if strategy == "stop-first":
                    new = self._stop_first(host, svc, step, group)
                else:
                    new = self._start_first(host, svc, step, group)
                switched += zip(group, new, strict=True)
            self._monitor(host, svc, switched)
            grace = svc.stop_grace_period if svc.stop_grace_period is not None else DEFAULT_GRACE
            for c in current:
                if c.id in step.remove:
                    self._retire(host, c, grace)
            run.switched = True
            self._done(rec, detail=f"{_short(step.old_digest)} → {_short(step.new_digest)}")
        except StepFailure as e:
            self._done(rec, StepStatus.FAILED, e.message)
            rec.log_excerpt = e.excerpt[-4000:]
            raise
        except DeployerError as e:
            self._done(rec, StepStatus.FAILED, e.message)
            raise

    def _do(self, host: str, what: str, undo: Callable[[], None]) -> None:
        self.runs[host].journal.append(_Undo(what, undo))

    def _create(
        self, host: str, svc: Service, step: Step, item: _Item, aliases: bool = True
    ) -> str:
        engine = self.hosts[host]
        digest = step.new_digest or self.plan.digests[svc.name]
        labels = self._labels(svc, digest, item.replica)
        if self.manifest.compose_project:  # `docker compose ps` still lists it: teams can go back
            labels[L.COMPOSE_PROJECT] = self.manifest.compose_project
            labels[L.COMPOSE_SERVICE] = svc.name
            labels[L.COMPOSE_NUMBER] = str(item.replica)
            labels[L.COMPOSE_ONEOFF] = "False"
            # the deployer's own hash: compose v2's `ps` lists the container, and its `up -d`
            # (whose hash differs) recreates it when a team takes the app back
            labels[L.COMPOSE_CONFIG_HASH] = svc.config_hash()
        cid = engine.create(
            self.manifest,
            svc,
            digest,
            item.replica,
            labels,
            next_name(item.canonical, self.release_id),
            anonymous_volumes_from=item.old.id if item.old else None,
            aliases=aliases,
        )
        self._do(host, f"remove new {item.canonical}", lambda: engine.remove(cid))
        self.runs[host].new_containers.append(cid)
        return cid

    def _gate(self, host: str, svc: Service, cid: str, item: _Item) -> None:
        engine = self.hosts[host]
        pol = self.manifest.rollout
        self.line(f"{item.canonical}: waiting until healthy (up to {pol.health_timeout:g}s)", host)
        hc = svc.healthcheck
        start_interval = hc.start_interval if hc is not None else None
        out = engine.wait_healthy(cid, pol.health_timeout, pol.healthy_after, start_interval)
        if not out.healthy:
            detail = out.detail.strip()
            self.line(f"{item.canonical}: new container is {out.status}", host)
            for text in detail.splitlines()[-25:]:
                self.line(f"  | {text}", host)
            raise StepFailure(
                f"{host}: {svc.name} replica {item.replica}: new container is {out.status}",
                excerpt=detail,
            )
        self.line(f"{item.canonical}: {out.status} after {out.seconds:.1f}s", host)

    def _start_first(self, host: str, svc: Service, step: Step, group: list[_Item]) -> list[str]:
        engine = self.hosts[host]
        new: list[str] = []
        for item in group:
            # Not reachable by the service name until healthy: no request meets it starting.
            cid = self._create(host, svc, step, item, aliases=False)
            engine.start(cid)
            new.append(cid)
            self.line(f"{item.canonical}: started the new container beside the old one", host)
        names = {net: list(a) for net, a in service_networks(self.manifest, svc)}
        for item, cid in zip(group, new, strict=True):
            self._gate(host, svc, cid, item)
            if names:
                engine.attach_aliases(cid, names)
        olds = [(item, item.old) for item in group if item.old is not None]
        running = [(item, old) for item, old in olds if old.running]
        drained = self._edge_switch(host, svc, group, new, drain=True)
        for _item, old in running:
            had = engine.detach_aliases(old.id)
            self._do(host, f"aliases of {old.name}", partial(engine.attach_aliases, old.id, had))
        if running and self.manifest.rollout.drain > 0 and not drained:
            self.line(f"draining the old container(s) for {self.manifest.rollout.drain:g}s", host)
            self.sleep(self.manifest.rollout.drain)
        self._switch(host, svc, group, new, stop_old=True)
        return new

    def _stop_first(self, host: str, svc: Service, step: Step, group: list[_Item]) -> list[str]:
        engine = self.hosts[host]
        grace = self._grace_of(svc)
        new = [self._create(host, svc, step, item) for item in group]
        for item in group:
            if item.old is not None and item.old.running:
                engine.stop(item.old.id, grace)
                self._do(host, f"restart {item.old.name}", partial(engine.start, item.old.id))
        for item, cid in zip(group, new, strict=True):
            engine.start(cid)
            self._do(host, f"stop new {item.canonical}", partial(engine.stop, cid, grace))
            self.line(f"{item.canonical}: stopped the old container, started the new one", host)
        for item, cid in zip(group, new, strict=True):
            self._gate(host, svc, cid, item)
        self._edge_switch(host, svc, group, new, drain=False)
        self._switch(host, svc, group, new, stop_old=False)
        return new

    def _monitor(self, host: str, svc: Service, switched: list[tuple[_Item, str]]) -> None:
        """After the switch, every new container must keep running, not restart, and pass
        its healthchecks for ``update_config.monitor`` seconds, or the deploy rolls back."""
        seconds = svc.update_config.monitor
        seconds = DEFAULT_MONITOR if seconds is None else seconds
        if seconds <= 0 or not switched:
            return
        self.line(f"{svc.name}: watching the new container(s) for {seconds:g}s", host)
        failed = self.hosts[host].watch([cid for _, cid in switched], seconds)
        if failed is None:
            self.line(f"{svc.name}: stayed healthy for {seconds:g}s", host)
            return
        cid, out = failed
        item = next(i for i, c in switched if c == cid)
        detail = out.detail.strip()
        self.line(f"{item.canonical}: {out.status} after the switch", host)
        for text in detail.splitlines()[-25:]:
            self.line(f"  | {text}", host)
        raise StepFailure(
            f"{host}: {svc.name} replica {item.replica}: {out.status} within "
            f"{seconds:g}s after the switch (update_config.monitor)",
            excerpt=detail,
        )

    def _edge_switch(
        self, host: str, svc: Service, group: list[_Item], new: list[str], drain: bool
    ) -> bool:
        """A public service: its route moves to the new containers (each one must answer on
        the route's port first), then the old ones drain. False when not proxied."""
        if self.edge is None or svc.proxy is None:
            return False
        moves = [
            (item.replica, cid, item.old.id if item.old else None)
            for item, cid in zip(group, new, strict=True)
        ]
        olds = self.edge.switch(
            host,
            svc,
            moves,
            self._do,
            self.manifest.rollout.health_timeout,
        )
        if drain:
            self.edge.drain(host, olds)
        return True

    def _grace_of(self, svc: Service) -> float:
        return svc.stop_grace_period if svc.stop_grace_period is not None else DEFAULT_GRACE

    def _switch(
        self, host: str, svc: Service, group: list[_Item], new: list[str], stop_old: bool
    ) -> None:
        """Old containers become kept (stopped, renamed); the new ones take the names."""
        engine = self.hosts[host]
        grace = self._grace_of(svc)
        for item, cid in zip(group, new, strict=True):
            old = item.old
            if old is not None:
                if stop_old and old.running:
                    engine.stop(old.id, grace)
                    self._do(host, f"restart {old.name}", partial(engine.start, old.id))
                keep_as = kept_name(item.canonical, old.release, old.id)
                # compose may have started a kept container again: it has that name already
                if old.name != keep_as:
                    engine.rename(old.id, keep_as)
                    self._do(
                        host,
                        f"rename back {old.name}",
                        partial(engine.rename, old.id, old.name),
                    )
            engine.rename(cid, item.canonical)
            self._do(
                host,
                f"rename away {item.canonical}",
                partial(engine.rename, cid, next_name(item.canonical, self.release_id)),
            )
            self.line(f"{item.canonical}: switched", host)

    def _retire(self, host: str, c: ObservedContainer, grace: float) -> None:
        """Scale down / removed service: stop and keep it (renamed) for rollback."""
        engine = self.hosts[host]
        if c.running:
            engine.stop(c.id, grace)
            self._do(host, f"restart {c.name}", lambda: engine.start(c.id))
        engine.rename(c.id, kept_name(c.name, c.release, c.id))
        self._do(host, f"rename back {c.name}", lambda: engine.rename(c.id, c.name))
        self.runs[host].switched = True
        self.line(f"{c.name}: stopped and kept for rollback", host)

    # -- end ------------------------------------------------------------------------------

    def _finish(self) -> None:
        if self.kind == "restart":  # the same images and configuration: no new release
            self.result.outcome = Outcome.DEPLOYED
            self.line(f"restarted by {self.context.holder}; no release recorded")
            return
        previous = self._previous_release() or self._record_adopted()
        digests = dict(previous.digests) if previous else {}
        digests.update(self.plan.digests)
        replicas = dict(previous.replicas) if previous else {}
        hashes = dict(previous.config_hashes) if previous else {}
        files = dict(previous.files) if previous else {}
        for svc in self.manifest.services:
            if svc.name in self.plan.digests:
                replicas[svc.name] = svc.replicas
                hashes[svc.name] = svc.config_hash()
                files[svc.name] = [f.record() for f in svc.files]
        files = {k: v for k, v in files.items() if v}
        mr = self.context.merge_request
        release = Release(
            id=self.release_id,
            app=self.manifest.app,
            environment=self.manifest.environment.name,
            digests=digests,
            config_hashes=hashes,
            replicas=replicas,
            commit=self.context.commit_sha,
            pipeline_url=self.context.pipeline_url,
            job_url=self.context.job_url,
            merge_request=f"!{mr.iid} {mr.title}" if mr else "",
            user=self.context.user,
            created_at=self.wall(),
            files=files,
        )
        self.result.previous_release = previous.id if previous else None
        for host in self.order:
            rec = self._step(host, f"record release {release.id}", "release")
            try:
                self.hosts[host].record_release(release)
            except DeployerError as e:  # the new version runs and is healthy: keep it
                self._done(rec, StepStatus.FAILED, e.message)
                self.line(
                    f"could not record the release (rollback will not list it): {e.message}", host
                )
                continue
            self._done(rec)
        self.result.release = release.id
        self.result.outcome = Outcome.DEPLOYED
        self.line(f"release {release.id} recorded on {len(self.order)} host(s)")
        self._retention()

    def _record_adopted(self) -> Release | None:
        """The first deploy of an app docker compose started: what compose ran is recorded
        as release ``0`` (before this one), so ``rollback`` can return to it."""
        if self.kind != "deploy":
            return None
        steps = [s for hp in self.plan.hosts for s in hp.steps if s.adopted]
        digests: dict[str, str] = {}
        replicas: dict[str, int] = {}
        for s in steps:
            old = s.old_digest or ""
            if s.service in digests or "@sha256:" not in old or ", " in old:
                continue  # several images, or one known by no registry digest
            digests[s.service] = old
            replicas[s.service] = s.replicas_before
        if not digests:
            return None
        release = Release(
            id="0",
            app=self.manifest.app,
            environment=self.manifest.environment.name,
            digests=digests,
            replicas=replicas,
            user="docker compose",
            created_at=self.result.started_at,
        )
        for host in self.order:
            try:
                self.hosts[host].record_release(release)
            except DeployerError as e:
                self.line(f"could not record compose's state as release 0: {e.message}", host)
                return None
        self.line("compose's state recorded as release 0 (rollback --to 0 returns to it)")
        return release

    def _previous_release(self) -> Release | None:
        rels = self.hosts[self.order[0]].releases(self.manifest.app, self.manifest.environment.name)
        return rels[-1] if rels else None

    def _retention(self) -> None:
        keep_n = max(1, self.manifest.rollout.keep_releases)
        for host in self.order:
            rec = self._step(host, "prune", "prune")
            engine = self.hosts[host]
            try:
                rels = engine.releases(self.manifest.app, self.manifest.environment.name)
                keep = list(rels[-keep_n:])
                removed = engine.prune(self.manifest.app, self.manifest.environment.name, keep)
            except DeployerError as e:  # retention never fails a deploy that worked
                self._done(rec, StepStatus.FAILED, e.message)
                self.line(f"retention skipped: {e.message}", host)
                continue
            self._done(rec, detail=f"kept {len(keep)} release(s), removed {len(removed)}")
            if removed:
                self.line(f"retention: removed {', '.join(removed)}", host)

    # -- rollback ---------------------------------------------------------------------------

    def _rollback_all(self, cause: DeployerError) -> None:
        self.result.error = cause.message
        touched = [h for h in reversed(self.order) if self.runs[h].journal]
        self.line(f"FAILED: {cause.message}")
        if not touched:
            self.result.outcome = Outcome.ROLLED_BACK
            self.result.digests = self._digests_running()
            self.error = DeployFailed(
                f"{cause.message}; nothing was changed",
                hint=cause.hint or "fix the cause and deploy again",
            )
            for host in self.order:
                self.result.hosts[host] = "unchanged"
            return
        failures: list[str] = []
        with self._log.section("rollback", "Rolling back every change of this run"):
            for host in touched:
                rec = self._step(host, "rollback", "rollback")
                errors = self._undo(host)
                if errors:
                    failures.extend(f"{host}: {e}" for e in errors)
                    self._done(rec, StepStatus.FAILED, "; ".join(errors))
                    self.result.hosts[host] = "rollback-failed"
                else:
                    self._done(rec, StepStatus.ROLLED_BACK, "previous containers serving again")
                    self.result.hosts[host] = "rolled-back"
        for s in self.result.steps:
            if s.kind == "rollout" and s.status is StepStatus.OK:
                s.status = StepStatus.ROLLED_BACK
        if failures:
            self.result.outcome = Outcome.ROLLBACK_FAILED
            self.error = RollbackFailed(
                f"{cause.message}; the rollback failed too: " + "; ".join(failures[:5]),
                hint="look at the hosts: `deployer status` shows what runs where",
            )
        else:
            self.result.outcome = Outcome.ROLLED_BACK
            self.result.digests = self._digests_running()
            self.error = DeployFailed(
                f"{cause.message}; rolled back, the previous version is serving",
                hint=cause.hint or "see the failed container's logs above",
            )

    def _digests_running(self) -> dict[str, str]:
        """After a rollback: per service the digest that runs again (what the plan found),
        not the one that failed; a service that was not running before is left out."""
        out: dict[str, str] = {}
        for hp in self.plan.hosts:
            for s in hp.steps:
                if s.service in out or s.action is Action.REMOVE:
                    continue
                if s.action is Action.UNCHANGED and s.service in self.plan.digests:
                    out[s.service] = self.plan.digests[s.service]
                elif s.old_digest:
                    out[s.service] = s.old_digest
        return out

    def _undo(self, host: str) -> list[str]:
        run = self.runs[host]
        errors: list[str] = []
        while run.journal:
            undo = run.journal.pop()
            try:
                undo.action()
                self.line(f"undone: {undo.what}", host)
            except DeployerError as e:
                errors.append(f"{undo.what}: {e.message}")
                self.line(f"could not undo {undo.what}: {e.message}", host)
        return errors


@dataclass(frozen=True)
class HostPlanView:
    steps: tuple[Step, ...]

    @property
    def changes(self) -> bool:
        return any(s.changes for s in self.steps)


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    if "@sha256:" in digest:
        repo, _, h = digest.partition("@sha256:")
        return f"{repo.rsplit('/', 1)[-1]}@{h[:12]}"
    if digest.startswith("sha256:"):
        return digest[7:19]
    return digest
