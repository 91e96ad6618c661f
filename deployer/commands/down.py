"""`deployer down [-f FILE] [--env NAME] [--volumes] [--yes]`.

Removes an environment of the app from its hosts (or its Swarm): containers (current,
kept for rollback, finished tasks), networks, release records and the deploy lock. On
hosts, a running container stops first as ``docker compose down`` stops it: dependents first,
each after its ``pre_stop`` hooks, within its stop grace period.
Named volumes (the data) stay unless ``--volumes`` is given and confirmed (``--yes``, or
typing the environment's name on a terminal). Runs under the deploy lock: refused
(exit 4) while another deploy holds it. A network the engine keeps (another container
on it, or the engine's own fault) is named with the commands to run, once all else is
removed (exit 6).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from deployer.errors import EXIT_OK, DeployerError, InvalidInput, LeftBehind
from deployer.ownership import take_over
from deployer.requests import DownRequest


def confirm_volumes(env_name: str, yes: bool, stdin: TextIO | None = None) -> None:
    """``--volumes`` deletes data: only with ``--yes`` or the environment's name typed."""
    if yes:
        return
    stdin = sys.stdin if stdin is None else stdin
    if not stdin.isatty():
        raise InvalidInput(
            "--volumes deletes the environment's data and needs a confirmation",
            hint="add --yes (in CI), or run it on a terminal and type the environment's name",
        )
    print(
        f"This deletes the volumes (the data) of environment {env_name!r}. "
        "Type its name to confirm: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if stdin.readline().strip() != env_name:
        raise InvalidInput("--volumes not confirmed: nothing was removed")


def run(req: DownRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import context_for, load
    from deployer.notify import notify_command, outcome_of_error
    from deployer.ops import check_project, open_environment
    from deployer.report.log import JobLog
    from deployer.report.redact import secret_values
    from deployer.result import Outcome

    env = dict(os.environ if environ is None else environ)
    manifest = load(req, env)
    if req.volumes:
        confirm_volumes(manifest.environment.name, req.yes)
    log = JobLog(out, secrets=secret_values(manifest, env))  # a pre_stop hook may print them
    ctx = context_for(manifest, env)
    started = time.time()
    try:
        ops = open_environment(manifest, env)
        try:
            check_project(ops, manifest, ctx, take_over(req.take_over_from, env), log.line)
            log.line(f"removing {manifest.app}/{manifest.environment.name} from {ops.where}")
            removed = ops.down(
                holder=ctx.holder,
                ttl=manifest.rollout.lock_ttl,
                volumes=req.volumes,
                say=log.line,
            )
        finally:
            ops.close()
    except DeployerError as e:  # unreachable, or another deploy holds the lock
        notify_command(
            manifest,
            ctx,
            "down",
            # removed, but an engine kept a network: said as the error
            Outcome.DEPLOYED if isinstance(e, LeftBehind) else outcome_of_error(e.exit_code),
            started,
            env,
            log.line,
            error=e.message,
        )
        raise
    log.line(
        f"{manifest.app}/{manifest.environment.name} is down ({len(removed)} removed)"
        if removed
        else f"nothing of {manifest.app}/{manifest.environment.name} was there"
    )
    outcome = Outcome.DEPLOYED if removed else Outcome.NOTHING_TO_DO
    notify_command(manifest, ctx, "down", outcome, started, env, log.line)
    return EXIT_OK
