"""Day-2 operations on a deployed environment: one interface, two engines.

The commands (`down`, `unlock`, `logs`, ...) take the app's names and talk only to an
``Operations``; ``open_environment`` chooses the implementation once from the manifest
(containers on every host of the environment, or the environment's Swarm), so no
command has an engine branch. Every call is bounded: logs are read as finite requests
(never an open stream, which cannot be cancelled over SSH).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

from deployer.errors import DeployerError
from deployer.manifest.model import Manifest, Task

if TYPE_CHECKING:
    from deployer.context import Context
    from deployer.docker.execute import ExecIO
    from deployer.ownership import Owner
    from deployer.plan import HostPlan, Plan, Step
    from deployer.report.log import JobLog
    from deployer.requests import Request


@dataclass(frozen=True)
class LockState:
    """The deploy lock of the app and environment, as one host (or the swarm) holds it."""

    where: str
    holder: str
    since: float  # unix time, 0 when unknown
    expires: float  # unix time
    ids: tuple[str, ...] = ()  # what holds it (lock containers, or the Swarm config)
    key: str = ""  # another lock than the deploy lock: the edge proxy's (``edge/<name>``)


@dataclass(frozen=True)
class ReplicaLog:
    """One replica's lines in the engine's order, as two columns rather than an object
    per line (one read may hold tens of thousands). ``stamps`` are the engine's
    timestamps in one fixed form, RFC 3339 in UTC with nine fraction digits
    (``2026-11-29T16:01:26.123456789Z``): as text they sort in time order."""

    host: str
    service: str
    replica: int
    source: str  # container id: lines of one container keep their order
    stamps: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.stamps)


@dataclass(frozen=True)
class Replica:
    """One running replica of a service: where it runs and its container."""

    where: str
    service: str
    replica: int
    container_id: str


@dataclass(frozen=True)
class StatRow:
    where: str
    service: str
    replica: int
    cpu_percent: float | None
    memory: int  # bytes
    memory_limit: int  # bytes (the host's memory when the container has no limit)
    net_rx: int  # bytes
    net_tx: int
    restarts: int
    state: str


@dataclass(frozen=True)
class Event:
    """Something that happened to one of the app's containers, from the engine."""

    time_ns: int
    where: str
    service: str
    replica: str
    action: str  # "oom", "die", "start", "create", "destroy", "health_status: unhealthy", ...
    detail: str  # "exit code 137", the container's name, ...


# A restart's plan applied to the hosts it was made on: (plan, hosts, observed by host).
RestartApply = Callable[[Any, Sequence[Any], Mapping[str, Any]], int]


class Operations(Protocol):
    """What the day-2 commands need of an environment, whatever the engine."""

    @property
    def where(self) -> str:
        """The hosts (or the swarm manager) as shown to people."""
        ...

    def services(self) -> Sequence[str]:
        """The services of the manifest, in order."""
        ...

    @property
    def unreachable(self) -> Sequence[DeployerError]:
        """Why each host that did not answer did not (opened with ``reachable_only``)."""
        ...

    def lock_states(self) -> Sequence[LockState]:
        """The deploy lock wherever it is held (empty: nobody holds it), and the lock of
        the environment's edge proxy on each host where it is held."""
        ...

    def break_lock(self, states: Sequence[LockState]) -> list[str]:
        """Remove the locks ``states`` saw (only those: a lock taken since stays)."""
        ...

    def down(
        self, *, holder: str, ttl: float, volumes: bool, say: Callable[[str], None]
    ) -> list[str]:
        """Under the deploy lock (``Blocked`` while another holds it): remove the app's
        containers, networks, release records and lock; named volumes only with
        ``volumes``. Returns what was removed."""
        ...

    def logs(
        self,
        services: Sequence[str],
        *,
        since: float | None,
        until: float | None,
        tail: int | None,
    ) -> list[ReplicaLog]:
        """Every replica's lines of ``services`` (all when empty), one bounded read
        each (``merge`` puts them in time order)."""
        ...

    def replicas(self, services: Sequence[str] = ()) -> list[Replica]:
        """The running replicas of ``services`` (all when empty), by host, service, replica."""
        ...

    def exec(self, replica: Replica, command: Sequence[str], io: ExecIO) -> int:
        """Run ``command`` in the replica's container, its input and output through
        ``io``; its exit code."""
        ...

    def stats(self) -> list[StatRow]:
        """One sample of every running replica."""
        ...

    def restart(
        self,
        services: Sequence[str],
        *,
        hard: bool,
        context: Context,
        log: JobLog,
        request: Request,
        apply: RestartApply,
    ) -> int:
        """Replace every replica of ``services`` with the same image and configuration
        through the rollout (health-gated, rolled back when unhealthy: ``DeployFailed``);
        no release is recorded. ``apply(plan, hosts, observed)`` runs the container
        rollout and reports (given by the command, so this layer does not import the
        rollout's target); Swarm applies its own."""
        ...

    def run(self, task: Task, say: Callable[[str], None]) -> int:
        """Run ``task`` as a one-off container of the deployed release's image (its digest)
        and the service's configuration, removed afterwards; its exit code."""
        ...

    def events(self, since: float, until: float) -> list[Event]:
        """What happened to the app's containers between ``since`` and ``until`` (unix
        seconds; ``until`` bounds the read: it never waits for new events)."""
        ...

    def owners(self) -> list[Owner]:
        """The GitLab project each host (or the Swarm) records for the environment."""
        ...

    def close(self) -> None: ...


