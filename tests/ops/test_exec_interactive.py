"""`deployer exec -i` and `-t` on every transport (the main engine over its socket or
over SSH, the second over tcp+TLS): standard input reaches the command to its end, a
TTY of the terminal's size follows resizes, the terminal's mode comes back."""

from __future__ import annotations

import os
import signal

import pytest

from tests.ops.conftest import Fleet
from tests.ops.interactive import in_pty, piped, set_size

pytestmark = pytest.mark.integration

# Exits 5 after copying its input: it ends only when the end of the input arrived.
COPY = ["sh", "-c", "cat; echo copied >&2; exit 5"]
# Reads two lines, printing the terminal's size after each; a resize comes between.
SIZES = [
    "sh",
    "-c",
    "echo ready; read a; busybox stty size; read b; busybox stty size; [ -t 0 ] && echo tty;"
    ' echo "got:$a:$b"; exit 3',
]


def check_stdin(argv: list[str]) -> None:
    """``-i`` with a pipe: every byte in and out unchanged (more than the transports'
    buffers hold, so writing must not wait on reading), the command's exit code."""
    env = dict(os.environ)
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


def check_tty(argv: list[str], *, signals: bool) -> None:
    """``-i -t`` in a pseudo-terminal: the command's TTY has the terminal's size and
    follows a resize; raw mode while it runs, the mode as it was afterwards (with
    ``signals``: also after Ctrl-C, and after SIGTERM to the deployer)."""
    env = dict(os.environ)
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


def test_exec_stdin_and_tty_on_every_transport(fleet: Fleet) -> None:
    fleet.deploy()
    for host in fleet.hosts:  # the socket or SSH, then tcp+TLS
        argv = [*fleet.base, "--host", host]
        check_stdin(argv)
        check_tty(argv, signals=host == fleet.hosts[0])  # the terminal's side: once
