"""The edge proxy container on one Docker host, and Caddy's admin API inside it.

The admin API listens on 127.0.0.1:2019 inside the container only; every call is a
``docker exec`` of a few lines of shell (busybox ``nc``, present in the upstream caddy image
and in the one scripts/build-proxy-image builds), so it works the same over unix, TCP+TLS
and SSH, and the admin API is never exposed on the network.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import docker
import docker.errors

from deployer import labels as L
from deployer.docker.containers import wrapped
from deployer.docker.execute import ExecIO, exec_in
from deployer.errors import DeployFailed
from deployer.manifest.model import EdgeProxy
from deployer.proxy import batch as B
from deployer.proxy import routes as R
from deployer.proxy.routes import EdgeError, ProxyDown

ROLE_EDGE = L.ROLE_EDGE
EDGE_IMAGE = L.PREFIX + "edge-image"
EDGE_LISTEN = L.PREFIX + "edge-listen"

# proxy-admin METHOD PATH LENGTH: prints the status code, a newline, the response body.
# The body (LENGTH bytes) is the exec's standard input, never an argument: an exec's
# command line is public on the host (the engine's events, its inspect data, the process
# list), and a body can hold private keys (the certificates of routes with key files).
_ADMIN = r"""
m="$1"; p="$2"; n="${3:-0}"
h='Host: 127.0.0.1:2019\r\nContent-Type: application/json'
{ printf '%s %s HTTP/1.0\r\n%b\r\nContent-Length: %s\r\n\r\n' "$m" "$p" "$h" "$n"
  [ "$n" = 0 ] || cat; } \
  | nc 127.0.0.1 2019 | sed -e '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/' -e '2,/^\r*$/d'
