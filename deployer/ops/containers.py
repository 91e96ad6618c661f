"""``Operations`` on container environments: every host of the environment, one
connection each (as a deploy), the app found by its labels."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker import lock as _lock
from deployer.docker.containers import wrapped
from deployer.docker.execute import ExecIO, exec_in
from deployer.docker.host import DockerHost
from deployer.docker.networks import KeptNetwork, left_behind, remove_network
from deployer.engine import lock_key
from deployer.errors import DeployerError
from deployer.manifest.model import Manifest, Task
from deployer.naming import edge_lock_key
from deployer.ops import (
    Event,
    LockState,
    Replica,
    ReplicaLog,
    RestartApply,
    StatRow,
    engine_events,
    release_digest,
    restart_plan,
    split_stamped,
    stat_row,
)
from deployer.ops.history import merge, state_events
from deployer.plan import HostPlan, Observed, Plan, Step
from deployer.targets import close_all, connect_hosts, connect_reachable, each, each_flat

if TYPE_CHECKING:
    from deployer.context import Context
    from deployer.ownership import Owner
    from deployer.report.log import JobLog
    from deployer.requests import Request

# What `down` removes the containers of: everything of the app's environment but the lock.
_NOT_LOCK = L.ROLE_LOCK
READERS = 8  # log reads in flight per host (the engine answers each on its own)


def _ours(app: str, env: str) -> dict[str, list[str]]:
    return {"label": [f"{L.APP}={app}", f"{L.ENVIRONMENT}={env}"]}


class ContainerOperations:
    def __init__(
        self,
        manifest: Manifest,
        hosts: Sequence[DockerHost],
        environ: Mapping[str, str] | None = None,
        unreachable: Sequence[DeployerError] = (),
    ) -> None:
        self.manifest = manifest
        self.unreachable = unreachable
        self.environ: Mapping[str, str] = environ or {}
        self.hosts = sorted(hosts, key=lambda h: h.name)
        self.app = manifest.app
        self.env = manifest.environment.name
        self.key = lock_key(self.app, self.env)

    @classmethod
    def open(
        cls, manifest: Manifest, environ: Mapping[str, str], *, reachable_only: bool = False
    ) -> ContainerOperations:
        if not reachable_only:
            return cls(manifest, connect_hosts(manifest, environ), environ)
        hosts, unreachable = connect_reachable(manifest, environ)
        return cls(manifest, hosts, environ, unreachable)

    @property
    def where(self) -> str:
        return ", ".join(h.name for h in self.hosts)

    def services(self) -> Sequence[str]:
        return self.manifest.service_names

    def close(self) -> None:
        close_all(self.hosts)

    def owners(self) -> list[Owner]:
        from deployer.ownership import owner_of
        from deployer.targets import observe_all

        by_host = {o.host: o.containers for o in observe_all(self.manifest, self.hosts)}
        return each(
            lambda h: owner_of(h.name, h.releases(self.app, self.env), by_host.get(h.name, ())),
            self.hosts,
        )

    # -- lock ---------------------------------------------------------------------------

    def _lock_containers(self, host: DockerHost, key: str) -> list[dict[str, Any]]:
        with wrapped(f"read the lock {key}", host.name):
            found: list[dict[str, Any]] = host.api.containers(
                all=True, filters={"label": [f"{_lock.KEY}={key}"]}
            )
        return L.not_swarm_tasks(found)

    def _edge_key(self) -> str | None:
        """The lock of the environment's edge proxy, when it has one: a deploy killed while
        it edited the proxy's config leaves it, and every deploy behind that proxy waits."""
        edge = self.manifest.edge or self.manifest.environment.proxy
        return edge_lock_key(edge.name) if edge is not None else None

    def lock_states(self) -> Sequence[LockState]:
        out = []
        edge = self._edge_key()
        for key in (self.key, edge):
            if key is None:
                continue
            for host in self.hosts:
                found = self._lock_containers(host, key)
                main = [c for c in found if _lock.LEASE not in (c.get("Labels") or {})]
                if not main:
                    continue
                labels = main[0].get("Labels") or {}
                expires = max(float((c.get("Labels") or {}).get(_lock.EXPIRES) or 0) for c in found)
                out.append(
                    LockState(
                        host.name,
                        labels.get(_lock.HOLDER, "?"),
                        float(labels.get(_lock.SINCE) or 0),
                        expires,
                        tuple(c["Id"] for c in found),
                        key="" if key == self.key else key,
                    )
                )
        return out

    def break_lock(self, states: Sequence[LockState]) -> list[str]:
        removed = []
        by_name = {h.name: h for h in self.hosts}
        for state in states:
            host = by_name[state.where]
            what = f"edge proxy lock {state.key}" if state.key else f"deploy lock {self.key}"
            with wrapped(f"remove the {what}", host.name):
                for cid in state.ids:
                    with contextlib.suppress(docker.errors.NotFound):
                        host.api.remove_container(cid, force=True)
            removed.append(f"{host.name}: {what}")
        return removed

    # -- down ---------------------------------------------------------------------------

    def down(
        self, *, holder: str, ttl: float, volumes: bool, say: Callable[[str], None]
    ) -> list[str]:
        leases = []
        kept: list[KeptNetwork] = []
        try:
            for host in self.hosts:  # every lock first: refuse before anything is removed
                leases.append((host, host.acquire_lock(self.key, holder, ttl, 0.0)))
            removed = each_flat(
                lambda h: self._down_host(h, volumes, say, holder, kept), self.hosts
            )
        finally:
            for host, lease in leases:
                with contextlib.suppress(DeployerError):
                    host.release_lock(lease)
        if kept:
            raise left_behind(f"{self.app}/{self.env}", removed, kept)
        return removed

    def _down_host(
        self,
        host: DockerHost,
        volumes: bool,
        say: Callable[[str], None],
        holder: str,
        kept: list[KeptNetwork],
    ) -> list[str]:
        api: docker.APIClient = host.api
        removed: list[str] = []

        def gone(what: str) -> None:
            removed.append(f"{host.name}: {what}")
            say(f"{host.name}: removed {what}")

        with wrapped(f"remove {self.app}/{self.env}", host.name):
            found = L.not_swarm_tasks(api.containers(all=True, filters=_ours(self.app, self.env)))
            self._stop_running(host, found, say)
            for c in found:
                if (c.get("Labels") or {}).get(L.ROLE) == _NOT_LOCK:
                    continue
                name = (c.get("Names") or ["/?"])[0].lstrip("/")
                try:  # anonymous volumes go with their container only when volumes go too
                    api.remove_container(c["Id"], force=True, v=volumes)
                except docker.errors.NotFound:
                    continue
                gone(f"container {name}")
            networks = api.networks(filters=_ours(self.app, self.env))
            self._detach_edge(host, [n["Id"] for n in networks], gone, say, holder)
            for net in networks:  # what else is on it goes too, or is named
                done = remove_network(api, host.name, net, self._ours, say)
                if isinstance(done, KeptNetwork):
                    kept.append(done)  # the rest is removed all the same
                elif done:
                    gone(f"network {net['Name']}")
            for vol in api.volumes(filters=_ours(self.app, self.env)).get("Volumes") or []:
                labels = vol.get("Labels") or {}
                if labels.get(L.ROLE) == L.ROLE_RELEASE:
                    what = f"release {labels.get(L.RELEASE, vol['Name'])}"
                elif labels.get(L.ROLE) == "files":  # copies of the repository's files: config
                    what = f"files {labels.get(L.PREFIX + 'files-name', vol['Name'])}"
                elif volumes:
                    what = f"volume {vol['Name']}"
                else:
                    continue
                with contextlib.suppress(docker.errors.NotFound):
                    api.remove_volume(vol["Name"])
                    gone(what)
        if not volumes:
            data = [
                v["Name"]
                for v in api.volumes(filters=_ours(self.app, self.env)).get("Volumes") or []
            ]
            if data:
                say(f"{host.name}: kept volume(s) {', '.join(data)} (remove with --volumes)")
        return removed

    def _ours(self, labels: Mapping[str, str]) -> bool:
        return labels.get(L.APP) == self.app and labels.get(L.ENVIRONMENT) == self.env

    def _stop_running(
        self, host: DockerHost, found: Sequence[dict[str, Any]], say: Callable[[str], None]
    ) -> None:
        """The running containers of the manifest's services stop as ``docker compose
        down`` stops them before removing them: the dependents first (the reverse of the
        start order), each after its ``pre_stop`` hooks, within its stop grace period."""
        from deployer.plan import waves
        from deployer.rollout.hooks import run_pre_stop
        from deployer.rollout.state import grace_of

        running: dict[str, list[dict[str, Any]]] = {}
        for c in found:
            labels = c.get("Labels") or {}
            if c.get("State") != "running" or labels.get(L.ROLE) in (L.ROLE_LOCK, L.ROLE_TASK):
                continue
            running.setdefault(labels.get(L.SERVICE) or "", []).append(c)

        def stop(c: dict[str, Any]) -> None:
            svc = self.manifest.service(c["Labels"][L.SERVICE])
            name = (c.get("Names") or ["/?"])[0].lstrip("/")
            grace = grace_of(svc)
            run_pre_stop(host, lambda text: say(f"{host.name}: {text}"), svc, c["Id"], name, grace)
            with wrapped(f"stop {name}", host.name), contextlib.suppress(docker.errors.NotFound):
                host.api.stop(c["Id"], timeout=int(max(grace, 0)))  # gone meanwhile: as wanted

        for wave in reversed(waves(self.manifest.services)):
            each(stop, [c for service in wave for c in running.get(service, [])])

    def _detach_edge(
        self,
        host: DockerHost,
        networks: Sequence[str],
        gone: Callable[[str], None],
        say: Callable[[str], None],
        holder: str,
    ) -> None:
        """The edge proxy forgets the environment: its routes go, and it leaves the
        environment's networks (a network with the proxy still on it cannot be removed).
        The proxy itself stays: other apps and environments use it."""
        edge = self.manifest.edge
        if edge is None:
            return
        from deployer.proxy import routes as R
        from deployer.proxy.caddy import CaddyHost
        from deployer.proxy.retire import forget

        proxy = CaddyHost(host.client, host.name, edge)
        try:
            container = host.client.containers.get(edge.name)
        except docker.errors.NotFound:
            return

        def waits(text: str) -> None:
            say(f"{host.name}: {text}")

        for rid in dict.fromkeys(forget(proxy, host, self.app, self.env, holder, waits)):
            gone(f"route of {R.service_of(rid)} on {edge.name}")
        for net in networks:
            # Not on it (NotFound or an API error): removing the network says what is wrong.
            with contextlib.suppress(docker.errors.APIError):
                host.client.networks.get(net).disconnect(container, force=True)

    # -- replicas, exec, stats ------------------------------------------------------------

    def replicas(self, services: Sequence[str] = ()) -> list[Replica]:
        out = []
        for host in self.hosts:
            for c in self._replicas(host, services):
                if c.get("State") != "running":
                    continue
                labels = c.get("Labels") or {}
                out.append(
                    Replica(host.name, labels[L.SERVICE], int(labels.get(L.REPLICA) or 0), c["Id"])
                )
        return sorted(out, key=lambda r: (r.where, r.service, r.replica))

    def _host(self, name: str) -> DockerHost:
        return next(h for h in self.hosts if h.name == name)

    def exec(self, replica: Replica, command: Sequence[str], io: ExecIO) -> int:
        host = self._host(replica.where)
        return exec_in(host.api, host.name, replica.container_id, command, io)

    def stats(self) -> list[StatRow]:
        def one(host: DockerHost) -> list[StatRow]:
            rows = []
            for r in self.replicas():
                if r.where != host.name:
                    continue
                with wrapped(f"read the stats of {r.service}.{r.replica}", host.name):
                    try:
                        sample = host.api.stats(r.container_id, stream=False)
                        info = host.api.inspect_container(r.container_id)
                    except docker.errors.NotFound:
                        continue
                rows.append(stat_row(r, sample, info))
            return rows

        return each_flat(one, self.hosts)

    def run(self, task: Task, say: Callable[[str], None]) -> int:
        host = self.hosts[0]  # one run, on the environment's first host
        digest = release_digest(host.releases(self.app, self.env), task.service, host.name)
        labels = {
            L.MANAGED: "true",
            L.APP: self.app,
            L.ENVIRONMENT: self.env,
            L.SERVICE: task.service,
            L.DIGEST: digest,
            L.ROLE: L.ROLE_TASK,
        }
        say(f"{host.name}: running {task.name} from {digest}")
        out = host.run_task(
            self.manifest,
            self.manifest.service(task.service),
            digest,
            task.command,
            labels,
            task.timeout,
            say,
        )
        return out.exit_code

    def events(self, since: float, until: float) -> list[Event]:
        """The engine's events, and what the state of each container the host still has
        tells that the engine no longer holds (``deployer.ops.history``)."""
        lo, hi = since * 1e9, until * 1e9

        def one(host: DockerHost) -> list[Event]:
            filters = {"type": "container", **_ours(self.app, self.env)}
            with wrapped("read the engine's events", host.name):
                found = engine_events(
                    host.api,
                    host.name,
                    filters,
                    since,
                    until,
                    L.SERVICE,
                    L.REPLICA,
                    skip_label=L.SWARM_TASK_ID,
                )
            with wrapped("read the state of the app's containers", host.name):
                state = [
                    e
                    for c in L.not_swarm_tasks(
                        host.api.containers(all=True, filters=_ours(self.app, self.env))
                    )
                    for e in _state_events(host, str(c["Id"]))
                    if lo <= e.time_ns <= hi
                ]
            return merge(found, state)

        return sorted(each_flat(one, self.hosts), key=lambda e: (e.time_ns, e.where))

    # -- restart ------------------------------------------------------------------------

    def restart_plan(self, services: Sequence[str], hard: bool) -> tuple[Plan, dict[str, Any]]:
        """A plan that replaces every replica of ``services`` with the same image (the
        deployed release's digest) and configuration; (plan, observed by host).
        ``InvalidInput`` when what runs differs from the manifest (deploy instead)."""
        from deployer.plan import Action, make_plan
        from deployer.targets import observe_all

        first = self.hosts[0]
        releases = first.releases(self.app, self.env)
        digests = {s: release_digest(releases, s, first.name) for s in services}
        observed = observe_all(self.manifest, self.hosts)
        plan = make_plan(self.manifest, observed, digests, list(services))

        def replace(hp: HostPlan, step: Step) -> Step:
            running = observed_of(observed, hp.host).of_service(step.service)
            return dataclasses.replace(
                step,
                action=Action.REPLACE,
                reasons=("restart",),
                replace=tuple(c.id for c in running),
                strategy="stop-first" if hard else step.strategy,
            )

        plan = restart_plan(plan, services, self.manifest.path, replace)
        return plan, {o.host: o for o in observed}

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
        from deployer.report.plan import render

        plan, observed = self.restart_plan(services, hard)
        log.line(
            f"restarting {', '.join(services)} of {self.app}/{self.env} "
            f"({'stop-first' if hard else 'as a rollout'}), by {context.holder}"
        )
        log.text(render(plan, "text"))
        return apply(plan, self.hosts, observed)

    # -- logs ---------------------------------------------------------------------------

    def _replicas(self, host: DockerHost, services: Sequence[str]) -> list[dict[str, Any]]:
        """The containers of ``services`` that run (or ran) as the current replicas."""
        with wrapped("list containers", host.name):
            found: list[dict[str, Any]] = host.api.containers(
                all=True, filters=_ours(self.app, self.env)
            )
        out = []
        found = L.not_swarm_tasks(found)
        for c in found:
            labels = c.get("Labels") or {}
            if labels.get(L.ROLE) in (L.ROLE_LOCK, L.ROLE_TASK, L.ROLE_RELEASE):
                continue
            if not labels.get(L.SERVICE) or (services and labels[L.SERVICE] not in services):
                continue
            name = (c.get("Names") or ["/"])[0].lstrip("/")
            if "--" in name:  # a kept or starting container, not a current replica
                continue
            out.append(c)
        return out

    def logs(
        self,
        services: Sequence[str],
        *,
        since: float | None,
        until: float | None,
        tail: int | None,
    ) -> list[ReplicaLog]:
        def one(host: DockerHost) -> list[ReplicaLog]:
            def read(c: dict[str, Any]) -> ReplicaLog:
                labels = c.get("Labels") or {}
                return container_logs(
                    host.api,
                    host.name,
                    c["Id"],
                    labels[L.SERVICE],
                    int(labels.get(L.REPLICA) or 0),
                    since=since,
                    until=until,
                    tail=tail,
                )

            # The replicas of a host are read side by side (the engine answers each
            # request on its own; over SSH each is a channel of the one connection).
            return each(read, self._replicas(host, services), limit=READERS)

        return each_flat(one, self.hosts)


