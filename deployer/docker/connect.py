"""Connecting to one Docker host: unix socket, tcp with verified TLS, or ssh.

- The host URL comes from the manifest's environment, else ``DOCKER_HOST``, else the
  local socket (``host_urls``).
- ``tcp://`` always verifies the server's certificate. Certificates come from
  ``DOCKER_CERT_PATH`` (ca.pem, cert.pem, key.pem) or from CI variables holding the PEM
  text (``DOCKER_TLS_CA_CERT``, ``DOCKER_TLS_CERT``, ``DOCKER_TLS_KEY``), held in
  in-memory files (``memfd_create``: never on disk, gone with the process even after
  ``kill -9``), or where the system has none in a private temporary directory (0700/0600)
  removed on ``close()``. Plain tcp is refused
  unless the environment sets ``allow_insecure_tcp``.
- ``ssh://`` checks the host key strictly against ``SSH_KNOWN_HOSTS`` (the variable's
  text) or ``~/.ssh/known_hosts``; the key is ``SSH_PRIVATE_KEY`` when set. One SSH
  connection (a paramiko transport) carries every API call of the run, each on its own
  channel running ``docker system dial-stdio`` on the host. ``~/.ssh/config`` is not
  read: the port belongs in the URL (default 22).
- Proxy variables from the runner's Docker config are never injected into containers
  (FACTS 11): the client's proxy config is emptied here, for every call.
- Every call has a timeout; every failure is an ``Unreachable`` (exit 3) naming the
  host, what failed and the likely fix.

Any CI variable above may also hold the path of a file with that content (GitLab
"file" variables).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors
import docker.tls
import requests.exceptions
from docker.utils.proxy import ProxyConfig

from deployer.docker import resilience
from deployer.docker.transport import CLIENT_API as _CLIENT_API
from deployer.docker.transport import pem as _pem
from deployer.docker.transport import ssh_errors as _ssh_errors
from deployer.docker.transport import text_or_file as _text_or_file
from deployer.docker.transport import wrapped_errors as _wrapped_errors
from deployer.errors import InvalidInput

LOCAL_SOCKET = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 15.0
# The newest API this client speaks; older engines get their own version.


def host_urls(manifest_hosts: tuple[str, ...] | list[str], environ: Mapping[str, str]) -> list[str]:
    """The hosts of an environment: the manifest's, else DOCKER_HOST, else the local socket."""
    if manifest_hosts:
        return list(manifest_hosts)
    if environ.get("DOCKER_HOST"):
        return [environ["DOCKER_HOST"]]
    return [LOCAL_SOCKET]


def display_name(url: str) -> str:
    """The URL as shown to people: no password, no query."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if not netloc:
        return url.split("?", 1)[0]
    if "@" in netloc:
        user, _, hostport = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{hostport}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Connection:
    """An open connection to one Docker host. Use ``.client`` / ``.api``; ``close()`` it."""

    def __init__(
        self,
        url: str,
        client: docker.DockerClient,
        *,
        tempdir: str | None = None,
        fds: Sequence[int] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        self.name = display_name(url)
        self.client = client
        self.api: docker.APIClient = client.api
        self.timeout = timeout
        self.server_version: str = ""
        self.api_version: str = ""
        self._tempdir = tempdir
        self._fds = list(fds)  # in-memory files (TLS key material) open for the client

    def close(self) -> None:
        # closing must never fail a run (the host may be gone already)
        with contextlib.suppress(
            OSError,
            EOFError,
            requests.exceptions.RequestException,
            docker.errors.DockerException,
            *_ssh_errors(),
        ):
            self.client.close()
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        _close_fds(self._fds)
        self._fds = []

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Connection({self.name})"


def connect(
    url: str,
    environ: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    allow_insecure_tcp: bool = False,
) -> Connection:
    """Open and check a connection to ``url`` (asks the engine its version once)."""
    scheme = urllib.parse.urlsplit(url).scheme
    name = display_name(url)
    tempdir: str | None = None
    fds: list[int] = []
    try:
        if scheme == "unix":
            api = _api(url, timeout=timeout)
        elif scheme == "tcp":
            tls, tempdir, fds = _tls_config(name, environ, allow_insecure_tcp)
            api = _api(url, timeout=timeout, tls=tls)
        elif scheme == "ssh":
            from deployer.docker.ssh import ssh_api

            api, tempdir = ssh_api(url, name, environ, timeout, connect_timeout)
        else:
            raise InvalidInput(
                f"host {name}: unsupported scheme {scheme or '(none)'}",
                hint="use unix:///path/docker.sock, tcp://host:2376 (TLS) or ssh://user@host:port",
            )
        client = docker.DockerClient.__new__(docker.DockerClient)
        client.api = api
        conn = Connection(url, client, tempdir=tempdir, fds=fds, timeout=timeout)
        _negotiate(conn, connect_timeout)
        # the host answered: from now on a lost connection is ridden out (not before: a
        # host that never answered fails at once)
        resilience.install(api, getattr(getattr(api, "_custom_adapter", None), "reconnect", None))
        return conn
    except BaseException:
        if tempdir:
            shutil.rmtree(tempdir, ignore_errors=True)
        _close_fds(fds)
        raise


def _api(url: str, *, timeout: float, tls: docker.tls.TLSConfig | bool = False) -> Any:
    # An explicit version: the constructor makes no request; _negotiate picks the real one.
    with _wrapped_errors(display_name(url), "setting up the client"):
        # A pool per host as large as the concurrent calls of a rollout (the services of a
        # wave roll in parallel; the SDK's default 10 would open and drop connections).
        api = docker.APIClient(
            base_url=url, version=_CLIENT_API, timeout=timeout, tls=tls, max_pool_size=32
        )
    api._proxy_configs = ProxyConfig()  # never inject the runner's proxy settings
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment would replace the host's CA
    # (requests merges them over the session's ``verify``): the host's CA must win.
    api.trust_env = False
    return api


def _negotiate(conn: Connection, connect_timeout: float) -> None:
    api = conn.api
    saved = api.timeout
    api.timeout = connect_timeout
    try:
        with _wrapped_errors(conn.name, "asking the engine its version"):
            info = api.version(api_version=False)
    except BaseException:
        conn.close()
        raise
    finally:
        api.timeout = saved
    server_api = str(info.get("ApiVersion", "1.41"))
    api._version = server_api if docker.utils.version_lt(server_api, _CLIENT_API) else _CLIENT_API
    conn.server_version = str(info.get("Version", ""))
    conn.api_version = api._version


# --- tcp + TLS -----------------------------------------------------------------------


def _close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _memory_files(texts: Mapping[str, str]) -> tuple[dict[str, str], list[int]] | None:
    """Each text in an anonymous in-memory file (``memfd_create``), named by a path this
    process can open (``/proc/self/fd/N``) while the descriptor is open: TLS key material
    never touches a disk, and nothing is left behind when the process is killed (``kill
    -9`` runs no clean-up). None where the system has no such files."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    fds: list[int] = []
    paths: dict[str, str] = {}
    try:
        for fname, text in texts.items():
            fd = os.memfd_create(f"deployer-tls-{fname}", os.MFD_CLOEXEC)
            fds.append(fd)
            data = memoryview(text.encode())
            while data:
                data = data[os.write(fd, data) :]
            paths[fname] = f"/proc/self/fd/{fd}"
    except OSError:
        _close_fds(fds)
        return None
    return paths, fds