def check_project(
    ops: Operations,
    m: Manifest,
    context: Context,
    take_over: str,
    say: Callable[[str], None],
) -> None:
    """Refuse (exit 2) before anything changes a run of another GitLab project than the
    one that deployed the environment (``deployer.ownership``)."""
    from deployer.ownership import guard

    for line in guard(ops.owners(), m.app, m.environment.name, context, take_over, m.path):
        say(line)


INTERESTING = ("create", "start", "die", "oom", "kill", "stop", "restart", "destroy", "health")


def engine_events(
    api: Any,
    where: str,
    filters: dict[str, Any],
    since: float,
    until: float,
    service_label: str,
    replica_label: str,
    skip_label: str | None = None,
) -> list[Event]:
    """The engine's container events in [since, until], one bounded read; of the
    containers without ``skip_label`` when given."""
    out = []
    for ev in api.events(since=since, until=until, filters=filters, decode=True):
        action = str(ev.get("Action") or ev.get("status") or "")
        if not action.startswith(INTERESTING) or action.startswith("exec_"):
            continue
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        if service_label not in attrs or (skip_label and skip_label in attrs):
            continue  # the deploy lock, not a replica (or a Swarm task, not ours)
        detail = attrs.get("name", "")
        if action == "die":
            detail += f" (exit code {attrs.get('exitCode', '?')})"
        ns = int(ev.get("timeNano") or int(ev.get("time") or 0) * 1_000_000_000)
        out.append(
            Event(
                ns,
                where,
                attrs.get(service_label, "?"),
                attrs.get(replica_label, "?"),
                action,
                detail,
            )
        )
    return out


def stat_row(replica: Replica, sample: dict[str, object], info: dict[str, object]) -> StatRow:
    """A ``StatRow`` from the engine's stats sample and the container's inspect data."""
    s: dict[str, Any] = sample
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    percent = None
    try:
        delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
        cpus = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or [1])
        if system > 0:
            percent = round(delta / system * cpus * 100.0, 1)
    except (KeyError, TypeError):
        pass
    mem = s.get("memory_stats") or {}
    usage = int(mem.get("usage") or 0) - int((mem.get("stats") or {}).get("inactive_file") or 0)
    nets = (s.get("networks") or {}).values()
    state: Any = info.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return StatRow(
        replica.where,
        replica.service,
        replica.replica,
        percent,
        max(usage, 0),
        int(mem.get("limit") or 0),
        sum(int(n.get("rx_bytes") or 0) for n in nets),
        sum(int(n.get("tx_bytes") or 0) for n in nets),
        int(info.get("RestartCount") or 0),  # type: ignore[call-overload]
        str(health or state.get("Status") or "?"),
    )


def open_environment(
    manifest: Manifest, environ: Mapping[str, str], *, reachable_only: bool = False
) -> Operations:
    """Connect to the manifest's environment: its Swarm, or every one of its hosts
    (``reachable_only``: those that answer, for what only reads; ``unreachable`` says
    why the others did not)."""
    if manifest.environment.engine == "swarm":
        from deployer.ops.swarm import SwarmOperations

        return SwarmOperations.open(manifest, environ)
    from deployer.ops.containers import ContainerOperations

    return ContainerOperations.open(manifest, environ, reachable_only=reachable_only)


def open_for_reading(manifest: Manifest, environ: Mapping[str, str]) -> Operations:
    """The environment's hosts that answer, for a command that only reads (logs, stats,
    events): one host down is when the others' state matters. Each host that did not
    answer is said on stderr at once; ``reached_all`` ends the command with exit 3."""
    ops = open_environment(manifest, environ, reachable_only=True)
    warn_unreachable(ops.unreachable)
    return ops


