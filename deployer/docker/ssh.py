"""ssh:// hosts: docker-py's paramiko transport with strict host keys and our key.

Imported only when an ssh:// host is connected (see deployer.docker.connect). One
paramiko transport (one SSH connection) per host carries every API call of the run, each
HTTP connection of the pool being a channel running ``docker system dial-stdio``.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import paramiko
from docker.transport.sshconn import SSHHTTPAdapter
from docker.utils.proxy import ProxyConfig

from deployer.docker.connect import _CLIENT_API, pem, text_or_file, why, wrapped_errors
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

    def get_connection(self, url: str, proxies: Any = None) -> Any:
        # docker-py keys its pools by the full request URL, so every distinct endpoint
        # (and query) opened a new channel, i.e. a new `docker system dial-stdio` on the
        # host (~0.1 s each). One pool: channels are reused across endpoints.
        return super().get_connection("http+docker://ssh", proxies)

    def _connect(self) -> None:
        try:
            super()._connect()
        except BaseException:
            self.ssh_client.close()  # no transport thread left behind
            raise


def ssh_api(
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
        reason = why(e)
        if "banner" in reason or "No existing session" in reason or isinstance(e, TimeoutError):
            reason = f"no SSH server answered within {connect_timeout:g}s ({reason})"
        raise Unreachable(
            f"host {name}: SSH connection failed: {reason}",
            hint=f"check that the host is up and sshd listens on port {port} (the port belongs "
            "in the URL: ssh://user@host:port)",
        ) from e
    with wrapped_errors(name, "setting up the client"):
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
        text = text_or_file(text)
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
