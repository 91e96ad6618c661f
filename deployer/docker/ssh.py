"""ssh:// hosts: docker-py's paramiko transport with strict host keys and our key.

Imported only when an ssh:// host is connected (see deployer.docker.connect). One
paramiko transport (one SSH connection) per host carries every API call of the run, each
HTTP connection of the pool being a channel running ``docker system dial-stdio``.
"""

from __future__ import annotations

import io
import logging
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import paramiko
import paramiko.hostkeys
from docker.transport.sshconn import SSHHTTPAdapter
from docker.utils.proxy import ProxyConfig

from deployer.docker.transport import CLIENT_API as _CLIENT_API
from deployer.docker.transport import NotConnected, pem, text_or_file, why, wrapped_errors
from deployer.errors import InvalidInput, Unreachable


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
        host_keys: list[paramiko.hostkeys.HostKeyEntry],
        pkey: paramiko.PKey | None,
        connect_timeout: float,
    ) -> None:
        self._host_keys = host_keys
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
        known = client.get_host_keys()
        for entry in self._host_keys:
            for hostname in entry.hostnames:
                known.add(hostname, entry.key.get_name(), entry.key)
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

    def get_connection(self, url: str, proxies: Any = None) -> Any:
        # docker-py keys its pools by the full request URL, so every distinct endpoint
        # (and query) opened a new channel, i.e. a new `docker system dial-stdio` on the
        # host (~0.1 s each). One pool: channels are reused across endpoints.
        try:
            return super().get_connection("http+docker://ssh", proxies)
        except (paramiko.SSHException, OSError, EOFError) as e:  # reconnecting failed
            raise NotConnected(f"SSH connection failed ({why(e)})") from e

    def reconnect(self, error: BaseException | None = None) -> None:
        """A new SSH connection when the one the channels rode on is gone (its pool goes
        with it); nothing when it is alive. One that could not open a channel in time
        (``error``) is taken for gone: a link that drops packets without a word leaves
        the transport looking alive."""
        with self.pools.lock:
            transport = self.ssh_client.get_transport()
            if transport is not None and transport.is_active():
                if "opening channel" not in str(error or "").lower():
                    return
                transport.close()
            self.pools.clear()
            self.ssh_client.close()
            self._connect()

    def _connect(self) -> None:
        try:
            super()._connect()
        except BaseException:
            self.ssh_client.close()  # no transport thread left behind
            raise


def ssh_api(
    url: str, name: str, environ: Mapping[str, str], timeout: float, connect_timeout: float
) -> tuple[Any, None]:
    """An APIClient whose requests all go over one SSH connection (nothing written to disk:
    the key and known_hosts stay in memory). The second value is no temp dir (None)."""
    host_keys, source = _known_hosts(name, environ)
    pkey = _private_key(name, environ)
    adapter = _connect_adapter(url, name, timeout, connect_timeout, host_keys, source, pkey)
    try:
        with wrapped_errors(name, "setting up the client"):
            api = docker.APIClient(
                base_url="tcp://127.0.0.1:1", version=_CLIENT_API, timeout=timeout
            )
    except BaseException:
        adapter.close()
        raise
    api.mount("http+docker://ssh", adapter)
    api._custom_adapter = adapter
    api._unmount("http://", "https://")
    api.base_url = "http+docker://ssh"
    api._proxy_configs = ProxyConfig()
    return api, None


