"""`deployer exec [-i] [-t] SERVICE [--replica N] [--host H] -- CMD...`.

Runs a command in a running replica of the service (the first one unless ``--replica``
or ``--host`` says which), streams its output, and exits with the command's exit code.
``-i`` sends our standard input to the command until its end. ``-t`` gives the command
a terminal of our terminal's size (resized with it) when we are attached to one, and
says so when we are not; with ``-i -t`` our terminal is in raw mode while the command
runs (Ctrl-C, Ctrl-D go to the command) and is put back as it was on every way out.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from deployer.errors import InvalidInput
from deployer.ops import Replica
from deployer.requests import ExecRequest

if TYPE_CHECKING:
    from deployer.docker.execute import Terminal


def choose(
    replicas: Sequence[Replica], service: str, replica: int | None, host: str | None
) -> Replica:
    """The replica ``--replica``/``--host`` name (a host by its URL or a part of it)."""
    found = [
        r
        for r in replicas
        if r.service == service
        and (replica is None or r.replica == replica)
        and (host is None or host == r.where or host in r.where)
    ]
    if not found:
        running = ", ".join(f"{r.where} {r.service}.{r.replica}" for r in replicas) or "none"
        wanted = service + (f".{replica}" if replica is not None else "")
        raise InvalidInput(
            f"no running replica {wanted}" + (f" on {host}" if host else ""),
            hint=f"the running replicas are: {running}",
        )
    return found[0]


def command_arg(command: Sequence[str]) -> list[str]:
    cmd = list(command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise InvalidInput(
            "no command given", hint="put it after `--`: deployer exec web -- ls /app"
        )
    return cmd


class Sink:
    """One output stream of the command: bytes unchanged to a binary stream under
    ``stream`` when it has one (a file, a pipe, a terminal), else decoded as UTF-8 across
    chunk boundaries. A reader gone (broken pipe) drops the rest."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.binary = getattr(stream, "buffer", None)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.lost = False

    def __call__(self, data: bytes) -> None:
        if self.lost:
            return
        try:
            if self.binary is not None:
                self.stream.flush()
                self.binary.write(data)
                self.binary.flush()
            else:
                self.stream.write(self.decoder.decode(data))
                self.stream.flush()
        except BrokenPipeError:
            self.lost = True


def _isatty(stream: TextIO | None) -> bool:
    if stream is None:  # descriptor closed when the process started
        return False
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


@contextlib.contextmanager
def attached_terminal(interactive: bool) -> Iterator[Terminal]:
    """Our terminal for the command's TTY: its size, a descriptor readable on each
    resize (SIGWINCH: Python's wake-up descriptor, written whichever thread the signal
    reaches), raw mode with ``interactive``; everything put back on the way out,
    SIGTERM and SIGHUP included (they end the run through ``SystemExit``)."""
    from deployer.docker.execute import Terminal

    fd = sys.stdout.fileno()

    def size() -> tuple[int, int]:
        cols, rows = os.get_terminal_size(fd)
        return rows, cols

    changed, wake = os.pipe()
    os.set_blocking(wake, False)
    saved_term = termios.tcgetattr(sys.stdin.fileno()) if interactive else None
    handlers: dict[signal.Signals, Any] = {}
    old_wakeup = -1

    def on_resize(signum: int, frame: object) -> None:
        pass  # the wake-up descriptor is written by the C-level handler, in any thread

    def on_end(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    try:
        if main:
            old_wakeup = signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
            handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_resize)
            for sig in (signal.SIGTERM, signal.SIGHUP):
                handlers[sig] = signal.signal(sig, on_end)
        if saved_term is not None:
            tty.setraw(sys.stdin.fileno(), termios.TCSANOW)
        yield Terminal(size, changed)
    finally:
        if saved_term is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved_term)
        for sig, old in handlers.items():
            signal.signal(sig, old)
        if main:
            signal.set_wakeup_fd(old_wakeup)
        os.close(changed)
        os.close(wake)


def _input(interactive: bool) -> tuple[int | None, bool]:
    """The descriptor ``-i`` forwards and whether it was opened here. With no standard
    input at all (descriptor 0 closed, as some runners start jobs), an empty one: the
    command reads its input's end, as with ``docker exec -i``."""
    if not interactive:
        return None, False
    try:
        if sys.stdin is not None:
            fd = sys.stdin.fileno()
            os.fstat(fd)
            return fd, False
    except (OSError, ValueError):
        pass
    return os.open(os.devnull, os.O_RDONLY), True


def run(req: ExecRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.ops import open_environment

    env = dict(os.environ if environ is None else environ)
    cmd = command_arg(req.argv)
    interactive = req.interactive
    want_tty = req.tty
    if want_tty and not (_isatty(sys.stdout) and (not interactive or _isatty(sys.stdin))):
        print(
            "note: -t: not attached to a terminal (standard "
            f"{'input or output' if interactive else 'output'} is a pipe or a file); "
            "the command runs without a TTY",
            file=sys.stderr,
        )
        want_tty = False
    manifest = load(req, env)
    if req.service not in manifest.service_names:
        raise InvalidInput(
            f"{req.service}: not a service of {manifest.path}",
            hint=f"the services are: {', '.join(manifest.service_names)}",
        )
    from deployer.docker.execute import ExecIO

    ops = open_environment(manifest, env)
    stdin, opened = _input(interactive)
    try:
        target = choose(ops.replicas([req.service]), req.service, req.replica, req.host)
        if not want_tty:
            return ops.exec(target, cmd, ExecIO(Sink(out), Sink(sys.stderr), stdin))
        with attached_terminal(interactive) as terminal:
            return ops.exec(target, cmd, ExecIO(Sink(out), Sink(sys.stderr), stdin, terminal))
    finally:
        ops.close()
        if opened and stdin is not None:
            os.close(stdin)
