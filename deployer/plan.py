"""The plan: desired state minus observed state, as pure data.

Nothing here talks to Docker or GitLab. The Docker adapter produces ``Observed``;
the registry lookup produces the digests in ``Desired``; ``make_plan`` diffs them into
per-host, per-service steps, ordered in waves by ``depends_on``. ``deployer plan``
prints this; ``deployer deploy`` applies exactly this.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest, Order, Service, differing_parts


class Action(enum.StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    SCALE = "scale"
    UNCHANGED = "unchanged"
    REMOVE = "remove"


@dataclass(frozen=True)
class ObservedContainer:
    """One container of the app on a host, as the deployer's (or compose's) labels describe it."""

    id: str
    name: str
    service: str
    replica: int
    running: bool
    image_digest: str | None = None  # "repo@sha256:..." of the image it runs, when known
    # Every digest of the repository the running image is known by: an image pushed or
    # pulled more than once (another registry, a re-push) lists several in RepoDigests.
    image_digests: tuple[str, ...] = ()
    config_hash: str | None = None
    # None: the container carries no per-key label (not written by the deployer).
    config_parts: Mapping[str, str] | None = None
    release: str | None = None
    health: str = "none"  # healthy, unhealthy, starting, none
    adopted_from: str | None = None  # "compose" when compose created it, None when we did
    created: str = ""
    exit_code: int | None = None  # of an exited container
    # network_mode container:<id>: the id of the container whose network namespace it joined
    joined: str | None = None
    # ("pid" or "ipc", id) of each PID or IPC namespace of another container it joined
    # (``container:<id>``): not in the listing, read by inspect for the services that join one
    joined_ns: tuple[tuple[str, str], ...] = ()
    project: str = ""  # the GitLab project path its deploy recorded (``io.deployer.project``)

    def joined_of(self, key: str) -> str | None:
        """The id of the container whose namespace of ``key`` (``network_mode``, ``pid``,
        ``ipc``) this one joined; None when it has its own (or it was not read)."""
        return self.joined if key == "network_mode" else dict(self.joined_ns).get(key)


@dataclass(frozen=True)
class Leftover:
    """A container of the app that no release accounts for: what an interrupted deploy
    left behind (a ``--next-`` replacement, a kept container running again, a task
    container). The next deploy takes it out of the aliases and removes (or stops) it."""

    id: str
    name: str
    service: str
    running: bool
    why: str  # "replacement of an interrupted deploy", "kept container running", ...
    keep: bool = False  # a kept container of a release: stopped, not removed


@dataclass(frozen=True)
class Observed:
    """What runs on one host now for this app and environment."""

    host: str
    containers: tuple[ObservedContainer, ...] = ()
    leftovers: tuple[Leftover, ...] = ()

    def of_service(self, name: str) -> list[ObservedContainer]:
        return sorted((c for c in self.containers if c.service == name), key=lambda c: c.replica)

    @property
    def services(self) -> set[str]:
        return {c.service for c in self.containers}


@dataclass(frozen=True)
class Desired:
    """A service of the manifest with its image resolved to a digest."""

    service: Service
    digest: str  # "repo@sha256:..."

    @property
    def name(self) -> str:
        return self.service.name


@dataclass(frozen=True)
class Step:
    """What happens to one service on one host, and why."""

    service: str
    action: Action
    reasons: tuple[str, ...] = ()
    old_digest: str | None = None
    new_digest: str | None = None
    strategy: Order = "start-first"
    strategy_reason: str = ""  # "stateful: volume data at /data is writable", "default", ...
    replicas_before: int = 0
    replicas_after: int = 0
    wave: int = 0
    replace: tuple[str, ...] = ()  # container ids replaced by new ones
    remove: tuple[str, ...] = ()  # container ids removed with no successor
    adopted: bool = False

    @property
    def changes(self) -> bool:
        return self.action is not Action.UNCHANGED


@dataclass(frozen=True)
class HostPlan:
    host: str
    steps: tuple[Step, ...]
    leftovers: tuple[Leftover, ...] = ()  # cleaned up before any other change

    @property
    def changes(self) -> bool:
        return bool(self.leftovers) or any(s.changes for s in self.steps)

    def step(self, service: str) -> Step:
        for s in self.steps:
            if s.service == service:
                return s
        raise KeyError(service)


@dataclass(frozen=True)
class Plan:
    app: str
    environment: str
    hosts: tuple[HostPlan, ...]
    waves: tuple[tuple[str, ...], ...]  # service names, in the order they roll
    digests: Mapping[str, str] = field(default_factory=dict)  # service -> desired digest

    @property
    def changes(self) -> bool:
        return any(h.changes for h in self.hosts)


def waves(services: Sequence[Service]) -> tuple[tuple[str, ...], ...]:
    """Group services into waves: every service comes after all it depends on.

    Services in one wave are independent of each other. The manifest check has
    already refused cycles and unknown names; a cycle here is a bug.
    """
    names = [s.name for s in services]
    deps = {
        s.name: {d for d, _ in s.depends_on if d in names} | {d for d in s.links if d in names}
        for s in services
    }
    done: set[str] = set()
    out: list[tuple[str, ...]] = []
    while len(done) < len(names):
        wave = tuple(n for n in names if n not in done and deps[n] <= done)
        if not wave:
            raise AssertionError(f"depends_on cycle among {sorted(set(names) - done)}")
        out.append(wave)
        done.update(wave)
    return tuple(out)


def _runs(container: ObservedContainer, digest: str) -> bool:
    """Whether the container runs the image of ``digest``, by any digest it is known by."""
    return container.image_digest == digest or digest in container.image_digests


def _digest_of(containers: Iterable[ObservedContainer], desired: str | None = None) -> str | None:
    digests = sorted(
        {
            desired if desired and _runs(c, desired) else c.image_digest or "unknown"
            for c in containers
        }
    )
    return digests[0] if len(digests) == 1 else ", ".join(digests)


def _changed_keys(desired: Service, container: ObservedContainer) -> list[str]:
    if container.config_parts is None:
        return ["definition"]
    keys = differing_parts(desired.config_parts(), container.config_parts)
    return keys or (["definition"] if container.config_hash is None else [])


def _config_differs(desired: Service, container: ObservedContainer) -> bool:
    """The container's configuration is not the manifest's (labels of any release)."""
    return container.config_hash != desired.config_hash() and bool(
        _changed_keys(desired, container)
    )


def _down(svc: Service, c: ObservedContainer) -> bool:
    """Not running as it should: a service that may exit is done when it exited 0."""
    return not c.running and not (svc.may_exit and c.exit_code == 0)


def _service_step(desired: Desired, current: list[ObservedContainer], wave: int) -> Step:
    svc = desired.service
    want = svc.replicas
    have = len(current)
    base = Step(
        service=svc.name,
        action=Action.UNCHANGED,
        new_digest=desired.digest,
        strategy=svc.order,
        strategy_reason=svc.order_reason,
        replicas_before=have,
        replicas_after=want,
        wave=wave,
        adopted=any(c.adopted_from for c in current),
    )
    if not current:
        return replace(base, action=Action.CREATE, reasons=("not running",))

    kept = current[:want]
    extra = current[want:]
    reasons: list[str] = []
    if not all(_runs(c, desired.digest) for c in kept):
        reasons.append("new image digest")
    changed: set[str] = set()
    for c in kept:
        if _config_differs(svc, c):
            changed.update(_changed_keys(svc, c))
    if changed:
        reasons.append("config changed: " + ", ".join(sorted(changed)))
    stopped = [c for c in kept if _down(svc, c)]
    if stopped and not reasons:
        reasons.append(f"{len(stopped)} container(s) not running")
    if have != want:
        reasons.append(f"scale {have} → {want}")

    old = _digest_of(current, desired.digest)
    scale_only = reasons == [f"scale {have} → {want}"]
    if reasons and not scale_only:
        # Replace every kept container that differs; scale on top.
        to_replace = tuple(
            c.id
            for c in kept
            if not _runs(c, desired.digest) or _config_differs(svc, c) or _down(svc, c)
        )
        return replace(
            base,
            action=Action.REPLACE,
            reasons=tuple(reasons),
            old_digest=old,
            replace=to_replace,
            remove=tuple(c.id for c in extra),
        )
    if scale_only:
        return replace(
            base,
            action=Action.SCALE,
            reasons=tuple(reasons),
            old_digest=old,
            remove=tuple(c.id for c in extra),
        )
    return replace(base, reasons=("up to date",), old_digest=old)


def _relinked(
    step: Step, desired: Desired, current: list[ObservedContainer], replaced: set[str]
) -> Step:
    """A container compose started with ``links:`` names the linked service's container
    (compose's endpoint links): once that container is replaced, the link points nowhere, so
    the linking service is replaced too (the deployer's containers reach it by its alias)."""
    gone = sorted(set(desired.service.links) & replaced)
    if step.action is not Action.UNCHANGED or not gone:
        return step
    adopted = tuple(c.id for c in current if c.adopted_from)
    if not adopted:
        return step
    return replace(
        step,
        action=Action.REPLACE,
        reasons=(
            f"links to {', '.join(gone)}, which is replaced (compose's link names its container)",
        ),
        replace=adopted,
    )


_NAMESPACE_WORD = {"network_mode": "network", "pid": "PID namespace", "ipc": "IPC namespace"}


def _rejoined(
    step: Step,
    desired: Desired,
    current: list[ObservedContainer],
    renewed: Mapping[str, str],
    owners: Mapping[str, list[ObservedContainer]],
) -> Step:
    """``network_mode`` (``pid``, ``ipc``) ``service:NAME``: the containers live in that
    namespace of NAME's container. A new one of NAME has a new namespace (the old one goes
    with the old container), so this service's containers are replaced too, joining the
    new one; so is a container that joined that namespace of one of NAME's that is no
    longer NAME's current one (``owners``: NAME's current containers)."""
    if step.action is not Action.UNCHANGED or not current:
        return step
    kept = current[: desired.service.replicas]
    for key, shared in desired.service.namespaces_joined:
        if shared in renewed:
            what = _NAMESPACE_WORD[key]
            why = (
                f"shares the {what} of {shared}, which {renewed[shared]} (its containers "
                "join the new one)"
            )
            return replace(
                step, action=Action.REPLACE, reasons=(why,), replace=tuple(c.id for c in kept)
            )
    # a deploy interrupted between the two, NAME's container replaced by hand: the
    # namespace such a container joined went with that container
    stale: dict[str, None] = {}
    reasons: list[str] = []
    for key, shared in desired.service.namespaces_joined:
        ids = {c.id for c in owners.get(shared, [])}
        gone = [c.id for c in kept if ids and c.joined_of(key) not in (None, *ids)]
        if gone:
            stale.update(dict.fromkeys(gone))
            what = _NAMESPACE_WORD[key]
            reasons.append(
                f"shares the {what} of a container of {shared} that is no longer its current one"
            )
    if not stale:
        return step
    return replace(step, action=Action.REPLACE, reasons=tuple(reasons), replace=tuple(stale))


def plan_host(
    observed: Observed, desired: Sequence[Desired], order: tuple[tuple[str, ...], ...]
) -> HostPlan:
    by_name = {d.name: d for d in desired}
    wave_of = {name: i for i, wave in enumerate(order) for name in wave}
    steps: list[Step] = []
    replaced: set[str] = set()
    renewed: dict[str, str] = {}  # service -> why its containers are new ones
    for wave in order:
        for name in wave:
            current = observed.of_service(name)
            step = _relinked(
                _service_step(by_name[name], current, wave_of[name]),
                by_name[name],
                current,
                replaced,
            )
            owners = {n: observed.of_service(n) for n in by_name[name].service.joins}
            step = _rejoined(step, by_name[name], current, renewed, owners)
            if step.action is Action.REPLACE:
                replaced.add(name)
                renewed[name] = "is replaced"
            elif step.action is Action.CREATE:
                renewed[name] = "has no container"
            steps.append(step)
    for orphan in sorted(observed.services - set(by_name)):
        containers = observed.of_service(orphan)
        steps.append(
            Step(
                service=orphan,
                action=Action.REMOVE,
                reasons=("no longer in the manifest",),
                old_digest=_digest_of(containers),
                replicas_before=len(containers),
                replicas_after=0,
                wave=len(order),
                remove=tuple(c.id for c in containers),
                adopted=any(c.adopted_from for c in containers),
            )
        )
    return HostPlan(host=observed.host, steps=tuple(steps), leftovers=observed.leftovers)


def make_plan(
    manifest: Manifest,
    observed: Sequence[Observed],
    digests: Mapping[str, str],
    only: Sequence[str] | None = None,
) -> Plan:
    """Diff the manifest (images resolved to ``digests``) against every host's state.

    ``only`` restricts the plan to some services (``deploy --services``); the rest
    are shown unchanged and orphans are left alone.
    """
    services = [s for s in manifest.services if only is None or s.name in only]
    desired = [Desired(s, digests[s.name]) for s in services]
    order = waves(services)
    hosts = []
    for obs in observed:
        scoped = obs
        if only is not None:
            scoped = Observed(
                obs.host, tuple(c for c in obs.containers if c.service in only), obs.leftovers
            )
        hosts.append(plan_host(scoped, desired, order))
    return Plan(
        app=manifest.app,
        environment=manifest.environment.name,
        hosts=tuple(hosts),
        waves=order,
        digests=dict(digests),
    )


def check_only(manifest: Manifest, only: Sequence[str] | None) -> list[str] | None:
    """The services ``--services`` names (None: all), each one of the manifest (exit 2)."""
    if only is None:
        return None
    names = manifest.service_names
    unknown = [s for s in only if s not in names]
    if unknown:
        raise InvalidInput(
            f"--services: {', '.join(unknown)} not in {manifest.path} "
            f"(environment {manifest.environment.name})",
            hint=f"the services are: {', '.join(names)}",
        )
    check_sharing(manifest, only, "--services")
    return list(only)


def check_sharing(manifest: Manifest, names: Sequence[str], what: str) -> None:
    """Every service sharing the network, PID or IPC namespace of one of ``names``
    (``network_mode``, ``pid``, ``ipc``: ``service:NAME``) is among them (exit 2): a new
    container of NAME takes its namespace away, so they are replaced with it."""
    left = [s.name for s in manifest.services if set(s.joins) & set(names) and s.name not in names]
    if left:
        raise InvalidInput(
            f"{what}: {', '.join(left)} share the network, PID or IPC namespace of a service "
            "named (network_mode, pid or ipc: service:NAME) and are replaced with it",
            hint=f"name {', '.join(left)} too",
        )