"""
# write PATH: standard input written aside, then renamed over
_WRITE_INPUT = 'mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && mv -f "$1.tmp" "$1"'
_WRITE = 'mkdir -p "$(dirname "$1")" && printf "%s" "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"'
# read FILE...: one line per file, "<path>\t<content>" (empty content when missing)
_READ_ALL = 'for f in "$@"; do printf "%s\\t%s\\n" "$f" "$(cat "$f" 2>/dev/null)"; done'
# write PATH CONTENT [PATH CONTENT...]: each one written aside, then renamed over
_WRITE_ALL = r"""
while [ $# -ge 2 ]; do
  mkdir -p "$(dirname "$1")" && printf '%s' "$2" > "$1.tmp" && mv -f "$1.tmp" "$1" || exit 1
  shift 2
done
"""


class CaddyHost:
    """The edge proxy of ``edge`` on one host (``host`` names it in messages)."""

    def __init__(self, client: docker.DockerClient, host: str, edge: EdgeProxy) -> None:
        self.client = client
        self.host = host
        self.edge = edge
        self._switches = B.Batcher(self._run_switches)

    # -- the container ----------------------------------------------------------------

    def _container(self) -> Any | None:
        try:
            return self.client.containers.get(self.edge.name)
        except docker.errors.NotFound:
            return None

    def _listen(self) -> str:
        return f"{self.edge.http} {self.edge.https or '-'}"

    def ensure(self, log: Callable[[str], None]) -> dict[str, Any]:
        """Run the proxy container as the manifest says: create it, start it, or replace
        it when its image or listen addresses changed (its config and certificates live
        in volumes and survive). Then wait until its admin API answers; returns its whole
        config (read once: a deploy works from it rather than asking route by route)."""
        with wrapped(f"run the edge proxy {self.edge.name}", self.host):
            c = self._container()
            if c is not None and (
                self.differs(c)
                # a proxy that does not run, whose image name now names another image
                # (fixed since): replaced; a running one is never replaced behind the
                # manifest's back (every app on the host would wait for it)
                or (c.status != "running" and self._image_moved(c))
            ):
                log(f"edge proxy {self.edge.name}: upgrading to {self.edge.image}")
                networks = self._app_networks(c)  # the new one joins them all
                c.stop(timeout=max(1, int(self.edge.drain_timeout)))
                c.remove()
                c = self._create()
                for network in networks:
                    with contextlib.suppress(docker.errors.NotFound):  # removed meanwhile
                        self.join([network])
                log(f"edge proxy {self.edge.name}: started ({self.edge.image}, {self._listen()})")
            elif c is None:
                c = self._create()
                log(f"edge proxy {self.edge.name}: started ({self.edge.image}, {self._listen()})")
            elif c.status not in ("running", "restarting"):
                c.start()
                log(f"edge proxy {self.edge.name}: started again")
        config = self._wait_admin()
        if self._ensure_base(config):
            config = self._wait_admin()
        return config

    def differs(self, c: Any) -> bool:
        """The proxy container ``c`` runs another image or listens elsewhere than the
        manifest says: a deploy replaces it."""
        labels = c.labels or {}
        return bool(
            labels.get(EDGE_IMAGE) != self.edge.image or labels.get(EDGE_LISTEN) != self._listen()
        )

    def owners(self) -> set[tuple[str, str]]:
        """(app, environment) of every route the running proxy holds, on any listener."""
        got = self.get("/config/apps/http/servers")
        servers = got if isinstance(got, dict) else {}
        out: set[tuple[str, str]] = set()
        for server in servers.values():
            for route in (server or {}).get("routes") or []:
                owner = R.owner_of(str(route.get("@id", "")))
                if owner is not None:
                    out.add((owner[0], owner[1]))
        return out

    def network_owners(self, c: Any) -> set[tuple[str, str]]:
        """(app, environment) of every network the proxy container ``c`` is on, running or
        not (it joins the network of each app it routes to); a compose project's network
        (an adopted app's) counts as (project, ""), any other as its own name's."""
        out: set[tuple[str, str]] = set()
        for network in self._app_networks(c):
            try:
                labels = self.client.api.inspect_network(network).get("Labels") or {}
            except docker.errors.NotFound:
                continue
            owner = labels.get(L.APP) or labels.get(L.COMPOSE_PROJECT) or network
            out.add((owner, labels.get(L.ENVIRONMENT) or ""))
        return out

    @staticmethod
    def _app_networks(c: Any) -> list[str]:
        """The networks the proxy container ``c`` joined: those of the apps it routes to."""
        networks = c.attrs.get("NetworkSettings", {}).get("Networks") or {}
        return [n for n in networks if n not in ("bridge", "host", "none")]

    def _image_moved(self, c: Any) -> bool:
        """The image's name now names another image on the host (rebuilt or pulled since
        the proxy was created)."""
        try:
            now = self.client.api.inspect_image(self.edge.image).get("Id")
        except docker.errors.ImageNotFound:
            return False
        return bool(now) and now != c.attrs.get("Image")

    def _create(self) -> Any:
        ports: dict[str, tuple[str, int]] = {}
        for inner, addr in (("80/tcp", self.edge.http), ("443/tcp", self.edge.https)):
            if addr:
                ip, _, port = addr.rpartition(":")
                ports[inner] = (ip.strip("[]"), int(port))
        name = self.edge.name
        return self.client.containers.run(
            self.edge.image,
            ["caddy", "run", "--resume"],
            name=name,
            detach=True,
            ports=ports,
            environment={"XDG_CONFIG_HOME": "/config", "XDG_DATA_HOME": "/data"},
            volumes={
                f"{name}-config": {"bind": "/config", "mode": "rw"},
                f"{name}-data": {"bind": "/data", "mode": "rw"},
            },
            labels={
                L.MANAGED: "true",
                L.ROLE: ROLE_EDGE,
                EDGE_IMAGE: self.edge.image,
                EDGE_LISTEN: self._listen(),
            },
            restart_policy={"Name": "unless-stopped"},
            healthcheck={
                "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:2019/config/"],
                "interval": 5_000_000_000,
                "timeout": 3_000_000_000,
                "retries": 3,
            },
        )

    def _wait_admin(self, timeout: float = 60.0) -> dict[str, Any]:
        """The proxy's whole config, once its admin API answers."""
        deadline = time.monotonic() + timeout
        last = ""
        pause = 0.05
        while time.monotonic() < deadline:
            try:
                status, body = self.admin("GET", "/config/")
            except DeployFailed as e:  # not running (yet), or restarting
                status, body = 0, e.message
            if status == 200:
                got = json.loads(body) if body.strip() else None
                return got if isinstance(got, dict) else {}
            last = body.strip()[-300:]
            if time.monotonic() > deadline - timeout + 3:
                self._fail_if_down()
            time.sleep(pause)
            pause = min(pause * 2, 0.3)
        raise EdgeError(
            f"{self.host}: the edge proxy {self.edge.name} did not answer on its admin API "
            f"within {timeout:g}s: {last}",
            hint=f"look at `docker logs {self.edge.name}` on the host",
        )

    def _fail_if_down(self) -> None:
        """A proxy that exited or restarts over and over will not answer: say so, with
        the last lines it wrote, rather than waiting for the admin API."""
        with wrapped(f"inspect the edge proxy {self.edge.name}", self.host):
            c = self._container()
            if c is None:
                raise EdgeError(f"{self.host}: the edge proxy {self.edge.name} is not there")
            if c.status == "running":
                return
            tail = c.logs(tail=10).decode("utf-8", "replace").strip()
        lines = "".join(f"\n  | {line}" for line in tail.splitlines()[-10:])
        raise EdgeError(
            f"{self.host}: the edge proxy {self.edge.name} is {c.status}, not running "
            f"(image {self.edge.image}); its last lines:{lines or ' (none)'}",
            hint=f"fix the proxy's image or its config (`docker logs {self.edge.name}` on "
            "the host), then deploy again: a proxy whose image changed is replaced",
        )

    def _ensure_base(self, config: dict[str, Any]) -> bool:
        """The listeners the deployer's routes live in; True when the config changed."""
        servers = R.servers_in(config)
        if servers.get(R.SERVER):
            if not self.edge.https or servers.get(R.TLS_SERVER):
                return False
            server = R.base_config(self.edge)["apps"]["http"]["servers"][R.TLS_SERVER]
            self._ok("PUT", f"/config/apps/http/servers/{R.TLS_SERVER}", server)
            return True
        self._ok("POST", "/load", R.base_config(self.edge))
        return True

    # -- admin API ----------------------------------------------------------------------

    def exec(self, cmd: list[str], data: bytes | None = None) -> tuple[int, str]:
        """``cmd`` in the proxy: (exit code, output). ``data`` goes on its standard input:
        what the proxy is given to keep (a request body, a file) goes this way, never as
        an argument, since an exec's command line is public on the host."""
        read = write = -1
        feeder: threading.Thread | None = None
        if data is not None:
            read, write = os.pipe()

            def feed() -> None:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(write, view) :]
                except OSError:  # the command ended without reading it all: its output says
                    pass
                finally:
                    os.close(write)

            feeder = threading.Thread(target=feed, name="edge-proxy-input", daemon=True)
        try:
            with wrapped(f"exec in the edge proxy {self.edge.name}", self.host):
                c = self._container()
                if c is None:
                    raise EdgeError(f"{self.host}: the edge proxy {self.edge.name} is not there")
                out = bytearray()
                if feeder is not None:
                    feeder.start()
                io = ExecIO(out.extend, out.extend, read if data is not None else None)
                try:
                    code = exec_in(self.client.api, self.host, c.id, cmd, io)
                except DeployFailed as e:
                    raise self._down(e) from e
        finally:
            if data is not None:
                os.close(read)  # a feeder still writing gets EPIPE and ends
                if feeder is not None and feeder.ident is not None:
                    feeder.join()
                elif feeder is not None:
                    os.close(write)
        return code, out.decode("utf-8", "replace")

    def _down(self, cause: DeployFailed, wrote: bool = True) -> DeployFailed:
        """``cause`` of a failed exec, or, when the proxy container does not run (stopped,
        killed or removed by someone during the deploy), ``ProxyDown`` saying so."""
        try:
            c = self._container()
            state = "not there" if c is None else c.status
            if c is not None and c.status == "exited":
                state += f" (exit code {c.attrs.get('State', {}).get('ExitCode')})"
        except (docker.errors.APIError, OSError):
            return cause
        if state == "running":
            return cause
        return ProxyDown(
            f"{self.host}: the edge proxy {self.edge.name} does not run: it is {state}",
            hint=f"a deploy starts it again and sets its routes (`docker logs {self.edge.name}` "
            "on the host says why it stopped)",
            wrote=wrote,
        )

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        if body is None:
            code, out = self.exec(["sh", "-c", _ADMIN, "proxy-admin", method, path])
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
            code, out = self.exec(
                ["sh", "-c", _ADMIN, "proxy-admin", method, path, str(len(payload))], payload
            )
        first, _, rest = out.partition("\n")
        if code != 0 or not first.strip().isdigit():
            return 0, out
        return int(first.strip()), rest

    def _ok(self, method: str, path: str, body: Any = None) -> str:
        status, text = self.admin(method, path, body)
        if status != 200:
            raise EdgeError(
                f"{self.host}: the edge proxy refused {method} {path}: "
                f"{status} {text.strip()[:300]}"
            )
        return text

    def get(self, path: str) -> Any:
        status, text = self.admin("GET", path)
        if status != 200 or not text.strip():
            return None
        return json.loads(text)

    # -- routes -------------------------------------------------------------------------

    def routes(self, server: str = R.SERVER) -> list[dict[str, Any]]:
        got = self.get(f"/config/apps/http/servers/{server}/routes")
        return list(got) if isinstance(got, list) else []

    def all_routes(self) -> list[dict[str, Any]]:
        """The routes of both listeners, read in one request."""
        got = self.get("/config/apps/http/servers")
        servers = got if isinstance(got, dict) else {}
        names = R.listeners(self.edge)
        return [r for n in names for r in (servers.get(n) or {}).get("routes") or []]

    def set_routes(self, server: str, routes: list[dict[str, Any]]) -> None:
        """Replace the route list of ``server``: one config change (one reload)."""
        self._ok("PATCH", f"/config/apps/http/servers/{server}/routes", routes)

    def put_route(self, route: dict[str, Any], server: str = R.SERVER) -> bool:
        """Create or replace one route (by its @id); True when the config changed.

        An unchanged route is not sent: every config change is a reload of Caddy, which
        closes its idle client connections, so a deploy never reloads for nothing."""
        rid = route["@id"]
        current = self.routes(server)
        others = [r for r in current if r.get("@id") != rid]
        mine = [r for r in current if r.get("@id") == rid]
        if mine and _same(mine[0], route) and _ordered(current):
            return False
        wanted = sorted([*others, route], key=R.route_order_key)
        self._ok("PATCH", f"/config/apps/http/servers/{server}/routes", wanted)
        return True

    def ensure_value(self, path: str, value: Any) -> bool:
        """Set the config at ``path`` to ``value`` unless it is that already (no reload)."""
        if _same(self.get(path), value):
            return False
        self._ok("PATCH" if self.get(path) is not None else "PUT", path, value)
        return True

    def write_file(self, path: str, text: str) -> bool:
        """Write ``text`` into the proxy's ``path`` unless it holds it already."""
        if self.read_upstream(path) == text.strip():
            return False
        code, _out = self.exec(["sh", "-c", _WRITE_INPUT, "write", path], text.encode())
        if code != 0:
            raise EdgeError(f"{self.host}: could not write {path} in the edge proxy")
        return True

    def remove_routes(self, rids: set[str], config: Mapping[str, Any]) -> list[str]:
        """Remove the routes with these ids from every server of ``config`` (the proxy's
        config, read under the proxy lock); returns the ids removed.

        By listing, not through ``/id/``: an id holds the environment's name, and a
        review app's (``review/<slug>``) has a ``/`` the admin API would read as a path."""
        removed: list[str] = []
        for server in R.listeners(self.edge):
            current = R.routes_in(config, server)
            keep = [r for r in current if r.get("@id") not in rids]
            if len(keep) != len(current):
                self._ok("PATCH", f"/config/apps/http/servers/{server}/routes", keep)
                removed += [str(r.get("@id")) for r in current if r.get("@id") in rids]
        return removed

    def write_upstream(self, path: str, address: str) -> None:
        code, out = self.exec(["sh", "-c", _WRITE, "write", path, address])
        if code != 0:
            raise EdgeError(f"{self.host}: could not write the upstream {path}: {out.strip()}")

    def read_upstream(self, path: str) -> str:
        code, out = self.exec(["cat", path])
        return out.strip() if code == 0 else ""

    def read_upstreams(self, paths: Sequence[str]) -> dict[str, str]:
        """The content of each file ("" when missing), in one exec."""
        if not paths:
            return {}
        code, out = self.exec(["sh", "-c", _READ_ALL, "read", *paths])
        if code != 0:
            raise EdgeError(f"{self.host}: could not read the upstreams: {out.strip()[:300]}")
        got = dict(line.partition("\t")[::2] for line in out.splitlines() if "\t" in line)
        return {p: got.get(p, "").strip() for p in paths}

    def write_upstreams(self, files: Mapping[str, str]) -> None:
        """Write each upstream file (each one an atomic rename), in one exec."""
        if not files:
            return
        args = [x for path, address in files.items() for x in (path, address)]
        code, out = self.exec(["sh", "-c", _WRITE_ALL, "write", *args])
        if code != 0:
            raise EdgeError(f"{self.host}: could not write the upstreams: {out.strip()[:300]}")

    def reachable(self, address: str, path: str | None, timeout: float = 5.0) -> str | None:
        """None when ``address`` answers (HTTP 2xx/3xx on ``path``, or a TCP connect)."""
        args = B.check_args(address, path, timeout)
        code, out = self.exec(["sh", "-c", B.CHECK + 'check "$@"', "check", *args])
        return None if code == 0 else (out.strip() or f"exit {code}")

    def switch_upstream(
        self,
        path: str,
        address: str,
        check: str | None,
        timeout: float = 5.0,
        *,
        drain: Sequence[str] | None = None,
        drain_timeout: float = 0.0,
    ) -> tuple[bool, str, int]:
        """When ``address`` answers (``check`` path, or a TCP connect), write it as the
        upstream ``path``. Then, with ``drain`` (addresses other slots held), wait until
        the proxy holds no open TCP connection to them nor to what ``path`` held (in-flight
        or idle; counted every 0.1 s), at most ``drain_timeout`` seconds. (True, the
        previous upstream, the connections still open) or (False, why not, 0). Switches
        asked for at once go in one exec (deployer/proxy/batch.py)."""
        return self._switches.submit(
            B.Switch(
                path=path,
                address=address,
                check=check,
                timeout=timeout,
                drain=None if drain is None else _drain_hex(drain),
                rounds=max(1, int(drain_timeout * 10)) if drain is not None else 0,
            )
        )

    def _run_switches(
        self,
        batch: Sequence[B.Switch],
        deliver: Callable[[int, B.Outcome], None],
        written: Callable[[], None],
    ) -> None:
        args = [a for s in batch for a in s.args()]
        seen: list[str] = []

        def lines(chunks: Iterator[str]) -> Iterator[str]:
            for line in chunks:
                seen.append(line)
                yield line

        def wrote() -> bool:  # a slot written before the proxy stopped
            return any(line.startswith("switched ") for line in seen)

        try:
            with wrapped(f"exec in the edge proxy {self.edge.name}", self.host):
                stream, code = self._exec_lines(["sh", "-c", B.SCRIPT, "batch", *args])
                done = B.parse(lines(stream), len(batch), deliver, written)
                exit_code = code()
        except DeployFailed as e:
            raise self._down(e, wrote()) from e
        if len(done) < len(batch):
            out = "".join(seen).strip()[-300:] or f"exit {exit_code}"
            raise self._down(
                EdgeError(f"{self.host}: could not write the upstreams: {out}"), wrote()
            )

    def _exec_lines(self, cmd: list[str]) -> tuple[Iterator[str], Callable[[], int]]:
        """Run ``cmd`` in the proxy; its output line by line as it comes, and a call for
        its exit code once the output ended. The connection is taken over from the HTTP
        client (deployer.docker.execute), as in ``exec``: the SDK's own streaming reads
        past the bytes its HTTP client buffered with the response's headers, and loses
        the first lines of a command that printed them before the client read the
        headers (on a busy runner: the switch's "switched" line, a failed deploy)."""
        chunks: queue.Queue[bytes | None] = queue.Queue()
        result: dict[str, int | BaseException] = {}

        def run() -> None:
            try:
                io = ExecIO(chunks.put, chunks.put)
                result["code"] = exec_in(self.client.api, self.host, self.edge.name, cmd, io)
            except BaseException as e:  # noqa: BLE001 (raised again in the reader)
                result["error"] = e
            finally:
                chunks.put(None)

        threading.Thread(target=run, name="edge-exec", daemon=True).start()

        def lines() -> Iterator[str]:
            decode = codecs.getincrementaldecoder("utf-8")("replace").decode
            buf = ""
            while (chunk := chunks.get()) is not None:
                buf += decode(chunk)
                while "\n" in buf:
                    line, buf = buf.split("\n", 1)
                    yield line + "\n"
            buf += decode(b"", final=True)
            if buf:
                yield buf
            error = result.get("error")
            if isinstance(error, BaseException):
                raise error

        def code() -> int:
            got = result.get("code")
            return got if isinstance(got, int) else -1

        return lines(), code

    def connect(self, network: str) -> None:
        self.join([network])

    def join(self, networks: Sequence[str]) -> None:
        """Connect the proxy to each of ``networks`` it is not on yet (one inspect)."""
        with wrapped(f"connect the edge proxy to {', '.join(networks)}", self.host):
            c = self._container()
            if c is None:
                raise EdgeError(f"{self.host}: the edge proxy {self.edge.name} is not there")
            on = c.attrs.get("NetworkSettings", {}).get("Networks") or {}
            for network in dict.fromkeys(networks):
                if network in on:
                    continue
                try:
                    self.client.networks.get(network).connect(c)
                except docker.errors.APIError as e:
                    if "already exists" not in str(e):
                        raise

    def container_ip(self, container_id: str, network: str) -> str:
        with wrapped(f"inspect {container_id[:12]}", self.host):
            info = self.client.api.inspect_container(container_id)
        nets = info.get("NetworkSettings", {}).get("Networks") or {}
        ip = (nets.get(network) or {}).get("IPAddress") or ""
        if not ip:
            raise EdgeError(f"{self.host}: {container_id[:12]} has no address on {network}")
        return str(ip)


def _drain_hex(addresses: Sequence[str]) -> str:
    """``A|B|...``: the /proc/net/tcp{,6} forms of ``addresses`` ("" for none)."""
    wanted: list[str] = []
    for address in addresses:
        ip, _, port = address.rpartition(":")
        try:
            want = _hex_addr(ip, int(port))
        except ValueError:
            continue
        # Go's sockets are dual-stack: IPv4 peers show in tcp6 as ::ffff:a.b.c.d
        wanted += [want, "0000000000000000FFFF0000" + want]
    return "|".join(wanted)


def _hex_addr(ip: str, port: int) -> str:
    parts = [int(p) for p in ip.split(".")]
    if len(parts) != 4:
        raise ValueError(ip)
    return "".join(f"{b:02X}" for b in reversed(parts)) + f":{port:04X}"


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _ordered(routes: list[dict[str, Any]]) -> bool:
    return routes == sorted(routes, key=R.route_order_key)