def _tls_config(
    name: str, environ: Mapping[str, str], allow_insecure_tcp: bool
) -> tuple[docker.tls.TLSConfig | bool, str | None, list[int]]:
    pem_vars = ("DOCKER_TLS_CA_CERT", "DOCKER_TLS_CERT", "DOCKER_TLS_KEY")
    given = [v for v in pem_vars if environ.get(v, "").strip()]
    if given:
        missing = [v for v in pem_vars if v not in given]
        if missing:
            raise InvalidInput(
                f"host {name}: {', '.join(given)} set but {', '.join(missing)} missing",
                hint="set all three of DOCKER_TLS_CA_CERT, DOCKER_TLS_CERT, DOCKER_TLS_KEY "
                "(PEM text) as masked CI/CD variables",
            )
        texts = {
            fname: _pem(_text_or_file(environ[var]))
            for var, fname in zip(pem_vars, ("ca.pem", "cert.pem", "key.pem"), strict=True)
        }
        source = "the DOCKER_TLS_* variables"
        in_memory = _memory_files(texts)
        if in_memory is not None:
            paths, fds = in_memory
            try:
                tls = _tls(name, paths["ca.pem"], paths["cert.pem"], paths["key.pem"], source)
            except BaseException:
                _close_fds(fds)
                raise
            return tls, None, fds
        tempdir = tempfile.mkdtemp(prefix="deployer-tls-")
        os.chmod(tempdir, 0o700)
        atexit.register(shutil.rmtree, tempdir, True)  # also when a caller never closes
        paths = {}
        for fname, text in texts.items():
            path = os.path.join(tempdir, fname)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            paths[fname] = path
        return (
            _tls(name, paths["ca.pem"], paths["cert.pem"], paths["key.pem"], source),
            tempdir,
            [],
        )
    cert_path = environ.get("DOCKER_CERT_PATH", "").strip()
    if cert_path:
        files = [os.path.join(cert_path, f) for f in ("ca.pem", "cert.pem", "key.pem")]
        absent = [f for f in files if not os.path.isfile(f)]
        if absent:
            raise InvalidInput(
                f"host {name}: DOCKER_CERT_PATH={cert_path} lacks {', '.join(absent)}",
                hint="DOCKER_CERT_PATH must hold ca.pem, cert.pem and key.pem",
            )
        tls = _tls(name, files[0], files[1], files[2], f"DOCKER_CERT_PATH={cert_path}")
        return tls, None, []
    if allow_insecure_tcp:
        return False, None, []
    raise InvalidInput(
        f"host {name}: plain tcp without TLS is refused (anyone on the network could run "
        "containers as root on that host)",
        hint="give the client certificates (DOCKER_TLS_CA_CERT, DOCKER_TLS_CERT, DOCKER_TLS_KEY "
        "or DOCKER_CERT_PATH), or set allow_insecure_tcp: true on the environment if you "
        "really mean it",
    )


def _tls(name: str, ca: str, cert: str, key: str, source: str) -> docker.tls.TLSConfig:
    try:
        return docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
    except docker.errors.TLSParameterError as e:
        raise InvalidInput(f"host {name}: bad TLS files from {source}: {e}") from e
