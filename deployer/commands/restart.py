"""`deployer restart SERVICE... [--hard]`.

Replaces every replica of the services with the same image (the deployed release's
digest) and configuration through the rollout of a deploy: start-first (or stop-first
where fixed ports force it, and always with ``--hard``), health-gated, and rolled back
(exit 1) when a new replica does not become healthy. No release is recorded: the new
containers keep the release they restart (``rollback --to`` takes it); the job log and
the report say who restarted what. Refused (exit 2) when what runs differs from the
manifest: that is a deploy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from deployer.errors import InvalidInput
from deployer.ownership import take_over
from deployer.plan import Plan, check_sharing
from deployer.requests import RestartRequest


def run(req: RestartRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.commands.deploy import context_for, load
    from deployer.commands.finish import conclude
    from deployer.ops import check_project, open_environment
    from deployer.report.log import JobLog
    from deployer.report.redact import secret_values

    env = dict(os.environ if environ is None else environ)
    manifest = load(req, env)
    services = [s for part in req.services for s in part.split(",") if s]
    unknown = [s for s in services if s not in manifest.service_names]
    if not services or unknown:
        raise InvalidInput(
            f"{', '.join(unknown)}: not a service of {manifest.path}"
            if unknown
            else "name the service(s) to restart",
            hint=f"the services are: {', '.join(manifest.service_names)}",
        )
    check_sharing(manifest, services, "restart")
    log = JobLog(out, secrets=secret_values(manifest, env))
    ctx = context_for(manifest, env)
    ops = open_environment(manifest, env)

    def apply(plan: Plan, hosts: Sequence[Any], observed: Mapping[str, Any]) -> int:
        """The container rollout of the restart's plan, on the hosts it was made on."""
        from deployer.target.containers import ContainerEnvironment

        target = ContainerEnvironment.of(manifest, env, ctx, hosts, observed)
        applied = target.apply(plan, log, kind="restart", wait_lock=0.0, started=time.time())
        return conclude(applied, ctx, manifest, env, req, log, kind="restart")

    try:
        check_project(ops, manifest, ctx, take_over(req.take_over_from, env), log.line)
        return ops.restart(services, hard=req.hard, context=ctx, log=log, request=req, apply=apply)
    finally:
        ops.close()
