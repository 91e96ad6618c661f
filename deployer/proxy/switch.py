"""What a rollout asks of the edge proxy: claim routes, switch them, drain, undo.

Per host: the proxy's own config (its container, its route list) is changed only under
the host's proxy lock, so two deploys never edit it at once; within it, each app changes
only the routes whose id carries its own app and environment. A switch writes the
upstream file of each replica the group replaces (one atomic rename each): the next
request goes to the new container, requests in flight on the old one finish.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from deployer import labels as L
from deployer.engine import HostEngine, Lease, keep_renewing, service_networks
from deployer.errors import Blocked, DeployerError, DeployFailed, InvalidInput
from deployer.manifest.model import EdgeProxy, Manifest, Route, Service
from deployer.naming import edge_lock_key
from deployer.plan import Observed
from deployer.proxy import routes as R
from deployer.proxy import tls as T
from deployer.proxy.routes import EdgeError, ProxyDown

if TYPE_CHECKING:
    from deployer.proxy.caddy import CaddyHost

Line = Callable[[str, "str | None"], None]
Journal = Callable[[str, str, Callable[[], None]], None]  # host, what, undo

PROXY_LOCK_TTL = 300.0


def public_urls(manifest: Manifest) -> list[str]:
    """The public URL of each routed service, in the manifest's order."""
    edge = manifest.edge
    out = []
    for svc in manifest.public_services:
        route = svc.proxy
        assert route is not None and edge is not None
        tls = route.tls != "none" and edge.https
        scheme = "https" if tls else "http"
        listen = edge.https if tls else edge.http
        port = R.listen_port(listen or "")
        default = "443" if tls else "80"
        suffix = "" if port == default else f":{port}"
        prefix = "" if route.path_prefix in ("", "/") else route.path_prefix
        out.append(f"{scheme}://{route.host}{suffix}{prefix}")
    return out


