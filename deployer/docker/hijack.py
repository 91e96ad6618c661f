"""The connection of an attached exec (``POST /exec/{id}/start`` with ``Upgrade: tcp``),
taken over from the HTTP client: the process's stdin goes up it and its output comes
down it, the same way over a unix socket, tcp+TLS and SSH.

What each transport needs (the docker CLI's ``hijack.go`` does the same):

- Bytes the HTTP client read past the response's headers are the first bytes of the
  output: they are taken from its buffer before the socket is read.
- The end of stdin is a half-close: the write side shuts, the read side stays open for
  the rest of the output. Unix socket: ``shutdown(SHUT_WR)``. TLS: ``SHUT_WR`` on the
  TCP socket under the TLS session (``SSLSocket.shutdown`` would end the TLS session and
  with it the reading); the engine reads a clean end of its input. SSH (a paramiko
  channel running ``docker system dial-stdio``): ``shutdown_write`` sends the channel's
  EOF, which dial-stdio passes on as the half-close.
- One thread does all reads and writes, without blocking (``select``): a TLS session
  must not be read and written by two threads at once (OpenSSL), and a blocking write
  while the output is not read could wait for ever on a process that waits for us.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import docker

_READ = 65536
_ssl_would_block = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Hijacked:
    """One attached exec connection. ``recv`` gives ``None`` when nothing is there now
    and ``b""`` at the end of the output; ``send`` gives how much it took (0: full)."""

    #: ``select`` can wait for room to write (a socket); otherwise poll with a timeout.
    selectable_write = True

    def __init__(self, response: Any) -> None:
        self._response = response
        self._leftover = b""

    def fileno(self) -> int:
        raise NotImplementedError

    def pending(self) -> bool:
        """Bytes to read without waiting on the file descriptor."""
        return bool(self._leftover)

    def recv(self) -> bytes | None:
        raise NotImplementedError

    def send(self, data: bytes) -> int:
        raise NotImplementedError

    def close_write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._response.close()

    def _take_leftover(self) -> bytes | None:
        data, self._leftover = self._leftover, b""
        return data or None


class _Socket(Hijacked):
    """A unix socket, or a TCP socket with TLS over it (``ssl.SSLSocket``)."""

    def __init__(self, response: Any, sock: socket.socket, buffered: Any) -> None:
        super().__init__(response)
        self._sock = sock
        self._tls = isinstance(sock, ssl.SSLSocket)
        sock.setblocking(False)
        try:  # what the HTTP client read past the headers (at most its buffer)
            self._leftover = buffered.read1(_READ) or b""
        except (BlockingIOError, *_ssl_would_block):
            self._leftover = b""

    def fileno(self) -> int:
        return self._sock.fileno()

    def pending(self) -> bool:
        # TLS: whole records already decrypted do not show on the file descriptor.
        return super().pending() or (self._tls and self._sock.pending() > 0)  # type: ignore[attr-defined]

    def recv(self) -> bytes | None:
        if self._leftover:
            return self._take_leftover()
        try:
            return self._sock.recv(_READ)
        except (BlockingIOError, *_ssl_would_block):
            return None

    def send(self, data: bytes) -> int:
        try:
            return self._sock.send(data)
        except (BlockingIOError, *_ssl_would_block):
            return 0

    def close_write(self) -> None:
        # The TCP socket's own shutdown, under the TLS session (see the module's doc).
        socket.socket.shutdown(self._sock, socket.SHUT_WR)


class _Channel(Hijacked):
    """An SSH channel (paramiko) running ``docker system dial-stdio``."""

    selectable_write = False  # paramiko has no descriptor for room in its window

    def __init__(self, response: Any, channel: Any, buffered: Any) -> None:
        super().__init__(response)
        self._channel = channel
        channel.settimeout(0.0)
        # paramiko's file keeps what it read past the headers in its own buffer.
        self._leftover = bytes(getattr(buffered, "_rbuffer", b""))
        buffered._rbuffer = b""

    def fileno(self) -> int:
        fd: int = self._channel.fileno()
        return fd

    def pending(self) -> bool:
        ch = self._channel
        return super().pending() or ch.recv_ready() or ch.eof_received or ch.closed

    def recv(self) -> bytes | None:
        if self._leftover:
            return self._take_leftover()
        try:
            data: bytes = self._channel.recv(_READ)
        except TimeoutError:
            return None
        return data

    def send(self, data: bytes) -> int:
        try:
            sent: int = self._channel.send(data)
        except TimeoutError:
            return 0
        return sent

    def close_write(self) -> None:
        self._channel.shutdown_write()


def hijack(api: docker.APIClient, response: Any) -> Hijacked:
    """Take over the connection of an ``exec_start`` response (``stream=True``)."""
    api._raise_for_status(response)
    buffered = response.raw._fp.fp  # the HTTP client's buffered file over the connection
    channel = getattr(buffered, "channel", None)
    if channel is not None:
        return _Channel(response, channel, buffered)
    return _Socket(response, buffered.raw._sock, buffered)
