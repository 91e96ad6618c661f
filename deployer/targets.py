"""Manifest → hosts → digests → observed → plan: what ``plan`` and ``deploy`` both start with.

``prepare(manifest, environ, only)`` connects to every host of the environment (in
parallel; all or nothing), resolves each distinct image once (on the first host, without
pulling), observes every host and makes the plan. Nothing on any host changes. Any
connection or registry failure is an ``Unreachable`` (exit 3) naming the host or registry;
hosts already connected are closed again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from deployer.docker.connect import DEFAULT_TIMEOUT, host_urls
from deployer.docker.host import DockerHost, connect_host
from deployer.docker.registry import auth_for
from deployer.errors import DeployerError, InvalidInput, Unreachable
from deployer.manifest.model import Manifest
from deployer.plan import Observed, Plan, check_only, make_plan

T = TypeVar("T")
R = TypeVar("R")
MAX_PARALLEL = 8


@dataclass
class Prepared:
    """Open hosts and the plan for them. ``close()`` when done (or use ``with``)."""

    manifest: Manifest
    hosts: list[DockerHost]
    digests: dict[str, str]  # service -> repo@sha256:... (or sha256:<id> for pull_policy never)
    observed: list[Observed]
    plan: Plan

    @property
    def hosts_by_name(self) -> dict[str, DockerHost]:
        return {h.name: h for h in self.hosts}

    @property
    def observed_by_name(self) -> dict[str, Observed]:
        return {o.host: o for o in self.observed}

    def close(self) -> None:
        close_all(self.hosts)

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_all(hosts: Sequence[DockerHost]) -> None:
    for h in hosts:
        h.close()


def _parallel(
    fn: Callable[[T], R], items: Sequence[T], *, limit: int = MAX_PARALLEL
) -> list[R | DeployerError]:
    """``fn`` over ``items`` in (at most ``limit``) threads; DeployerErrors are returned
    in place, in order."""

    def call(item: T) -> R | DeployerError:
        try:
            return fn(item)
        except DeployerError as e:
            return e

    if len(items) <= 1:
        return [call(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        return list(pool.map(call, items))


def _raise_first(errors: Sequence[DeployerError]) -> None:
    if not errors:
        return
    first = errors[0]
    if len(errors) == 1:
        raise first
    others = "\n".join(f"  also: {e.message}" for e in errors[1:])
    raise type(first)(f"{first.message}\n{others}", hint=first.hint) from first


def each(fn: Callable[[T], R], items: Sequence[T], *, limit: int = MAX_PARALLEL) -> list[R]:
    """``fn`` over ``items`` side by side (``_parallel``): every result in order, or
    every DeployerError raised as one (``_raise_first``)."""
    results = _parallel(fn, items, limit=limit)
    _raise_first([r for r in results if isinstance(r, DeployerError)])
    return [r for r in results if not isinstance(r, DeployerError)]


def each_flat(
    fn: Callable[[T], Sequence[R]], items: Sequence[T], *, limit: int = MAX_PARALLEL
) -> list[R]:
    """``each``, its results' items in one list."""
    return [x for found in each(fn, items, limit=limit) for x in found]


