"""`deployer deploy [-f FILE] [--env NAME] [--services a,b] [--wait-lock DURATION] [--force]`.

Computes the plan with the same code as `deployer plan`, prints it, and applies exactly
that plan (deployer/rollout/): lock every host, pull, tasks, health-gated rollout,
rollback of everything this run changed on failure. Writes the reports (JSON, dotenv,
JUnit, Markdown) into ``--report-dir`` and a summary into the job log.

Exit 0 deployed (or nothing to do) · 1 failed and rolled back · 2 invalid input ·
3 a host or registry unreachable (nothing changed) · 4 blocked (lock, freeze, hold
label) · 5 failed and the rollback failed too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TextIO

from deployer.commands.finish import conclude, finish_early
from deployer.context import Context
from deployer.errors import DeployerError, InvalidInput, PlanOutdated
from deployer.manifest.model import Manifest
from deployer.ownership import take_over
from deployer.report.log import JobLog
from deployer.requests import DeployRequest, Request

# How often a deploy that waited for the lock plans again when the deploy it waited for
# changed the hosts meanwhile (each time, another waiting deploy went first).
REPLANS = 3


def duration_arg(value: str | None, flag: str) -> float:
    if not value:
        return 0.0
    from deployer.manifest.parse import duration

    try:
        return duration(value)
    except ValueError as e:
        raise InvalidInput(f"{flag}: {e}", hint=f"for example {flag} 10m") from e


def load(req: Request, environ: Mapping[str, str]) -> Manifest:
    from deployer.manifest import load_manifest

    return load_manifest(req.file, req.env, environ)


def context_for(manifest: Manifest, environ: Mapping[str, str]) -> Context:
    from deployer.gitlab.context import build_context

    return build_context(environ, manifest.gitlab)


def run(req: DeployRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.plan import services_arg
    from deployer.gitlab.gates import check as gates
    from deployer.plan import check_only
    from deployer.report.plan import render
    from deployer.target import open_target

    env = dict(os.environ if environ is None else environ)
    wait_lock = duration_arg(req.wait_lock, "--wait-lock")
    only = services_arg(req.services)
    manifest = load(req, env)
    from deployer.report.redact import secret_values

    log = JobLog(out, secrets=secret_values(manifest, env))  # container logs may quote them
    ctx = context_for(manifest, env)
    started = time.time()
    try:
        gate_notes = gates(ctx, manifest.gitlab, force=req.force)
    except DeployerError as e:  # a freeze or a hold label: reports say so, nothing changed
        finish_early(e, manifest, ctx, env, req, log, started)
        raise
    for note in [*ctx.notes, *gate_notes]:
        log.line(note)
    with open_target(manifest, env, ctx, take_over(req.take_over_from, env)) as target:
        try:
            check_only(manifest, only)  # a bad --services fails before connecting
            target.connect(log)
            plan = target.plan(only, log)
        except DeployerError as e:
            finish_early(e, manifest, ctx, env, req, log, started, hosts=target.reached)
            raise
        log.text(render(plan, "text"))
        try:
            applied = target.apply(plan, log, kind="deploy", wait_lock=wait_lock, started=started)
            for _ in range(REPLANS):
                # --wait-lock: the deploy waited for ran meanwhile; plan from what runs now
                if not isinstance(applied.error, PlanOutdated):
                    break
                log.line(f"{applied.error.message}: planning again")
                plan = target.plan(only, log)
                log.text(render(plan, "text"))
                applied = target.apply(
                    plan, log, kind="deploy", wait_lock=wait_lock, started=started
                )
        except DeployerError as e:
            finish_early(e, manifest, ctx, env, req, log, started, hosts=target.reached)
            raise
        return conclude(applied, ctx, target.manifest, env, req, log, kind="deploy")
