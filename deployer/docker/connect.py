"""Connecting to one Docker host: unix socket, tcp with verified TLS, or ssh.

- The host URL comes from the manifest's environment, else ``DOCKER_HOST``, else the
  local socket (``host_urls``).
- ``tcp://`` always verifies the server's certificate. Certificates come from
  ``DOCKER_CERT_PATH`` (ca.pem, cert.pem, key.pem) or from CI variables holding the PEM
  text (``DOCKER_TLS_CA_CERT``, ``DOCKER_TLS_CERT``, ``DOCKER_TLS_KEY``), written to a
  private temporary directory (0700/0600) removed on ``close()``. Plain tcp is refused
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

import contextlib
import logging
import os
import shutil
import ssl
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import paramiko
import requests.exceptions
from docker.transport.sshconn import SSHHTTPAdapter
from docker.utils.proxy import ProxyConfig

from deployer.errors import InvalidInput, Unreachable

LOCAL_SOCKET = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 15.0
# The newest API this client speaks; older engines get their own version.
_CLIENT_API = docker.constants.DEFAULT_DOCKER_API_VERSION


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


def _text_or_file(value: str) -> str:
    """A CI variable's content: the text itself, or the file a "file" variable points at."""
    stripped = value.strip()
    if stripped and "\n" not in stripped and not stripped.startswith("-----"):
        path = Path(stripped)
        with contextlib.suppress(OSError):
            if path.is_file():
                return path.read_text()
    return value


