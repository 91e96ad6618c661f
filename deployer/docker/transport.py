"""What every transport to a Docker engine shares: the docker SDK import, the API version
we speak, CI-variable file contents, and the translation of SDK and transport errors into
the deployer's errors. Used by ``connect`` (unix, tcp+TLS) and ``ssh``.
"""

from __future__ import annotations

import contextlib
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from deployer.errors import DeployerError, DeployFailed, InvalidInput, Unreachable

CLIENT_API = docker.constants.DEFAULT_DOCKER_API_VERSION


def text_or_file(value: str) -> str:
    """A CI variable's content: the text itself, or the file a "file" variable points at."""
    stripped = value.strip()
    if stripped and "\n" not in stripped and not stripped.startswith("-----"):
        path = Path(stripped)
        with contextlib.suppress(OSError):
            if path.is_file():
                return path.read_text()
    return value


def pem(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    return text + "\n"


def why(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    return text.splitlines()[0][:300]


@contextlib.contextmanager
def wrapped_errors(name: str, what: str, *, who: str = "host") -> Iterator[None]:
    """A failed engine call ``what`` on ``name`` as a ``DeployerError`` saying where
    (``who``: "host", or "Swarm manager") and what to check: TLS, a timeout, no
    connection, SSH, the engine's refusal."""
    transport_errors: tuple[type[BaseException], ...] = (OSError, EOFError, *ssh_errors())
    try:
        yield
    except (InvalidInput, Unreachable):
        raise
    except requests.exceptions.SSLError as e:
        if isinstance(root_cause(e), (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            raise Unreachable(
                f"{who} {name}: {what}: the connection was closed during the TLS handshake "
                f"({_ssl_reason(e)})",
                hint="check that the URL names the engine's TLS port (dockerd --tlsverify, "
                "usually 2376) and that no proxy or firewall on the way cuts the connection",
            ) from e
        reason = _ssl_reason(e)
        if "ALERT" in reason:  # the server's side of the handshake refused us
            raise Unreachable(
                f"{who} {name}: {what}: the host refused our TLS client certificate: {reason}",
                hint="DOCKER_TLS_CERT / DOCKER_TLS_KEY (or cert.pem / key.pem) must be a client "
                "certificate signed by the CA the host's dockerd trusts (its --tlscacert)",
            ) from e
        raise Unreachable(
            f"{who} {name}: {what}: TLS verification failed: {reason}",
            hint="the server's certificate must be signed by the CA in DOCKER_TLS_CA_CERT / "
            "DOCKER_CERT_PATH/ca.pem and name the host you connect to (SAN)",
        ) from e
    except requests.exceptions.Timeout as e:
        raise Unreachable(
            f"{who} {name}: {what}: no answer in time ({why(e)})",
            hint="check that the host is up and that a firewall lets you reach it",
        ) from e
    except requests.exceptions.ConnectionError as e:
        if name.startswith("ssh://"):
            raise Unreachable(
                f"{who} {name}: {what}: logged in over SSH, but the Docker engine did not answer "
                f"through it ({why(root_cause(e))})",
                hint="on that host, `docker system dial-stdio` must work for the SSH user: "
                "docker installed and on its PATH, the user allowed to use the engine "
                "(root or the docker group), dockerd running",
            ) from e
        raise Unreachable(
            f"{who} {name}: {what}: cannot connect ({why(root_cause(e))})",
            hint="check the host URL (DOCKER_HOST or the environment's hosts) and that the "
            "Docker engine runs there",
        ) from e
    # An engine's refusal is an OSError too (requests' HTTPError): before the transport's.
    except docker.errors.APIError as e:
        raise Unreachable(
            f"{who} {name}: {what}: the engine refused: {e.explanation or e}",
            hint="check the engine's log on that host",
        ) from e
    except transport_errors as e:
        raise Unreachable(
            f"{who} {name}: {what}: the SSH connection failed ({why(e)})",
            hint="check that `docker` is installed on the host and the SSH user may run it "
            "(`docker system dial-stdio`)",
        ) from e
    except docker.errors.DockerException as e:
        raise Unreachable(f"{who} {name}: {what}: {why(e)}") from e


class NotConnected(requests.exceptions.ConnectionError):
    """No connection to the engine could be opened for a request (it was never sent)."""


def ssh_errors() -> tuple[type[BaseException], ...]:
    """paramiko's error root, when an ssh:// host made us import it. While another
    thread is still importing it (hosts connect side by side), the module is there
    without it: nothing of this thread can raise it yet."""
    root = getattr(sys.modules.get("paramiko"), "SSHException", None)
    return (root,) if isinstance(root, type) and issubclass(root, BaseException) else ()


def root_cause(e: BaseException) -> BaseException:
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
    root = root_cause(e)
    if isinstance(root, ssl.SSLCertVerificationError) and root.verify_message:
        return f"{root.verify_message} ({root.reason})"
    if isinstance(root, ssl.SSLError):
        return str(root.reason or root)
    return why(root)


@contextlib.contextmanager
def wrapped(what: str, host: str) -> Iterator[None]:
    """Turn SDK errors of one operation into our errors naming the host and the operation."""
    try:
        yield
    except DeployerError:
        raise
    except docker.errors.APIError as e:
        raise DeployFailed(f"{host}: {what} failed: {e.explanation or e}") from e
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise Unreachable(
            f"{host}: {what}: the Docker engine did not answer ({e.__class__.__name__})",
            hint="check that the host is up and DOCKER_HOST points at it",
        ) from e
    except docker.errors.DockerException as e:
        raise DeployFailed(f"{host}: {what} failed: {e}") from e
