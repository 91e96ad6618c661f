"""Riding out a short loss of the connection to an engine: a VPN or network blip, sshd
restarted, a load balancer dropping idle connections.

Without it, the first call that met the loss failed the step, the rollback's calls failed
the same way a moment later (exit 5: a human must look), and the deploy lock stayed until
it expired. Once a host answered (``connect`` asked its version), each call to it that
fails for want of a connection is sent again, with a growing pause, for up to
``RIDE_OUT`` seconds counted from the moment the connection was lost; a call that
succeeds ends the outage. A host still gone after that fails every call at once, on its
first try, until it answers again (a rollback then fails fast instead of waiting the
window out once per call).

Only what is safe to send twice is sent again: any request the engine never received
(no connection could be made: refused, timed out connecting, a TLS or SSH handshake cut
short), and a read (GET, HEAD) whatever happened to it. A request that may have reached
the engine (the connection broke after it was sent) is not: creating a container, starting
an exec or a task twice is not harmless. A streamed request (logs, events, attach) is
never replayed, nor one whose body was a stream.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import requests.exceptions
import urllib3.exceptions

from deployer.docker.transport import NotConnected, root_cause, ssh_errors

RIDE_OUT = 30.0  # seconds a lost connection is ridden out before a call fails
_FIRST_PAUSE, _LONGEST_PAUSE = 0.25, 4.0
_READS = frozenset({"GET", "HEAD"})


class Outage:
    """When the connection to one host was lost (None: it answers). Shared by every
    thread calling that host."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.since: float | None = None

    def lost(self) -> float:
        """Seconds since the connection was lost (0 at the first failure)."""
        with self._lock:
            now = self._clock()
            if self.since is None:
                self.since = now
            return now - self.since

    def over(self) -> None:
        with self._lock:
            self.since = None


def install(
    api: Any,
    reconnect: Callable[[BaseException], None] | None = None,
    *,
    window: float = RIDE_OUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outage:
    """Make ``api`` (a docker ``APIClient``) ride out a lost connection as the module
    says. ``reconnect(error)`` re-opens what a loss leaves dead (the SSH connection its
    channels ride on) before a call is sent again."""
    send = api.send
    outage = Outage(clock)

    def riding_send(request: Any, **kwargs: Any) -> Any:
        pause = _FIRST_PAUSE
        while True:
            try:
                response = send(request, **kwargs)
            except Exception as e:  # an interrupt (Ctrl-C, a cancelled job) goes through
                if not _again(request, kwargs, e):
                    raise
                lost = outage.lost()
                if lost >= window:
                    raise
                sleep(min(pause, window - lost))
                pause = min(pause * 2, _LONGEST_PAUSE)
                if reconnect is not None:  # a failure here: the next try says what is wrong
                    with contextlib.suppress(Exception):
                        reconnect(e)
                continue
            outage.over()
            return response

    api.send = riding_send
    return outage


def _again(request: Any, kwargs: dict[str, Any], e: BaseException) -> bool:
    """Whether the request may be sent again after ``e``."""
    if kwargs.get("stream") or not isinstance(request.body, (bytes, str, type(None))):
        return False
    if never_sent(e):
        return True
    return str(request.method).upper() in _READS and connection_lost(e)


def never_sent(e: BaseException) -> bool:
    """The request never reached the engine: no connection could be made."""
    if isinstance(e, (NotConnected, requests.exceptions.ConnectTimeout)):
        return True
    root = root_cause(e)
    if isinstance(root, ssl.SSLCertVerificationError):
        return False  # not a lost connection: a certificate to fix
    if isinstance(root, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        # cut during the handshake (requests' SSLError); cut while the answer was read
        # (a ConnectionError), the request may have arrived
        return isinstance(e, requests.exceptions.SSLError)
    if isinstance(
        root,
        (
            ConnectionRefusedError,
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
            socket.gaierror,
        ),
    ):
        return True
    # the SSH connection is gone: no channel could be opened for the request
    return isinstance(root, ssh_errors()) and "not active" in str(root)


def connection_lost(e: BaseException) -> bool:
    """The connection broke or never answered: worth another try for a read."""
    if isinstance(e, requests.exceptions.SSLError):
        return isinstance(root_cause(e), (ssl.SSLEOFError, ssl.SSLZeroReturnError))
    if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    return isinstance(e, (ConnectionError, EOFError, TimeoutError, *ssh_errors()))