def connect_hosts(
    manifest: Manifest, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> list[DockerHost]:
    """Every host of the manifest's environment, connected and checked, or none at all."""
    hosts, errors = connect_reachable(manifest, environ, timeout=timeout)
    if errors:
        close_all(hosts)
        _raise_first(errors)
    return hosts


def connect_reachable(
    manifest: Manifest, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[list[DockerHost], list[DeployerError]]:
    """The hosts of the environment that answer, and why each other one does not: what
    only reads (status, logs, stats, events) shows the hosts that answer, since one host
    down is when the others' state matters. None answering raises the first error."""
    urls = host_urls(manifest.environment.hosts, environ)
    results = _parallel(
        lambda url: connect_host(url, environ, manifest.environment, timeout=timeout), urls
    )
    hosts = [r for r in results if isinstance(r, DockerHost)]
    errors = [r for r in results if isinstance(r, DeployerError)]
    if not hosts:
        _raise_first(errors)
    return hosts, errors


def resolve_digests(
    manifest: Manifest,
    host: DockerHost,
    environ: Mapping[str, str],
    services: Sequence[str] | None = None,
) -> dict[str, str]:
    """service -> digest, each distinct (image, pull_policy) asked once, on ``host``."""
    wanted = [s for s in manifest.services if services is None or s.name in services]
    keys = sorted({(s.image, s.pull_policy) for s in wanted})

    def one(key: tuple[str, str]) -> str:
        image, policy = key
        auth = None if policy == "never" else auth_for(image, manifest.registries, environ)
        return host.resolve(image, auth, pull_policy=policy)

    results = _parallel(one, keys)
    _raise_first([r for r in results if isinstance(r, DeployerError)])
    by_key = {k: r for k, r in zip(keys, results, strict=True) if isinstance(r, str)}
    return {s.name: by_key[(s.image, s.pull_policy)] for s in wanted}


def observe_all(manifest: Manifest, hosts: Sequence[DockerHost]) -> list[Observed]:
    results = _parallel(
        lambda h: h.observe(
            manifest.app,
            manifest.environment.name,
            compose_project=manifest.compose_project,
            services=manifest.services,
            engine_names=manifest.engine_names(),
        ),
        hosts,
    )
    _raise_first([r for r in results if isinstance(r, DeployerError)])
    return [r for r in results if isinstance(r, Observed)]


def check_bind_links(manifest: Manifest, hosts: Sequence[DockerHost]) -> None:
    """Refuse a bind whose source is, on a host, a symlink to a protected path, a
    ``volumes_from: container:NAME`` whose container mounts one, and a named volume that
    exists on a host and mounts one through its driver options (``external`` ones too);
    a network that exists on a host as a macvlan or ipvlan one (``deployer.docker.lan``);
    and an existing volume or a lending container that is not this app's and
    environment's (``deployer.docker.owners``); an explicit subnet of a network to create
    that the host already routes (``deployer.docker.subnets``): before anything of the app
    changes (exit 2)."""
    from deployer.docker.owners import all_volumes
    from deployer.docker.subnets import planned as planned_subnets
    from deployer.docker.symlinks import bind_sources, lending_containers

    # a network that exists is joined as it is: an external macvlan one is the host's LAN
    _raise_first(
        [
            e
            for e in _parallel(lambda h: h.check_networks(manifest), hosts)
            if isinstance(e, DeployerError)
        ]
    )
    if planned_subnets(manifest):
        # an explicit subnet the host already routes: the new bridge would take the route
        _raise_first(
            [
                e
                for e in _parallel(lambda h: h.check_subnets(manifest), hosts)
                if isinstance(e, DeployerError)
            ]
        )
    if all_volumes(manifest) or lending_containers(manifest):
        # another app's (or environment's) volume or container: its data
        _raise_first(
            [
                e
                for e in _parallel(lambda h: h.check_owners(manifest), hosts)
                if isinstance(e, DeployerError)
            ]
        )
    if (
        not bind_sources(manifest)
        and not lending_containers(manifest)
        and not all_volumes(manifest)
    ):
        return
    errors = [
        e
        for e in _parallel(lambda h: h.check_binds(manifest), hosts)
        if isinstance(e, DeployerError)
    ]
    _raise_first(errors)


def check_external(manifest: Manifest, hosts: Sequence[DockerHost]) -> None:
    """Refuse what a host lacks, before anything of the app changes (exit 2): an
    ``external: true`` network or volume, a logging, volume or network driver (a plugin),
    a runtime. `plan` says it, and a deploy stops before its first change."""
    from deployer.docker.support import wanted

    if wanted(manifest):
        _raise_first(
            [
                e
                for e in _parallel(lambda h: h.check_support(manifest), hosts)
                if isinstance(e, DeployerError)
            ]
        )
    if not any(n.external for n in manifest.networks) and not any(
        v.external for v in manifest.volumes
    ):
        return
    _raise_first(
        [
            e
            for e in _parallel(lambda h: h.check_external(manifest), hosts)
            if isinstance(e, DeployerError)
        ]
    )


def _api_lt(have: str, want: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".") if p.isdigit())

    return bool(have) and parts(have) < parts(want)


def needs_api(manifest: Manifest) -> list[tuple[str, str, str]]:
    """(key path, Docker API version, what) of each setting only newer engines have."""
    out = []
    for svc in manifest.services:
        for i, m in enumerate(svc.volumes):
            if m.subpath:
                out.append((f"services.{svc.name}.volumes[{i}]", "1.45", "a volume subpath"))
        if svc.annotations:
            out.append((f"services.{svc.name}.annotations", "1.43", "annotations"))
        # older engines ignore a cgroup namespace mode, and take no device requests
        if svc.cgroup:
            out.append((f"services.{svc.name}.cgroup", "1.41", "a cgroup namespace mode"))
        if svc.gpus:
            out.append((f"services.{svc.name}.gpus", "1.40", "a GPU request"))
        for a in svc.networks:
            at = f"services.{svc.name}.networks.{a.name}"
            if a.gw_priority:
                out.append((f"{at}.gw_priority", "1.48", "gw_priority (Docker Engine 28.0)"))
            if a.mac_address:  # older engines take one, the container's (as docker compose)
                out.append(
                    (f"{at}.mac_address", "1.44", "a MAC address per network (Docker Engine 25)")
                )
    return out


def check_engine_api(manifest: Manifest, hosts: Sequence[tuple[str, str]]) -> None:
    """Refuse, before anything changes, a setting one of the hosts' engines cannot apply."""
    problems = [
        f"{manifest.path}: {path}: {what} needs Docker API {version} (the engine of {host} "
        f"speaks {api})"
        for path, version, what in needs_api(manifest)
        for host, api in hosts
        if _api_lt(api, version)
    ]
    if problems:
        raise InvalidInput(
            "\n".join(problems),
            hint="upgrade the Docker engine of these hosts, or remove the setting",
        )


def prepare(
    manifest: Manifest,
    environ: Mapping[str, str],
    only: Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connected: Sequence[DockerHost] | None = None,
) -> Prepared:
    """Connect, resolve, observe and plan. The caller must ``close()`` the result.

    ``connected``: hosts the caller already connected with ``connect_hosts`` (to show the
    connection as its own step); they are closed too when preparing fails.
    """
    hosts = list(connected) if connected is not None else []
    try:
        scope = check_only(manifest, only)
        if connected is None:
            hosts = connect_hosts(manifest, environ, timeout=timeout)
        if not hosts:
            raise Unreachable(f"environment {manifest.environment.name} has no hosts")
        check_bind_links(manifest, hosts)
        check_external(manifest, hosts)
        check_engine_api(manifest, [(h.name, h.api_version) for h in hosts])
        digests = resolve_digests(manifest, hosts[0], environ, scope)
        observed = observe_all(manifest, hosts)
        plan = make_plan(manifest, observed, digests, scope)
    except BaseException:
        close_all(hosts)
        raise
    return Prepared(manifest, hosts, digests, observed, plan)