def _connect_adapter(
    url: str,
    name: str,
    timeout: float,
    connect_timeout: float,
    host_keys: list[paramiko.hostkeys.HostKeyEntry],
    source: str,
    pkey: paramiko.PKey | None,
) -> _SSHAdapter:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 22
    scan = f"ssh-keyscan -p {port} {host}" if port != 22 else f"ssh-keyscan {host}"
    try:
        return _SSHAdapter(
            url, timeout, host_keys=host_keys, pkey=pkey, connect_timeout=connect_timeout
        )
    except HostKeyUnknown as e:
        keyline = f"{_known_hosts_host(host, port)} {e.key.get_name()} {e.key.get_base64()}"
        raise Unreachable(
            f"host {name}: its SSH host key ({e.key.get_name()} "
            f"{e.key.fingerprint}) is not in {source}; refusing to connect",
            hint=f"check the key with the host's owner, then add its line to the SSH_KNOWN_HOSTS "
            f"CI/CD variable (`{scan}` prints it), e.g.:\n    {keyline}",
        ) from e
    except paramiko.BadHostKeyException as e:
        raise Unreachable(
            f"host {name}: its SSH host key CHANGED: it offered {e.key.get_name()} "
            f"{e.key.fingerprint}, {source} expects {e.expected_key.fingerprint}; refusing to "
            "connect (this may be an attack, or the host was reinstalled)",
            hint=f"if the host was really rebuilt, replace its line in SSH_KNOWN_HOSTS (`{scan}`)",
        ) from e
    except paramiko.AuthenticationException as e:
        raise Unreachable(
            f"host {name}: SSH authentication failed for user {parts.username or '(default)'}: {e}",
            hint="put a private key the host accepts in the SSH_PRIVATE_KEY CI/CD variable "
            "and its public key in that user's authorized_keys",
        ) from e
    except (paramiko.SSHException, OSError, EOFError) as e:
        reason = why(e)
        if "banner" in reason or "No existing session" in reason or isinstance(e, TimeoutError):
            reason = f"no SSH server answered within {connect_timeout:g}s ({reason})"
        raise Unreachable(
            f"host {name}: SSH connection failed: {reason}",
            hint=f"check that the host is up and sshd listens on port {port} (the port belongs "
            "in the URL: ssh://user@host:port)",
        ) from e


def _known_hosts_host(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _known_hosts(
    name: str, environ: Mapping[str, str]
) -> tuple[list[paramiko.hostkeys.HostKeyEntry], str]:
    """The trusted host keys, and where they came from (for messages).

    paramiko reads plain and hashed entries but not markers: ``@revoked`` keys are taken
    out of the plain entries (never trusted), ``@cert-authority`` lines are skipped (host
    certificates are not supported: list the host keys themselves).
    """
    text = environ.get("SSH_KNOWN_HOSTS", "")
    source = "SSH_KNOWN_HOSTS"
    if text.strip():
        text = text_or_file(text)
    else:
        user_file = Path(environ.get("HOME") or Path.home()) / ".ssh" / "known_hosts"
        source = f"{user_file} (SSH_KNOWN_HOSTS is not set)"
        text = user_file.read_text() if user_file.is_file() else ""
    revoked: set[str] = set()
    entries: list[paramiko.hostkeys.HostKeyEntry] = []
    for lineno, raw in enumerate(text.replace("\r\n", "\n").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@revoked"):
            fields = line.split()
            if len(fields) >= 4:
                revoked.add(fields[3])
            continue
        if line.startswith("@"):
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError) as e:
            raise InvalidInput(
                f"host {name}: line {lineno} of {source} is not a known_hosts entry",
                hint="each line is `host[,host...] key-type base64-key` "
                "(`ssh-keyscan -p PORT HOST` prints them)",
            ) from e
        if entry is not None:
            entries.append(entry)
    return [e for e in entries if e.key.get_base64() not in revoked], source


def _private_key(name: str, environ: Mapping[str, str]) -> paramiko.PKey | None:
    text = environ.get("SSH_PRIVATE_KEY", "")
    if not text.strip():
        return None  # paramiko tries ~/.ssh/id_* and the agent
    text = pem(text_or_file(text))
    errors: list[str] = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError) as e:
            errors.append(f"{cls.__name__}: {e}")
    raise InvalidInput(
        f"host {name}: SSH_PRIVATE_KEY is not a usable private key ({'; '.join(errors)})",
        hint="paste the whole key, BEGIN and END lines included, without a passphrase",
    )