class EdgeSwitch:
    """The edge proxy of one deploy, on each of its hosts."""

    def __init__(
        self,
        manifest: Manifest,
        edge: EdgeProxy,
        proxies: Mapping[str, CaddyHost],
        engines: Mapping[str, HostEngine],
        line: Line,
        *,
        holder: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.manifest = manifest
        self.edge = edge
        self.proxies = dict(proxies)
        self.engines = dict(engines)
        self.line = line
        self.holder = holder
        self.sleep = sleep

    @classmethod
    def for_rollout(
        cls, manifest: Manifest, engines: Mapping[str, HostEngine], line: Line, holder: str
    ) -> EdgeSwitch | None:
        """None when no service is public (or the hosts are not Docker hosts: unit fakes)."""
        edge = manifest.edge
        if edge is None:
            return None
        from deployer.proxy.caddy import CaddyHost  # the Docker SDK, only when needed

        proxies: dict[str, CaddyHost] = {}
        for name, engine in engines.items():
            client = getattr(engine, "client", None)
            if client is None:
                return None
            proxies[name] = CaddyHost(client, name, edge)
        return cls(manifest, edge, proxies, engines, line, holder=holder)

    # -- names ------------------------------------------------------------------------

    def rid(self, svc: Service) -> str:
        return R.route_id(self.manifest.app, self.manifest.environment.name, svc.name)

    def network(self, svc: Service) -> str:
        nets = service_networks(self.manifest, svc)
        if not nets:
            raise InvalidInput(
                f"service {svc.name} has a proxy route but no network the proxy can join",
                hint="remove network_mode, or the route",
            )
        return nets[0][0]

    def route(self, svc: Service) -> Route:
        assert svc.proxy is not None
        return svc.proxy

    # -- before the rollout -------------------------------------------------------------

    def claim(self) -> None:
        """Refuse (nothing touched) when another app or environment owns a host name, or
        when this manifest would replace a proxy that holds another's routes."""
        wanted = [self.route(s) for s in self.manifest.public_services]
        for host, proxy in self.proxies.items():
            c = proxy._container()
            if c is None:
                continue
            replacing = proxy.differs(c)
            try:
                routes = proxy.all_routes()
                owners = proxy.owners() if replacing else set()
            except DeployFailed:  # not running, or restarting: read once it runs (prepare)
                if replacing:  # the apps whose networks it joined: whose routes
                    self._refuse_replacing(host, proxy, c, proxy.network_owners(c))
                continue
            if replacing:
                self._refuse_replacing(host, proxy, c, owners)
            found = R.conflicts(routes, self.manifest.app, self.manifest.environment.name, wanted)
            if found:
                raise InvalidInput(
                    f"{host}: " + "; ".join(found),
                    hint="give this app's route another host name (or remove the other app's "
                    "route with its own deploy)",
                )

    def _refuse_replacing(
        self, host: str, proxy: CaddyHost, c: Any, owners: set[tuple[str, str]]
    ) -> None:
        """The proxy holds every app's routes and certificates (private keys included)
        in its volumes: only a manifest of the one app and environment whose routes it
        holds chooses its image and listen addresses. Another's would hand them all to
        the image it names."""
        from deployer.proxy.caddy import EDGE_IMAGE, EDGE_LISTEN

        if L.EDGE_PROXY_ALLOW in self.manifest.policy_allow:
            return  # the app that manages the shared proxy upgrades it
        mine = {(self.manifest.app, self.manifest.environment.name)}
        if self.manifest.compose_project:  # an adopted app's networks are compose's
            mine.add((self.manifest.compose_project, ""))
        others = sorted(f"{a}/{e}".rstrip("/") for a, e in owners if (a, e) not in mine)
        if not others:
            return
        labels = c.labels or {}
        raise InvalidInput(
            f"{host}: the edge proxy {self.edge.name} runs {labels.get(EDGE_IMAGE)} "
            f"({labels.get(EDGE_LISTEN)}) and routes {', '.join(others)} too; this manifest "
            f"names {self.edge.image} ({proxy._listen()}): it would replace the proxy of "
            "every app on the host",
            hint="name the image and addresses the proxy runs with (environments.<env>."
            "proxy), or give this app a proxy of its own (proxy.name and its own addresses); "
            f'to upgrade the shared proxy from this app, add "{L.EDGE_PROXY_ALLOW}" to '
            "`policy: {allow: [...]}`",
        )

    def prepare(self, observed: Mapping[str, Observed]) -> None:
        """Per host, under the proxy lock: the proxy runs, joins the app's networks, and
        holds this app's routes; a replica slot with no upstream yet gets the container
        running now (a service made public without a new image). Read from the proxy's
        config once; the routes of a listener change in one config change, the upstream
        files in one write."""
        for host in sorted(self.proxies):
            proxy = self.proxies[host]
            engine = self.engines[host]
            with proxy_lock(engine, self.edge.name, self.holder, partial(self._host_line, host)):
                config = proxy.ensure(partial(self._host_line, host))
                existing = [r for s in R.listeners(self.edge) for r in R.routes_in(config, s)]
                self._refuse_conflicts(host, existing)
                public = list(self.manifest.public_services)
                proxy.join([self.network(svc) for svc in public])
                # the files first: a route added or changed (more replicas) names files
                # that hold an address from its first request on
                self._fill_upstreams(host, proxy, public, observed.get(host))
                self._set_routes(host, proxy, config, public)
                self._tls(host, proxy, config)

    def _set_routes(
        self, host: str, proxy: CaddyHost, config: dict[str, Any], public: Sequence[Service]
    ) -> None:
        """Each listener's routes: the other apps' as they are, this app's as the manifest
        says (a route whose tls changed moves to the other listener); a listener whose
        routes are already so is not touched (every change is a reload of Caddy)."""
        mine = {self.rid(svc): svc for svc in public}
        for server in R.listeners(self.edge):
            current = R.routes_in(config, server)
            bodies = {
                rid: R.route_json(rid, self.route(svc), svc.replicas)
                for rid, svc in mine.items()
                if R.server_of(self.route(svc)) == server
            }
            # a route of this environment the manifest no longer has stays until the
            # deploy succeeded (retire): a rollback finds it as it was
            others = [r for r in current if r.get("@id") not in mine]
            wanted = sorted([*others, *bodies.values()], key=R.route_order_key)
            if _same(wanted, current):
                continue
            proxy.set_routes(server, wanted)
            before = {r.get("@id"): r for r in current}
            for rid, body in bodies.items():
                if rid not in before or not _same(before[rid], body):
                    self.line(f"edge proxy: route {self._shown(mine[rid])} set", host)

    def _fill_upstreams(
        self, host: str, proxy: CaddyHost, public: Sequence[Service], obs: Observed | None
    ) -> None:
        """Each replica slot names the container that runs as that replica now. A slot
        with no upstream yet gets it (a service made public without a new image); so does
        one that names another address, once the container answers: the engine restarted
        and gave the containers new addresses, or a killed deploy's replacement that the
        slot named was removed since (without this, a deploy with nothing to change left
        the route on an address nobody holds)."""
        slots: dict[str, tuple[Service, int, str]] = {}  # path -> (service, replica, address)
        for svc in public:
            for c in obs.of_service(svc.name) if obs else []:
                if c.running and c.replica <= svc.replicas:
                    path = R.upstream_file(self.rid(svc), c.replica)
                    addr = f"{proxy.container_ip(c.id, self.network(svc))}:{self.route(svc).port}"
                    slots[path] = (svc, c.replica, addr)
        have = proxy.read_upstreams(list(slots))
        proxy.write_upstreams({p: a for p, (_, _, a) in slots.items() if not have.get(p)})
        for path, (svc, replica, addr) in slots.items():
            held = have.get(path)
            if not held or held == addr:
                continue
            what = f"edge proxy: {self._shown(svc)} replica {replica} named {held}"
            problem = proxy.reachable(addr, self.route(svc).healthcheck)
            if problem is not None:
                self.line(
                    f"{what}, not its container's {addr}, which does not answer "
                    f"({problem}): left as it was",
                    host,
                )
                continue
            proxy.write_upstream(path, addr)
            self.line(f"{what}, not its container's address: now {addr}", host)

    def _tls(self, host: str, proxy: CaddyHost, config: Mapping[str, Any]) -> None:
        """This app's part of the TLS settings: an ACME policy for its auto routes, the
        certificates of its file routes; every other app's part as it is (tls.py)."""
        app, env = self.manifest.app, self.manifest.environment.name
        routes = [(s, self.route(s)) for s in self.manifest.public_services]
        tls = [(s, r) for s, r in routes if r.tls != "none"]
        if tls and not self.edge.https:
            raise InvalidInput(
                f"{tls[0][0].name}: a TLS route needs the proxy's https listener",
                hint="set environments.<env>.proxy.https, or tls: none",
            )
        autos = {r.host for _, r in tls if r.tls == "auto"}
        if autos and self.edge.acme_ca_root:
            text = _read(self.edge.acme_ca_root, "acme.ca_root")
            proxy.write_file(T.ca_root_file(app, env), text)
        files = [(s, r) for s, r in tls if r.tls == "file"]
        certificates = []
        for s, r in files:
            assert r.certificate is not None and r.key is not None
            certificates.append(
                {
                    "certificate": _read(r.certificate, f"{s.name}.proxy.tls.certificate"),
                    "key": _read(r.key, f"{s.name}.proxy.tls.key"),
                    "tags": [self.rid(s)],
                }
            )
        part = T.Part(
            policy=T.acme_policy(self.edge, app, env, autos) if autos else None,
            certificates=certificates,
            file_hosts=frozenset(r.host for _, r in files),
            hosts=frozenset(T.hosts_of(config, app, env) | {r.host for _, r in routes}),
        )
        for path, value in T.changes(config, app, env, part).items():
            proxy.ensure_value(path, value)
            if path == T.AUTOMATION:
                self.line(
                    "edge proxy: ACME issuer set" if autos else "edge proxy: ACME policy removed",
                    host,
                )
            elif path == T.LOAD_PEM and files:
                self.line(f"edge proxy: certificate(s) of {len(files)} route(s) loaded", host)

    def _host_line(self, host: str, text: str) -> None:
        self.line(text, host)

    def _refuse_conflicts(self, host: str, existing: list[dict[str, Any]]) -> None:
        wanted = [self.route(s) for s in self.manifest.public_services]
        found = R.conflicts(existing, self.manifest.app, self.manifest.environment.name, wanted)
        if found:
            raise InvalidInput(f"{host}: " + "; ".join(found))

    def _shown(self, svc: Service) -> str:
        r = self.route(svc)
        return f"{r.host}{'' if r.path_prefix == '/' else r.path_prefix} → {svc.name}:{r.port}"

    # -- during the rollout -------------------------------------------------------------

    def switch(
        self,
        host: str,
        svc: Service,
        moves: Sequence[tuple[int, str, str | None]],  # (replica, new id, old id or None)
        journal: Journal,
        timeout: float,
        *,
        drain: bool = False,
    ) -> None:
        """Move each replica's slot to its new container, once every new one answers on
        the route's port; with ``drain``, then wait until the proxy holds no connection to
        what the slots held (requests in flight finished, idle ones closed), at most
        ``drain_timeout``. The last move and the drain are one exec in the proxy. Each
        move is journalled, before it is made, with its undo (back to the old container,
        wherever it runs by then)."""
        proxy = self.proxies[host]
        route = self.route(svc)
        net = self.network(svc)
        news = [(rep, self._address(host, svc, new, net), new, old) for rep, new, old in moves]
        t0 = time.monotonic()
        befores: list[str] = []
        busy = 0
        for i, (rep, addr, new, old) in enumerate(news):
            path = R.upstream_file(self.rid(svc), rep)
            move = _Move()
            journal(
                host,
                f"route of {svc.name} replica {rep}",
                partial(self._undo, proxy, path, move, old, net, route.port),
            )
            last = drain and i == len(news) - 1
            move.before, busy = self._switch_when_reachable(
                host, proxy, svc, path, (addr, new), timeout, befores if last else None, move
            )
            if move.before and move.before != addr:
                befores.append(move.before)
            self.line(f"edge proxy: {self._shown(svc)} replica {rep} now {addr}", host)
        if not drain or not befores:
            return
        took = time.monotonic() - t0
        if busy:
            self.line(
                f"edge proxy: drain timeout ({self.edge.drain_timeout:g}s): {busy} connection(s) "
                "to the old container(s) still open; stopping them",
                host,
            )
        else:
            self.line(f"edge proxy: switched and old container(s) drained in {took:.1f}s", host)

    def _address(self, host: str, svc: Service, cid: str, net: str) -> str:
        """The new container's address on the route's network and port."""
        proxy = self.proxies[host]
        try:
            return f"{proxy.container_ip(cid, net)}:{self.route(svc).port}"
        except EdgeError:
            self._fail_if_stopped(host, svc, cid)  # it left the network as it exited
            raise

    def _fail_if_stopped(self, host: str, svc: Service, cid: str) -> None:
        """A new container that exited (or restarts) after it passed its healthcheck will
        not answer the proxy: fail now, saying so, rather than after the health timeout."""
        now = self.engines[host].health_now(cid)
        if now.status == "restarting" or now.status.startswith("exited"):
            raise EdgeError(
                f"{host}: {svc.name}: the new container is {now.status} after it passed its "
                "healthcheck, before the edge proxy was switched to it",
                hint="see its logs (`deployer logs`): it stopped on its own",
            )

    @staticmethod
    def _undo(
        proxy: CaddyHost, path: str, move: _Move, old: str | None, net: str, port: int
    ) -> None:
        """Back to the old container, at the address it has now and the port the slot
        named; nothing when the switch was refused before it wrote."""
        if move.refused:
            return
        addr = move.before
        if old is not None:
            listens = addr.rpartition(":")[2] if addr else str(port)
            # not on the network (stopped): the slot gets back what it held
            with contextlib.suppress(EdgeError):
                addr = f"{proxy.container_ip(old, net)}:{listens}"
        proxy.write_upstream(path, addr)

    def _switch_when_reachable(
        self,
        host: str,
        proxy: CaddyHost,
        svc: Service,
        path: str,
        new: tuple[str, str],  # the new container's address and id
        timeout: float,
        drain: Sequence[str] | None,
        move: _Move,
    ) -> tuple[str, int]:
        """Write the new container's address as the upstream once it answers; with
        ``drain`` (addresses the group's other slots held), then drain those and what this
        slot held. The previous upstream and the connections still open. A new container
        that stopped meanwhile (it passed its healthcheck, then exited) fails at once."""
        addr, cid = new
        route = self.route(svc)
        deadline = time.monotonic() + max(5.0, timeout)
        problem = "not checked"
        while time.monotonic() < deadline:
            try:
                done, text, busy = proxy.switch_upstream(
                    path,
                    addr,
                    route.healthcheck,
                    drain=drain,
                    drain_timeout=self.edge.drain_timeout,
                )
            except ProxyDown as e:
                move.refused = not e.wrote  # its undo has nothing to put back
                raise
            if done:
                return text, busy
            problem = text
            move.refused = True  # nothing written yet
            self._fail_if_stopped(host, svc, cid)
            move.refused = False
            self.sleep(0.5)
        move.refused = True  # every try stopped before the write
        what = (
            f"GET {route.healthcheck}"
            if route.healthcheck
            else f"a connection to port {route.port}"
        )
        raise EdgeError(
            f"{host}: {svc.name}: the new container does not answer {what} from the edge "
            f"proxy ({addr}): {problem}",
            hint=f"check that the container listens on port {route.port} (proxy.port)",
        )


@dataclass
class _Move:
    """One slot's switch, as its undo knows it: what the slot held (once the switch wrote),
    or refused (the new container never answered: nothing was written)."""

    before: str = ""
    refused: bool = False


def take_proxy_lock(
    engine: HostEngine, name: str, holder: str, say: Callable[[str], None]
) -> Lease:
    """The host's lock of the edge proxy ``name``. A wait for it is said, with its holder:
    a deploy killed while it held the lock leaves it until it expires (PROXY_LOCK_TTL),
    and every deploy to the host waits that long, unless `deployer unlock` breaks it."""
    key = edge_lock_key(name)
    try:
        return engine.acquire_lock(key, holder, PROXY_LOCK_TTL, 0.0)
    except Blocked as e:
        say(
            f"edge proxy: waiting for its lock ({e.message.partition(': ')[2]}); a deploy "
            "killed while it held the lock leaves it until it expires, or until `deployer "
            "unlock` breaks it"
        )
    return engine.acquire_lock(key, holder, PROXY_LOCK_TTL, PROXY_LOCK_TTL)


@contextlib.contextmanager
def proxy_lock(
    engine: HostEngine, name: str, holder: str, say: Callable[[str], None]
) -> Iterator[None]:
    """The host's lock of the edge proxy ``name``, held for the ``with`` block and renewed
    in the background meanwhile: a block longer than PROXY_LOCK_TTL (a slow pull of the
    proxy's image, a loaded host) keeps the lock, where the lease used to expire under it
    and let another deploy edit the proxy's config at the same time. A renewal that finds
    the lock taken (`deployer unlock` broke it) is said."""
    held = [take_proxy_lock(engine, name, holder, say)]

    def renew() -> None:
        try:
            held[0] = engine.renew_lock(held[0], PROXY_LOCK_TTL)
        except DeployerError as e:
            say(f"edge proxy: could not renew its lock: {e.message}")
            raise

    stop = keep_renewing(renew, PROXY_LOCK_TTL)
    try:
        yield
    finally:
        stop()
        engine.release_lock(held[0])


def proxy_of(manifest: Manifest) -> EdgeProxy:
    """The edge proxy of the manifest's environment, also when no service is public (the
    proxy that holds the routes it left from before)."""
    return manifest.edge or manifest.environment.proxy or EdgeProxy()


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _read(path: str, what: str) -> str:
    """A PEM file the manifest names (a File-type CI/CD variable): its text, never shown."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise InvalidInput(
            f"{what}: cannot read {path}: {e.strerror}",
            hint="use a File-type CI/CD variable, whose value is the path of the file",
        ) from e
    if "-----BEGIN" not in text:
        raise InvalidInput(f"{what}: {path} is not a PEM file")
    return text


def describe(routes: list[dict[str, Any]]) -> list[str]:
    """One line per route the deployer wrote: host, path, owner."""
    out = []
    for c in R.claims_of(routes):
        out.append(f"{c.host}{'' if c.path_prefix == '/' else c.path_prefix} ({c.owner})")
    return out