def container_logs(
    api: docker.APIClient,
    host: str,
    container_id: str,
    service: str,
    replica: int,
    *,
    since: float | None,
    until: float | None,
    tail: int | None,
) -> ReplicaLog:
    """One container's lines in one bounded request (no stream), stdout and stderr."""
    kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": True}
    if since is not None:
        kwargs["since"] = since
    if until is not None:
        kwargs["until"] = until
    kwargs["tail"] = "all" if tail is None else tail
    with wrapped(f"read the logs of {service}.{replica}", host):
        try:
            raw: bytes = api.logs(container_id, stream=False, **kwargs)
        except docker.errors.NotFound:
            raw = b""  # replaced meanwhile: the new one is read next time
    stamps, texts = split_stamped(raw.decode("utf-8", errors="replace"))
    return ReplicaLog(host, service, replica, container_id, stamps, texts)


def remove_in_use(call: Callable[[str], object], what: str, deadline: float = 30.0) -> bool:
    """Remove ``what`` (a network, a volume) through ``call``; False when it is gone
    already. A container the engine is still taking away may hold it for a moment
    (409, or 403 "has active endpoints"): retried within ``deadline``."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            call(what)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as e:
            busy = e.status_code == 409 or (
                e.status_code == 403 and "active endpoints" in str(e.explanation or "")
            )
            if not busy or time.monotonic() > give_up:
                raise
        time.sleep(0.5)


def observed_of(observed: Sequence[Observed], host: str) -> Observed:
    return next(o for o in observed if o.host == host)


def _state_events(host: DockerHost, container_id: str) -> list[Event]:
    try:
        info = host.api.inspect_container(container_id)
    except docker.errors.NotFound:  # removed since it was listed
        return []
    return state_events(info, host.name, L.SERVICE, L.REPLICA)
