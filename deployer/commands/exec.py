"""`deployer exec SERVICE [--replica N] [--host H] -- CMD...`.

Runs a command in a running replica of the service (the first one unless ``--replica``
or ``--host`` says which), streams its output, and exits with the command's exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from deployer.errors import InvalidInput
from deployer.ops import Replica
from deployer.requests import ExecRequest


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


def run(req: ExecRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import load
    from deployer.ops import open_environment

    env = dict(os.environ if environ is None else environ)
    cmd = command_arg(req.argv)
    manifest = load(req, env)
    if req.service not in manifest.service_names:
        raise InvalidInput(
            f"{req.service}: not a service of {manifest.path}",
            hint=f"the services are: {', '.join(manifest.service_names)}",
        )
    ops = open_environment(manifest, env)

    def to_out(data: bytes) -> None:
        out.write(data.decode("utf-8", errors="replace"))
        out.flush()

    def to_err(data: bytes) -> None:
        sys.stderr.write(data.decode("utf-8", errors="replace"))
        sys.stderr.flush()

    try:
        target = choose(ops.replicas([req.service]), req.service, req.replica, req.host)
        return ops.exec(target, cmd, to_out, to_err)
    finally:
        ops.close()
