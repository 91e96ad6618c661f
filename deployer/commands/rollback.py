"""`deployer rollback [-f FILE] [--env NAME] [--to RELEASE] [--wait-lock DURATION]`.

Redeploys the previous release (the one before the latest) or ``--to RELEASE`` with that
release's exact image digests, through the same rollout as `deploy` (lock, pull,
health-gated rollout, automatic rollback): the current manifest gives the configuration,
the release gives the images. Tasks do not run on a rollback. The result is recorded as
a new release, so rolling back twice returns to where you started.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from typing import TextIO

from deployer.commands.deploy import apply, context_for, duration_arg, load
from deployer.commands.finish import finish_early
from deployer.engine import Release
from deployer.errors import DeployerError
from deployer.manifest.model import Manifest
from deployer.releases import choose, release_digests
from deployer.report.log import JobLog


def with_release_files(manifest: Manifest, release: Release) -> Manifest:
    """The manifest with the files ``release`` mounted: a rollback mounts the copies of
    that release (still on the hosts: retention keeps them with the release), not the
    checkout's."""
    from dataclasses import replace

    from deployer.manifest.model import FileMount

    services = []
    for svc in manifest.services:
        recs = release.files.get(svc.name)
        if svc.name in release.digests and (recs or svc.files):
            files = tuple(FileMount(**rec) for rec in recs or ())  # type: ignore[arg-type]
            services.append(replace(svc, files=files))
        else:
            services.append(svc)
    return replace(manifest, services=tuple(services))


def run(args: argparse.Namespace, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    from deployer.plan import make_plan
    from deployer.report.plan import render
    from deployer.targets import close_all, connect_hosts, observe_all

    env = dict(os.environ if environ is None else environ)
    wait_lock = duration_arg(getattr(args, "wait_lock", None), "--wait-lock")
    manifest = load(args, env)
    from deployer.report.redact import secret_values

    log = JobLog(out, secrets=secret_values(manifest, env))  # container logs may quote them
    ctx = context_for(manifest, env)
    started = time.time()
    if manifest.environment.engine == "swarm":
        from deployer.swarm import commands as swarm

        return swarm.rollback(manifest, env, ctx, args, log, started, wait_lock=wait_lock)
    try:
        with log.section("connect", f"Connecting to {manifest.environment.name}'s host(s)"):
            hosts = connect_hosts(manifest, env)
            for h in hosts:
                log.line(f"{h.name}: connected")
    except DeployerError as e:
        finish_early(e, manifest, ctx, env, args, log, started)
        raise
    try:
        by_name = {h.name: h for h in hosts}
        first = by_name[sorted(by_name)[0]]
        releases = list(first.releases(manifest.app, manifest.environment.name))
        target = choose(releases, getattr(args, "to", None), first.name)
        digests, only = release_digests(target, manifest)
        manifest = with_release_files(manifest, target)
        observed = observe_all(manifest, hosts)
        plan = make_plan(manifest, observed, digests, only)
        log.line(
            f"rolling back {manifest.app}/{manifest.environment.name} to release {target.id}"
            + (f" (commit {target.commit[:12]})" if target.commit else "")
        )
        log.text(render(plan, "text"))
        return apply(
            manifest,
            plan,
            by_name,
            {o.host: o for o in observed},
            ctx,
            env,
            args,
            log,
            wait_lock=wait_lock,
            kind="rollback",
        )
    finally:
        close_all(hosts)
