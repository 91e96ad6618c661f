"""Run a command in a running container (``docker exec``): its output streamed as it
comes, optionally its stdin fed from ours and a TTY of our terminal's size; its exit
code. The connection is taken over from the HTTP client (``deployer.docker.hijack``)."""

from __future__ import annotations

import contextlib
import os
import select
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from deployer.docker.containers import wrapped
from deployer.docker.hijack import Hijacked, hijack

EOT = b"\x04"  # end of input on a TTY: a half-close would end the TTY's output too
_POLL = 0.05  # seconds between tries to write when the transport cannot be selected
EXIT_WAIT = 30.0  # the engine records the exit code as it closes the stream


@dataclass(frozen=True)
class Terminal:
    """The caller's terminal: ``size()`` gives (rows, columns); ``changed`` is a file
    descriptor that becomes readable when the size changed (read it empty)."""

    size: Callable[[], tuple[int, int]]
    changed: int | None = None


@dataclass(frozen=True)
class ExecIO:
    """What an exec reads and where its output goes: ``out``/``err`` get it as it
    comes (both ``out`` with a TTY); ``stdin`` (a file descriptor) is sent to the
    command until its end; with ``terminal`` the command gets a TTY of its size."""

    out: Callable[[bytes], None]
    err: Callable[[bytes], None]
    stdin: int | None = None
    terminal: Terminal | None = None


class Demux:
    """The engine's multiplexed stream (8-byte frame headers: stream, 0, 0, 0, length)."""

    def __init__(self, out: Callable[[bytes], None], err: Callable[[bytes], None]) -> None:
        self._targets = {0: out, 1: out, 2: err, 3: err}
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= 8:
            kind, length = struct.unpack(">BxxxL", self._buf[:8])
            if len(self._buf) < 8 + length:
                return
            payload, self._buf = self._buf[8 : 8 + length], self._buf[8 + length :]
            if payload:
                self._targets.get(kind, self._targets[2])(payload)


def exec_in(
    api: docker.APIClient,
    host: str,
    container_id: str,
    command: Sequence[str],
    io: ExecIO,
) -> int:
    """Run ``command`` in the container and return its exit code, its input and output
    through ``io`` (``ExecIO``); a TTY follows the terminal's size as it changes."""
    out, err, stdin, terminal = io.out, io.err, io.stdin, io.terminal
    tty = terminal is not None
    with wrapped(f"exec in {container_id[:12]}", host):
        created = api.exec_create(
            container_id, list(command), stdout=True, stderr=True, stdin=stdin is not None, tty=tty
        )
        exec_id = created["Id"]
        response = api._post_json(
            api._url("/exec/{0}/start", exec_id),
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            data={"Tty": tty, "Detach": False},
            stream=True,
        )
        conn = hijack(api, response)
        try:
            resize = None
            if terminal is not None:
                resize = _resizer(api, exec_id, terminal)
                # The engine answers once the process started; what we send waits for
                # it, so a command that reads first sees the right size.
                resize()
            sink = out if tty else Demux(out, err).feed
            changed = terminal.changed if terminal is not None else None
            pump(conn, sink, stdin, tty=tty, changed=changed, resize=resize)
        finally:
            conn.close()
        return exit_code(api, exec_id)


def _resizer(api: docker.APIClient, exec_id: str, terminal: Terminal) -> Callable[[], None]:
    """Give the exec's TTY the terminal's size when it changed since last time."""
    last = (0, 0)

    def resize() -> None:
        nonlocal last
        rows, cols = terminal.size()
        if (rows, cols) == last or rows <= 0 or cols <= 0:
            return
        last = (rows, cols)
        # The process may have ended meanwhile: its output says so.
        with contextlib.suppress(docker.errors.APIError):
            api.exec_resize(exec_id, height=rows, width=cols)

    return resize


def exit_code(api: docker.APIClient, exec_id: str, wait: float = EXIT_WAIT) -> int:
    """The exec's exit code (126 when the engine never recorded one)."""
    give_up = time.monotonic() + wait
    while True:
        info = api.exec_inspect(exec_id)
        if not info.get("Running") or time.monotonic() > give_up:
            break
        time.sleep(_POLL)
    code = info.get("ExitCode")
    return 126 if code is None else int(code)


def pump(  # noqa: C901, PLR0912 - one loop over the three descriptors of an attached exec
    conn: Hijacked,
    sink: Callable[[bytes], None],
    stdin: int | None,
    *,
    tty: bool,
    changed: int | None = None,
    resize: Callable[[], None] | None = None,
) -> None:
    """Move bytes until the output ends: stdin up (then its end: a half-close, or EOT on
    a TTY), output down. ``resize`` (it acts only on a change) runs when ``changed``
    wakes us and before each piece of input is sent: a signal may reach the process
    after the input typed after it, never after the size changed. One thread, no
    blocking call (see ``deployer.docker.hijack``)."""
    pending = b""  # read from stdin, not yet taken by the connection
    reading = stdin is not None
    ended = False  # stdin ended: tell the other side once ``pending`` is out
    while True:
        if conn.pending():
            readable: list[Any] = [conn]
        else:
            wanted: list[Any] = [conn]
            if reading and not pending:
                wanted.append(stdin)
            if changed is not None:
                wanted.append(changed)
            writable = [conn] if pending and conn.selectable_write else []
            timeout = _POLL if pending and not conn.selectable_write else None
            readable, _, _ = select.select(wanted, writable, [], timeout)
        if conn in readable:
            data = conn.recv()
            if data == b"":
                return  # the process ended (the engine closed its output)
            if data:
                sink(data)
        if changed is not None and changed in readable:
            os.read(changed, 1024)
            if resize is not None:
                resize()
        if reading and stdin is not None and stdin in readable:
            try:
                chunk = os.read(stdin, 65536)
            except OSError:  # a terminal whose other side is gone (EIO): its end
                chunk = b""
            if chunk:
                if resize is not None:  # typed after a resize: the command sees it first
                    resize()
                pending = chunk
            else:
                reading, ended = False, True
                if tty:
                    pending = EOT
        if pending:
            try:
                pending = pending[conn.send(pending) :]
            except OSError:  # the process ended without reading it all: its output says
                pending, reading, ended = b"", False, False
        if ended and not pending:
            ended = False
            if not tty:
                with contextlib.suppress(OSError):  # the other side closed already
                    conn.close_write()
