"""A TCP relay between the deployer and a real peer (the TLS engine, sshd) that a test can
cut: every connection through it closed at once and new ones refused, until restored, as
a network blip or a VPN drop does to a job's connection to its host."""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    def __init__(self, target_port: int, bind: str = "127.0.0.1") -> None:
        self._target = target_port
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._cut = False
        self._server = socket.create_server((bind, 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Close every connection through the relay; refuse new ones until ``restore``."""
        with self._lock:
            self._cut = True
            for s in self._open:
                _close(s)
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        _close(self._server)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(a: socket.socket, b: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := a.recv(65536):
            b.sendall(data)
    _close(a)
    _close(b)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