class Connection:
    """An open connection to one Docker host. Use ``.client`` / ``.api``; ``close()`` it."""

    def __init__(
        self,
        url: str,
        client: docker.DockerClient,
        *,
        tempdir: str | None = None,
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

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must never fail a run
            self.client.close()
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

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
    try:
        if scheme == "unix":
            api = _api(url, timeout=timeout)
        elif scheme == "tcp":
            tls, tempdir = _tls_config(name, environ, allow_insecure_tcp)
            api = _api(url, timeout=timeout, tls=tls)
        elif scheme == "ssh":
            api, tempdir = _ssh_api(url, name, environ, timeout, connect_timeout)
        else:
            raise InvalidInput(
                f"host {name}: unsupported scheme {scheme or '(none)'}",
                hint="use unix:///path/docker.sock, tcp://host:2376 (TLS) or ssh://user@host:port",
            )
        client = docker.DockerClient.__new__(docker.DockerClient)
        client.api = api
        conn = Connection(url, client, tempdir=tempdir, timeout=timeout)
        _negotiate(conn, connect_timeout)
        return conn
    except BaseException:
        if tempdir:
            shutil.rmtree(tempdir, ignore_errors=True)
        raise


def _api(url: str, *, timeout: float, tls: docker.tls.TLSConfig | bool = False) -> Any:
    # An explicit version: the constructor makes no request; _negotiate picks the real one.
    with _wrapped_errors(display_name(url), "setting up the client"):
        api = docker.APIClient(base_url=url, version=_CLIENT_API, timeout=timeout, tls=tls)
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
    api._version = (
        server_api if docker.utils.version_lt(server_api, _CLIENT_API) else _CLIENT_API
    )
    conn.server_version = str(info.get("Version", ""))
    conn.api_version = api._version


# --- tcp + TLS -----------------------------------------------------------------------


def _tls_config(
    name: str, environ: Mapping[str, str], allow_insecure_tcp: bool
) -> tuple[docker.tls.TLSConfig | bool, str | None]:
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
        tempdir = tempfile.mkdtemp(prefix="deployer-tls-")
        os.chmod(tempdir, 0o700)
        paths = {}
        for var, fname in zip(pem_vars, ("ca.pem", "cert.pem", "key.pem"), strict=True):
            path = os.path.join(tempdir, fname)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(_pem(_text_or_file(environ[var])))
            paths[fname] = path
        source = "the DOCKER_TLS_* variables"
        return _tls(name, paths["ca.pem"], paths["cert.pem"], paths["key.pem"], source), tempdir
    cert_path = environ.get("DOCKER_CERT_PATH", "").strip()
    if cert_path:
        files = [os.path.join(cert_path, f) for f in ("ca.pem", "cert.pem", "key.pem")]
        absent = [f for f in files if not os.path.isfile(f)]
        if absent:
            raise InvalidInput(
                f"host {name}: DOCKER_CERT_PATH={cert_path} lacks {', '.join(absent)}",
                hint="DOCKER_CERT_PATH must hold ca.pem, cert.pem and key.pem",
            )
        return _tls(name, files[0], files[1], files[2], f"DOCKER_CERT_PATH={cert_path}"), None
    if allow_insecure_tcp:
        return False, None
    raise InvalidInput(
        f"host {name}: plain tcp without TLS is refused (anyone on the network could run "
        "containers as root on that host)",
        hint="give the client certificates (DOCKER_TLS_CA_CERT, DOCKER_TLS_CERT, DOCKER_TLS_KEY "
        "or DOCKER_CERT_PATH), or set allow_insecure_tcp: true on the environment if you "
        "really mean it",
    )


def _pem(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    return text + "\n"


def _tls(name: str, ca: str, cert: str, key: str, source: str) -> docker.tls.TLSConfig:
    try:
        return docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
    except docker.errors.TLSParameterError as e:
        raise InvalidInput(f"host {name}: bad TLS files from {source}: {e}") from e


# --- ssh -------------------------------------------------------------------------------


class HostKeyUnknown(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f"host key of {hostname} is not in known_hosts")
        self.hostname = hostname
        self.key = key


class _Refuse(paramiko.MissingHostKeyPolicy):
    """Never accept a host key that is not in known_hosts, and say what it was."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyUnknown(hostname, key)


class _SSHAdapter(SSHHTTPAdapter):  # type: ignore[misc]
    """docker-py's paramiko adapter with our known_hosts, key and timeouts.

    The adapter keeps ONE paramiko transport (one SSH connection); each HTTP connection
    of its pool is a channel on it.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float,
        *,
        known_hosts: str,
        pkey: paramiko.PKey | None,
        connect_timeout: float,
    ) -> None:
        self._known_hosts = known_hosts
        self._pkey = pkey
        self._connect_timeout = connect_timeout
        super().__init__(base_url, timeout=timeout, shell_out=False)

    def _create_paramiko_client(self, base_url: str) -> None:
        # paramiko logs a traceback from its thread when a handshake is cut short; our
        # error says what happened, so keep its log out of the job log.
        logging.getLogger("paramiko").addHandler(logging.NullHandler())
        logging.getLogger("paramiko").propagate = False
        parts = urllib.parse.urlsplit(base_url)
        client = paramiko.SSHClient()
        client.get_host_keys().load(self._known_hosts)
        client.set_missing_host_key_policy(_Refuse())
        self.ssh_client = client
        params: dict[str, Any] = {
            "hostname": parts.hostname,
            "port": parts.port or 22,
            "username": parts.username,
            "timeout": self._connect_timeout,
            "banner_timeout": self._connect_timeout,
            "auth_timeout": self._connect_timeout,
            "channel_timeout": self._connect_timeout,
        }
        if self._pkey is not None:
            params.update(pkey=self._pkey, look_for_keys=False, allow_agent=False)
        self.ssh_params = params

    def _connect(self) -> None:
        try:
            super()._connect()
        except BaseException:
            self.ssh_client.close()  # no transport thread left behind
            raise


def _ssh_api(
    url: str, name: str, environ: Mapping[str, str], timeout: float, connect_timeout: float
) -> tuple[Any, str]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 22
    tempdir = tempfile.mkdtemp(prefix="deployer-ssh-")
    os.chmod(tempdir, 0o700)
    known_hosts = os.path.join(tempdir, "known_hosts")
    source = _write_known_hosts(known_hosts, environ)
    pkey = _private_key(name, environ)
    try:
        adapter = _SSHAdapter(
            url,
            timeout,
            known_hosts=known_hosts,
            pkey=pkey,
            connect_timeout=connect_timeout,
        )
    except HostKeyUnknown as e:
        shutil.rmtree(tempdir, ignore_errors=True)
        keyline = f"{_known_hosts_host(host, port)} {e.key.get_name()} {e.key.get_base64()}"
        scan = f"ssh-keyscan -p {port} {host}" if port != 22 else f"ssh-keyscan {host}"
        raise Unreachable(
            f"host {name}: its SSH host key ({e.key.get_name()} "
            f"{e.key.fingerprint}) is not in {source}; refusing to connect",
            hint=f"check the key with the host's owner, then add its line to the SSH_KNOWN_HOSTS "
            f"CI/CD variable (`{scan}` prints it), e.g.:\n    {keyline}",
        ) from e
    except paramiko.BadHostKeyException as e:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise Unreachable(
            f"host {name}: its SSH host key CHANGED: it offered {e.key.get_name()} "
            f"{e.key.fingerprint}, {source} expects {e.expected_key.fingerprint}; refusing to "
            "connect (this may be an attack, or the host was reinstalled)",
            hint="if the host was really rebuilt, replace its line in SSH_KNOWN_HOSTS "
            f"(`ssh-keyscan -p {port} {host}`)",
        ) from e
    except paramiko.AuthenticationException as e:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise Unreachable(
            f"host {name}: SSH authentication failed for user {parts.username or '(default)'}: {e}",
            hint="put a private key the host accepts in the SSH_PRIVATE_KEY CI/CD variable "
            "and its public key in that user's authorized_keys",
        ) from e
    except (paramiko.SSHException, OSError, EOFError) as e:
        shutil.rmtree(tempdir, ignore_errors=True)
        why = _why(e)
        if "banner" in why or "No existing session" in why or isinstance(e, TimeoutError):
            why = f"no SSH server answered within {connect_timeout:g}s ({why})"
        raise Unreachable(
            f"host {name}: SSH connection failed: {why}",
            hint=f"check that the host is up and sshd listens on port {port} (the port belongs "
            "in the URL: ssh://user@host:port)",
        ) from e
    with _wrapped_errors(name, "setting up the client"):
        api = docker.APIClient(base_url="tcp://127.0.0.1:1", version=_CLIENT_API, timeout=timeout)
    api.mount("http+docker://ssh", adapter)
    api._custom_adapter = adapter
    api._unmount("http://", "https://")
    api.base_url = "http+docker://ssh"
    api._proxy_configs = ProxyConfig()
    return api, tempdir


def _known_hosts_host(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _write_known_hosts(path: str, environ: Mapping[str, str]) -> str:
    """Write the known_hosts to use to ``path``; returns where it came from, for messages."""
    text = environ.get("SSH_KNOWN_HOSTS", "")
    source = "SSH_KNOWN_HOSTS"
    if text.strip():
        text = _text_or_file(text)
    else:
        user_file = Path(environ.get("HOME") or Path.home()) / ".ssh" / "known_hosts"
        source = f"{user_file} (SSH_KNOWN_HOSTS is not set)"
        text = user_file.read_text() if user_file.is_file() else ""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text.replace("\r\n", "\n").strip() + "\n")
    return source


def _private_key(name: str, environ: Mapping[str, str]) -> paramiko.PKey | None:
    text = environ.get("SSH_PRIVATE_KEY", "")
    if not text.strip():
        return None  # paramiko tries ~/.ssh/id_* and the agent
    text = _pem(_text_or_file(text))
    errors: list[str] = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(_StringIO(text))
        except (paramiko.SSHException, ValueError) as e:
            errors.append(f"{cls.__name__}: {e}")
    raise InvalidInput(
        f"host {name}: SSH_PRIVATE_KEY is not a usable private key ({'; '.join(errors)})",
        hint="paste the whole key, BEGIN and END lines included, without a passphrase",
    )


class _StringIO:
    """The minimal file object paramiko's key readers need (readlines)."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readlines(self) -> list[str]:
        return list(self._lines)

    def read(self) -> str:
        return "".join(self._lines)


# --- errors ----------------------------------------------------------------------------


def _why(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    return text.splitlines()[0][:300]


@contextlib.contextmanager
def _wrapped_errors(name: str, what: str) -> Iterator[None]:
    try:
        yield
    except (InvalidInput, Unreachable):
        raise
    except requests.exceptions.SSLError as e:
        raise Unreachable(
            f"host {name}: {what}: TLS verification failed: {_ssl_reason(e)}",
            hint="the server's certificate must be signed by the CA in DOCKER_TLS_CA_CERT / "
            "DOCKER_CERT_PATH/ca.pem and name the host you connect to (SAN)",
        ) from e
    except requests.exceptions.Timeout as e:
        raise Unreachable(
            f"host {name}: {what}: no answer in time ({_why(e)})",
            hint="check that the host is up and that a firewall lets you reach it",
        ) from e
    except requests.exceptions.ConnectionError as e:
        raise Unreachable(
            f"host {name}: {what}: cannot connect ({_why(_root(e))})",
            hint="check the host URL (DOCKER_HOST or the environment's hosts) and that the "
            "Docker engine runs there",
        ) from e
    except (OSError, paramiko.SSHException, EOFError) as e:
        raise Unreachable(
            f"host {name}: {what}: the SSH connection failed ({_why(e)})",
            hint="check that `docker` is installed on the host and the SSH user may run it "
            "(`docker system dial-stdio`)",
        ) from e
    except docker.errors.APIError as e:
        raise Unreachable(
            f"host {name}: {what}: the engine refused: {e.explanation or e}",
            hint="check the engine's log on that host",
        ) from e
    except docker.errors.DockerException as e:
        raise Unreachable(f"host {name}: {what}: {_why(e)}") from e


def _root(e: BaseException) -> BaseException:
    """The innermost cause (requests -> urllib3 MaxRetryError -> OSError)."""
    for _ in range(10):
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            e = reason
        elif e.args and isinstance(e.args[0], BaseException):
            e = e.args[0]
        elif e.__cause__ is not None:
            e = e.__cause__
        else:
            break
    return e


def _ssl_reason(e: BaseException) -> str:
    root = _root(e)
    if isinstance(root, ssl.SSLError):
        return str(root.reason or root)
    return _why(root)


wrapped_errors = _wrapped_errors
