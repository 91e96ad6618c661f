"""`deployer exec -i` and `-t` on every transport (the main engine over its socket or
over SSH, the second over tcp+TLS): standard input reaches the command to its end, a
TTY of the terminal's size follows resizes, the terminal's mode comes back."""

from __future__ import annotations

import os

import pytest

from tests.ops.conftest import Fleet
from tests.ops.interactive import check_stdin, check_tty

pytestmark = pytest.mark.integration


def test_exec_stdin_and_tty_on_every_transport(fleet: Fleet) -> None:
    fleet.deploy()
    # the socket then tcp+TLS; or SSH alone (tcp+TLS is the other parameter's)
    hosts = fleet.hosts if fleet.transport == "unix+tls" else fleet.hosts[:1]
    for host in hosts:
        argv = [*fleet.base, "--host", host]
        check_stdin(argv, dict(os.environ))
        # the terminal's own side (Ctrl-C, SIGTERM) once
        check_tty(argv, dict(os.environ), signals=host == fleet.hosts[0])