def warn_unreachable(unreachable: Sequence[DeployerError]) -> None:
    """Each host that did not answer, said on stderr before what the others hold."""
    import sys

    for e in unreachable:
        print(f"warning: {e.message} (showing the other hosts)", file=sys.stderr)


def reached_all(unreachable: Sequence[DeployerError]) -> None:
    """Exit 3 (``Unreachable``) naming every host that did not answer, once what the
    others hold was shown; nothing when every host answered."""
    from deployer.errors import Unreachable

    if not unreachable:
        return
    lines = "\n".join(f"  {e.message}" for e in unreachable)
    raise Unreachable(
        f"{len(unreachable)} host(s) did not answer; what the others hold is shown above:\n{lines}",
        hint=unreachable[0].hint,
    )


def merge(logs: Sequence[ReplicaLog], render: Callable[[ReplicaLog], list[str]]) -> list[str]:
    """``render(log)`` (a string per line of ``log``) of every replica, in time order; on
    equal times by container, and a container's lines in the engine's order. One sort of
    the timestamps as text (the runs of each container are merged, not re-sorted)."""
    keys: list[str] = []
    out: list[str] = []
    for log in sorted(logs, key=lambda log: log.source):
        keys += log.stamps
        out += render(log)
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: ties keep their order
    return [out[i] for i in order]


_SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> unix seconds (lines share them)


def parse_stamped(raw: str) -> tuple[int, str, str]:
    """``2026-11-29T16:01:26.123456789Z text`` → (unix ns, stamp, text). Any RFC 3339
    time in UTC with up to nine fraction digits; (0, "", raw) when there is none."""
    from datetime import datetime

    stamp, _, text = raw.partition(" ")
    head = stamp[:19]
    base = _SECONDS.get(head)
    if base is None:
        try:
            base = int(datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp())
        except ValueError:
            return 0, "", raw
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        _SECONDS[head] = base
    frac = stamp[20:].rstrip("Z") if stamp[19:20] == "." else ""
    if not frac.isdigit() and frac:
        return 0, "", raw
    return base * 1_000_000_000 + int((frac + "000000000")[:9]), stamp, text


def stamp_of(ns: int) -> str:
    """Unix nanoseconds as the engine writes a log line's time (``ReplicaLog.stamps``)."""
    from datetime import datetime

    seconds, frac = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"


_FIXED = len("2026-11-29T16:01:26.123456789Z")


def split_stamped(raw: str) -> tuple[list[str], list[str]]:
    """The engine's ``timestamps=True`` output → (stamps, texts), a line each. The engine
    writes every time in the fixed form of ``ReplicaLog.stamps`` (Go's RFC3339NanoFixed)
    and a space: lines are cut at fixed places; any other form is parsed and rewritten."""
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in raw:  # CRLF from the container: the line break is not text
        lines = [line.rstrip("\r") for line in lines]
    if any(line[_FIXED - 1 : _FIXED + 1] != "Z " for line in lines):
        stamps, texts = [], []
        for line in lines:
            ns, _, text = parse_stamped(line)
            stamps.append(stamp_of(ns) if ns else "")
            texts.append(text)
        return stamps, texts
    return [line[:_FIXED] for line in lines], [line[_FIXED + 1 :] for line in lines]


def restart_plan(
    plan: Plan, services: Sequence[str], source: str, replace: Callable[[HostPlan, Step], Step]
) -> Plan:
    """``plan`` (made from the deployed release's digests) with each step of ``services``
    turned into ``replace(host plan, step)``: a replacement with the same image and
    configuration. ``InvalidInput`` when one differs from ``source`` (the manifest):
    a restart keeps what runs as it is."""
    import dataclasses

    from deployer.errors import InvalidInput
    from deployer.plan import Action

    hosts = []
    for hp in plan.hosts:
        steps = []
        for step in hp.steps:
            if step.service in services and step.action is not Action.UNCHANGED:
                raise InvalidInput(
                    f"{hp.host}: {step.service} differs from {source} "
                    f"({'; '.join(step.reasons)}): a restart keeps what runs as it is",
                    hint="deploy the manifest with `deployer deploy` instead",
                )
            steps.append(replace(hp, step) if step.service in services else step)
        hosts.append(dataclasses.replace(hp, steps=tuple(steps)))
    return dataclasses.replace(plan, hosts=tuple(hosts))


def release_digest(releases: Sequence[object], service: str, where: str) -> str:
    """The digest the newest recorded release deployed for ``service``."""
    from deployer.errors import InvalidInput

    for rel in reversed(list(releases)):
        digest = getattr(rel, "digests", {}).get(service)
        if digest:
            return str(digest)
    raise InvalidInput(
        f"no release of {service} is recorded on {where}",
        hint="deploy once with `deployer deploy` first",
    )
