"""What one rollout shares between its parts: the run's inputs, the job log (sections that
never interleave), the step records of the result, and each host's undo journal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from deployer.context import Context
from deployer.engine import HostEngine
from deployer.errors import DeployerError
from deployer.journal import Journal
from deployer.manifest.model import Manifest, RegistryAuth, Service
from deployer.plan import Observed, Plan
from deployer.proxy.switch import EdgeSwitch, public_urls
from deployer.releases import new_release_id
from deployer.report.log import Log
from deployer.result import DeployResult, Outcome, StepRecord, StepStatus

DEFAULT_GRACE = 10.0
# How long new containers are watched after the switch when update_config.monitor is
# not written (Swarm's own default); a crash, a restart or a failing healthcheck in that
# time rolls the deploy back. ``monitor: 0s`` turns the watch off.
DEFAULT_MONITOR = 5.0
# New containers starting at once on one host (created, the old one stopped for
# stop-first, started): a large wave on a small host would otherwise start every new
# container together and starve their health checks. Only the starts queue: waiting for
# health, the switch and the watch after it run for every service of a wave at once.
# 10, not 4: an app of up to 10 services starts in one round, as `docker compose up`
# starts every service at once (bench/rollout_10.py: 4 at a time cost a round of starts
# per 4 services, the largest part of stop-first's lag behind `up -d --wait`).
START_PARALLEL = 10


class StepFailure(DeployerError):
    """One step of the rollout failed; the rollout turns it into a rollback."""

    def __init__(self, message: str, *, excerpt: str = "") -> None:
        super().__init__(message)
        self.excerpt = excerpt


class NotStarted(StepFailure):
    """A service did not start its new containers: another one on its host failed."""

    def __init__(self) -> None:
        super().__init__("not started: another service of this host failed")


@dataclass
class HostRun:
    engine: HostEngine
    journal: Journal[object] = field(default_factory=Journal)
    new_containers: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)  # the old containers a restart replaced
    failed: BaseException | None = None  # a DeployerError, or a bug raised in its thread
    switched: bool = False
    starts: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(START_PARALLEL)
    )
    halt: threading.Event = field(default_factory=threading.Event)  # a service failed


class RunState:
    """The inputs of one deploy (or rollback) of ``plan`` to ``hosts``, and what it did."""

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
        observe: Callable[[], Sequence[Observed]] | None = None,
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
        self.auth_for = auth_for
        # What runs now, observed as the plan was (``check_current`` after a lock wait).
        self.observe_again = observe
        self.error: DeployerError | None = None
        self.log = log
        self._log_lock = threading.RLock()
        self.buffer = threading.local()  # .lines: a concurrent service's section
        self.hosts_in_parallel = False  # the hosts of the current batch roll at once
        self._result_lock = threading.Lock()
        self.runs = {name: HostRun(self.hosts[name]) for name in self.order}
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
        buffered: list[str] | None = getattr(self.buffer, "lines", None)
        if buffered is not None:  # a service rolling beside others: its section comes whole
            buffered.append(prefix + text)
            return
        with self._log_lock:
            self.log.line(prefix + text)

    @contextmanager
    def service_section(self, host: str, service: str) -> Iterator[None]:
        """One collapsible section per service rollout (per host).

        Services of a wave, and hosts of a batch, roll concurrently: their lines are kept
        and each section is written whole when its service is done, so concurrent
        sections never interleave. A service rolling alone writes its lines as they come.
        """
        verb = "rollback" if self.kind == "rollback" else "rollout"
        name = f"{verb}_{self.order.index(host) + 1}_{service}"
        where = f" on {host}" if len(self.order) > 1 else ""
        header = f"{verb.capitalize()} of {service}{where}"
        if not (self.hosts_in_parallel or getattr(self.buffer, "concurrent", False)):
            with self.log.section(name, header):
                yield
            return
        lines: list[str] = []
        self.buffer.lines = lines
        try:
            yield
        finally:
            self.buffer.lines = None
            with self._log_lock, self.log.section(name, header):
                for text in lines:
                    self.log.line(text)

    def write_section(self, name: str, header: str, lines: Sequence[str]) -> None:
        """A whole section at once (lines kept while other threads wrote theirs)."""
        with self._log_lock, self.log.section(name, header):
            for text in lines:
                self.log.line(text)

    def host_line(self, host: str, text: str) -> None:
        self.line(text, host)

    # -- step records -------------------------------------------------------------------

    def record(self, rec: StepRecord) -> StepRecord:
        with self._result_lock:
            self.result.steps.append(rec)
        return rec

    def step(self, host: str, name: str, kind: str, service: str | None = None) -> StepRecord:
        return self.record(
            StepRecord(host=host, name=name, kind=kind, service=service, started_at=self.wall())
        )

    def done(self, rec: StepRecord, status: StepStatus = StepStatus.OK, detail: str = "") -> None:
        rec.status = status
        rec.seconds = round(self.wall() - rec.started_at, 3)
        if detail:
            rec.detail = detail

    # -- changes and their undo -----------------------------------------------------------

    def do(self, host: str, what: str, undo: Callable[[], None]) -> None:
        """A change was made on ``host``: journal how to undo it."""
        self.runs[host].journal.record(what, undo)

    def touched(self) -> bool:
        return any(r.journal for r in self.runs.values())

    def check_cancel(self) -> None:
        if self.cancelled.is_set():
            raise StepFailure("the deploy was cancelled")

    @contextmanager
    def starting(self, host: str) -> Iterator[None]:
        """Around the start of new containers on ``host``: at most ``START_PARALLEL`` at
        once, and none once a service of this host failed (``NotStarted``) or the deploy
        was cancelled."""
        run = self.runs[host]
        with run.starts:
            if run.halt.is_set():
                raise NotStarted
            self.check_cancel()
            yield

    def parallel(self, hosts: Sequence[str], fn: Callable[[str], None]) -> None:
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


def grace_of(svc: Service) -> float:
    return svc.stop_grace_period if svc.stop_grace_period is not None else DEFAULT_GRACE


def short(digest: str | None) -> str:
    if not digest:
        return "-"
    if "@sha256:" in digest:
        repo, _, h = digest.partition("@sha256:")
        return f"{repo.rsplit('/', 1)[-1]}@{h[:12]}"
    if digest.startswith("sha256:"):
        return digest[7:19]
    return digest
