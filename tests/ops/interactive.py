"""Driving ``deployer exec -i``/``-t`` as a user does: a child process whose standard
input is a pipe, or whose terminal is a real pseudo-terminal (``pty``) the test types
into and reads from. Every wait is for a condition, with a generous deadline."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

DEADLINE = 120.0


def deployer(*argv: str) -> list[str]:
    return [sys.executable, "-m", "deployer", *argv]


def piped(
    argv: Sequence[str], data: bytes, env: Mapping[str, str], timeout: float = DEADLINE
) -> tuple[int, bytes, bytes]:
    """Run with ``data`` as standard input (closed at its end): (exit code, out, err)."""
    proc = subprocess.run(
        deployer(*argv),
        check=False,
        input=data,
        capture_output=True,
        env=dict(env),
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@dataclass
class Pty:
    """The child's controlling terminal: ``master`` is the test's side of it."""

    proc: subprocess.Popen[bytes]
    master: int
    slave: int
    before: list[object]  # the terminal's mode before the child ran
    seen: bytearray = field(default_factory=bytearray)

    def expect(self, text: bytes, timeout: float = DEADLINE) -> None:
        """Read until ``text`` came out (after what an earlier expect consumed)."""
        give_up = time.monotonic() + timeout
        while text not in self.seen:
            left = give_up - time.monotonic()
            assert left > 0, f"no {text!r} within {timeout}s; got {bytes(self.seen)!r}"
            ready, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # EIO: nothing holds the terminal any more
                    time.sleep(0.05)
        del self.seen[: self.seen.index(text) + len(text)]

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = DEADLINE) -> int:
        """The child's exit code; what it still wrote stays readable in ``rest()``."""
        code = self.proc.wait(timeout=timeout)
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk
        return code

    def mode(self) -> list[object]:
        return termios.tcgetattr(self.slave)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        os.close(self.master)
        os.close(self.slave)


def in_pty(argv: Sequence[str], env: Mapping[str, str], rows: int, cols: int) -> Pty:
    """Start the deployer with a new pseudo-terminal as its controlling terminal
    (standard input, output and error), ``rows`` x ``cols`` large."""
    master, slave = os.openpty()
    set_size(master, rows, cols)
    before = termios.tcgetattr(slave)

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        deployer(*argv),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=dict(env),
        preexec_fn=take_terminal,  # noqa: PLW1509 - a session and terminal of its own
    )
    return Pty(proc, master, slave, before)


# Exits 5 after copying its input: it ends only when the end of the input arrived.
COPY = ["sh", "-c", "cat; echo copied >&2; exit 5"]
# Reads two lines, printing the terminal's size after each; a resize comes between.
SIZES = [
    "sh",
    "-c",
    "echo ready; read a; busybox stty size; read b; busybox stty size; [ -t 0 ] && echo tty;"
    ' echo "got:$a:$b"; exit 3',
]


def check_stdin(argv: list[str], env: dict[str, str]) -> None:
    """``-i`` with a pipe: every byte in and out unchanged (more than the transports'
    buffers hold, so writing must not wait on reading), the command's exit code."""
    data = os.urandom(300_000)
    code, out, err = piped(["exec", *argv, "-i", "api", "--", *COPY], data, env)
    assert (code, out == data) == (5, True), (code, len(out), err)
    assert b"copied" in err

    # Without -i the command reads nothing of ours; -t on a pipe says so and runs without.
    code, out, err = piped(["exec", *argv, "api", "--", "sh", "-c", "cat; echo end"], data, env)
    assert (code, out) == (0, b"end\n"), err
    code, out, err = piped(
        ["exec", *argv, "-i", "-t", "api", "--", "sh", "-c", "cat; [ -t 0 ] || echo notty"],
        b"line\n",
        env,
    )
    assert (code, out) == (0, b"line\nnotty\n"), err
    assert b"not attached to a terminal" in err

    # -i with no standard input at all (descriptor 0 closed, as some CI runners start
    # jobs): an input at its end, as `docker exec -i` reads it, not an internal error.
    proc = subprocess.run(
        deployer("exec", *argv, "-i", "api", "--", "sh", "-c", "cat; echo end"),
        check=False,
        capture_output=True,
        env=dict(env),
        timeout=DEADLINE,
        preexec_fn=lambda: os.close(0),
    )
    assert (proc.returncode, proc.stdout) == (0, b"end\n"), proc.stderr


def check_tty(argv: list[str], env: dict[str, str], *, signals: bool) -> None:
    """``-i -t`` in a pseudo-terminal: the command's TTY has the terminal's size and
    follows a resize; raw mode while it runs, the mode as it was afterwards (with
    ``signals``: also after Ctrl-C, and after SIGTERM to the deployer)."""
    term = in_pty(["exec", *argv, "-i", "-t", "api", "--", *SIZES], env, 33, 101)
    try:
        term.expect(b"ready")
        term.type(b"one\r")
        term.expect(b"33 101")
        set_size(term.master, 40, 120)  # SIGWINCH to the deployer: the TTY follows
        term.type(b"two\r")
        term.expect(b"40 120")
        term.expect(b"tty")
        term.expect(b"got:one:two")
        assert term.wait() == 3
        assert term.mode() == term.before
    finally:
        term.close()
    if not signals:
        return

    exec_it = ["exec", *argv, "-i", "-t", "api", "--"]
    # Ctrl-C goes to the command (it ends by SIGINT: 130); the terminal comes back.
    term = in_pty([*exec_it, "sh", "-c", "echo ready; sleep 600"], env, 24, 80)
    try:
        term.expect(b"ready")
        term.type(b"\x03")
        assert term.wait() == 130
        assert term.mode() == term.before
    finally:
        term.close()

    # SIGTERM to the deployer while the terminal is raw: put back, exit 128 + 15.
    term = in_pty([*exec_it, "sh", "-c", "echo ready; sleep 600"], env, 24, 80)
    try:
        term.expect(b"ready")
        assert term.mode() != term.before  # raw while the command runs
        term.proc.send_signal(signal.SIGTERM)
        assert term.wait() == 128 + signal.SIGTERM
        assert term.mode() == term.before
    finally:
        term.close()
