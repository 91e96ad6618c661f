"""`deployer rollback [-f FILE] [--env NAME] [--to RELEASE] [--wait-lock DURATION]`.

Redeploys the previous release (the one before the latest) or ``--to RELEASE`` with that
release's exact image digests, through the same rollout as `deploy` (lock, pull,
health-gated rollout, automatic rollback): the current manifest gives the configuration,
the release gives the images. Tasks do not run on a rollback. The result is recorded as
a new release, so rolling back twice returns to where you started. When what runs is a
release never recorded (a deploy killed after its switch), the previous release is the
latest one recorded: what ran before that deploy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TextIO

from deployer.commands.deploy import context_for, duration_arg, load
from deployer.commands.finish import conclude, finish_early
from deployer.errors import DeployerError
from deployer.ownership import take_over
from deployer.report.log import JobLog
from deployer.requests import RollbackRequest


def run(req: RollbackRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.report.plan import render
    from deployer.target import open_target

    env = dict(os.environ if environ is None else environ)
    wait_lock = duration_arg(req.wait_lock, "--wait-lock")
    manifest = load(req, env)
    from deployer.report.redact import secret_values

    log = JobLog(out, secrets=secret_values(manifest, env))  # container logs may quote them
    ctx = context_for(manifest, env)
    started = time.time()
    with open_target(manifest, env, ctx, take_over(req.take_over_from, env)) as target:
        try:
            target.connect(log)
        except DeployerError as e:
            finish_early(e, manifest, ctx, env, req, log, started)
            raise
        plan = target.rollback_plan(req.to, log)
        log.text(render(plan, "text"))
        try:
            applied = target.apply(plan, log, kind="rollback", wait_lock=wait_lock, started=started)
        except DeployerError as e:
            finish_early(e, manifest, ctx, env, req, log, started, hosts=target.reached)
            raise
        return conclude(applied, ctx, target.manifest, env, req, log, kind="rollback")
